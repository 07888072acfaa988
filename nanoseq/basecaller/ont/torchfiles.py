"""PyTorch's files read without PyTorch: the weights of ONT's model folders.

Both kinds are zip archives holding a pickle (``<name>/data.pkl``, protocol 2) whose tensors
refer by key to raw little-endian storages (``<name>/data/<key>``):

- ``torch.save`` of a state dict (bonito's ``weights_N.tar``): the pickle is the dict;
- a TorchScript module holding one parameter ``"0"`` (dorado's ``<key>.tensor``, one a weight).

The pickle is read by an unpickler that builds only dicts, arrays and an inert stand-in for
TorchScript's module class: nothing in the file can run code.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError

STORAGES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class ScriptModule:
    """A TorchScript module's pickled state (its attributes and parameters), inert."""

    def __setstate__(self, state):
        self.state = state


def _tensor(storage, offset, size, stride, *_):
    """``torch._utils._rebuild_tensor_v2``: a view of ``storage``, copied."""
    size, stride = tuple(size), tuple(stride)
    if not size:
        return np.array(storage[offset])
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], size, tuple(s * storage.itemsize for s in stride)
    )
    return np.ascontiguousarray(view)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, path: Path):
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return lambda data, *_: data
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in STORAGES:
            return STORAGES[name]
        if module.startswith("__torch__."):
            return ScriptModule
        raise InputError(f"{self.path}: not a weights file nanoseq can read ({module}.{name})")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid
        if kind != "storage":
            raise InputError(f"{self.path}: unknown storage {kind!r}")
        raw = self.archive.read(f"{self.prefix}data/{key}")
        if dtype == "bfloat16":  # the high half of a float32
            bits = np.frombuffer(raw, "<u2", numel).astype(np.uint32) << 16
            return bits.view(np.float32)
        return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"), numel)


def _unpickle(path: Path):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise InputError(
            f"{path}: not a PyTorch zip file ({e}); re-save it with PyTorch >= 1.6"
        ) from None
    with archive:
        names = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(names) != 1:
            raise InputError(f"{path}: not a PyTorch file (no data.pkl)")
        prefix = names[0][: -len("data.pkl")]
        order = prefix + "byteorder"
        if order in archive.namelist() and archive.read(order).decode() != "little":
            raise InputError(f"{path}: big-endian tensors are not supported")
        with archive.open(names[0]) as file:
            try:
                return _Unpickler(file, archive, prefix, path).load()
            except (pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as e:
                raise InputError(f"{path}: unreadable PyTorch file ({e})") from None


def read_tensor(path) -> np.ndarray:
    """The weight in one of dorado's ``.tensor`` files."""
    path = Path(path)
    module = _unpickle(path)
    state = getattr(module, "state", None)
    if not isinstance(state, dict) or not isinstance(state.get("0"), np.ndarray):
        raise InputError(f"{path}: not a dorado tensor file (no parameter '0')")
    return state["0"]


def read_state_dict(path) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save``-d state dict (bonito's ``weights_N.tar``), by key; a
    training checkpoint's ``model_state_dict`` (or ``state_dict``) if it holds one."""
    path = Path(path)
    found = _unpickle(path)
    for key in ("model_state_dict", "state_dict"):
        if isinstance(found, dict) and isinstance(found.get(key), dict):
            found = found[key]
    if not isinstance(found, dict):
        raise InputError(f"{path}: not a state dict")
    return {k: v for k, v in found.items() if isinstance(v, np.ndarray)}
