"""Read raw nanopore signal from pod5, fast5 (single/multi-read, gzip/VBZ) and slow5/blow5.

One entry, :func:`read_signal`, takes files or folders and yields one :class:`Read` per read,
one at a time: no file's reads are ever all in memory together. A file that cannot be read raises
:class:`~nanoseq.errors.InputError` naming it; a single bad read inside a good file is logged as a
warning and skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError, one_line
from nanoseq.runtime import import_module
from nanoseq.signal.chemistry import chemistry

log = logging.getLogger(__name__)

SUFFIXES = {".pod5": "pod5", ".fast5": "fast5", ".slow5": "slow5", ".blow5": "blow5"}

# File signatures: what the first bytes of each format look like.
_MAGIC = {
    "pod5": b"\x8bPOD\r\n\x1a\n",
    "fast5": b"\x89HDF\r\n\x1a\n",
    "blow5": b"BLOW5\x01",
    "slow5": b"#slow5_version",
}
VBZ_FILTER_ID = 32020
BLOW5_EOF = b"5WOLB"

# Run-level keys worth carrying (chemistry, kit, device); found in pod5 run info, fast5
# context_tags/tracking_id and slow5 headers.
METADATA_KEYS = (
    "sequencing_kit",
    "flow_cell_product_code",
    "experiment_type",
    "device_type",
    "basecall_config_filename",
    "exp_script_name",
    "exp_start_time",
    "flow_cell_id",
)


@dataclass
class Read:
    """One nanopore read: raw int16 signal, its calibration and where it came from."""

    read_id: str
    signal: np.ndarray
    offset: float
    range: float
    digitisation: float
    sample_rate: float
    channel: int = 0
    mux: int = 0
    read_number: int = 0
    start_sample: int = 0
    run_id: str = ""
    filename: str = ""
    format: str = ""
    metadata: dict = field(default_factory=dict)

    @property
    def scale(self) -> float:
        """pA per raw unit."""
        return self.range / self.digitisation

    @property
    def pa(self) -> np.ndarray:
        """The signal in picoamperes: (raw + offset) * range / digitisation."""
        return (self.signal.astype(np.float32) + np.float32(self.offset)) * np.float32(self.scale)

    @property
    def num_samples(self) -> int:
        return int(self.signal.shape[0])

    @property
    def duration(self) -> float:
        """Seconds of signal."""
        return self.num_samples / self.sample_rate

    @property
    def start_time(self) -> float:
        """Seconds from the start of the run."""
        return self.start_sample / self.sample_rate

    @property
    def chemistry(self) -> str:
        """The chemistry the file records (see :mod:`nanoseq.signal.chemistry`)."""
        return chemistry(self.metadata)

    @property
    def run_start(self) -> datetime | None:
        """When the run began, if the file says (``exp_start_time``, ISO-8601)."""
        text = self.metadata.get("exp_start_time")
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
        except ValueError:
            return None

    @property
    def start_timestamp(self) -> str | None:
        """ISO-8601 time of the read's first sample, when the run's start time is known."""
        start = self.run_start
        if start is None:
            return None
        return (start + timedelta(seconds=self.start_time)).isoformat(timespec="milliseconds")


def find_signal_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of signal files."""
    files: list[Path] = []
    for given in paths:
        if not str(given):
            raise InputError("an empty path")
        path = Path(given)
        if not path.exists():
            raise InputError("no such file or folder", path)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
            )
            if not found:
                raise InputError(f"no signal files ({', '.join(SUFFIXES)}) in this folder", path)
            files.extend(found)
        elif not path.is_file():
            raise InputError("not a regular file (a pipe or a device?)", path)
        elif path.suffix.lower() in SUFFIXES:
            files.append(path)
        else:
            raise InputError(f"not a signal file (expected one of {', '.join(SUFFIXES)})", path)
    unique = {file.resolve(): file for file in reversed(files)}  # the first of each file
    if len(unique) < len(files):
        twice = len(files) - len(unique)
        log.warning("%d files were given more than once; each is read once", twice)
    return [file for file in files if unique.get(file.resolve()) is file]


def file_format(path: Path) -> str:
    """The format a file's suffix promises, checked against the file's first bytes."""
    expected = SUFFIXES[path.suffix.lower()]
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as error:
        raise InputError(f"cannot open: {error.strerror}", path) from None
    if not head:
        raise InputError("empty file", path)
    if head.startswith(_MAGIC[expected]):
        return expected
    actual = next((name for name, magic in _MAGIC.items() if head.startswith(magic)), None)
    looks = f"it looks like {actual}" if actual else "unrecognised content"
    raise InputError(f"not a {expected} file ({looks})", path)


def read_signal(
    paths: Iterable[str | os.PathLike], read_ids: set[str] | None = None
) -> Iterator[Read]:
    """Yield every read (or only ``read_ids``) in the given files and folders."""
    for path in find_signal_files(paths):
        log.debug("reading %s", path)
        yield from read_file(path, read_ids)


def count_reads(path: Path) -> int | None:
    """How many reads a pod5 or fast5 file holds, from its index (None: slow5/blow5, or a file
    that cannot say)."""
    try:
        if path.suffix.lower() == ".pod5":
            pod5 = import_module("pod5")

            with pod5.Reader(path) as reader:
                return reader.num_reads
        if path.suffix.lower() == ".fast5":
            import h5py

            with h5py.File(path, "r") as handle:
                return len(handle["Raw/Reads"]) if "Raw" in handle else len(handle)
    except Exception:  # an unreadable file is reported when it is read
        return None
    return None


def runs(path: Path) -> dict[str, str]:
    """The runs a file's reads come from: run id -> the run's start (ISO-8601, or ""), read
    from its run tables or headers, not its signal."""
    found: dict[str, str] = {}
    try:
        if path.suffix.lower() == ".pod5":
            pod5 = import_module("pod5")

            with pod5.Reader(path) as reader:
                table = reader.run_info_table.read_all().to_pydict()
            starts = table["acquisition_start_time"]
            for run, start in zip(table["acquisition_id"], starts, strict=True):
                found[str(run)] = start.isoformat() if start else ""
        elif path.suffix.lower() == ".fast5":
            import h5py

            with h5py.File(path, "r") as handle:
                single = "Raw" in handle
                for group in [handle] if single else (handle[n] for n in handle):
                    tracking = group["UniqueGlobalKey/tracking_id" if single else "tracking_id"]
                    start = _text(tracking.attrs.get("exp_start_time", ""))
                    found[_text(tracking.attrs.get("run_id", ""))] = start
        else:
            for read in read_file(path):  # slow5/blow5: headers per read group
                found.setdefault(read.run_id, read.metadata.get("exp_start_time", ""))
    except Exception:  # an unreadable file is reported when it is read
        pass
    return found


def read_file(path: Path, read_ids: set[str] | None = None) -> Iterator[Read]:
    """Yield the reads of one signal file; any failure of the file itself is an InputError."""
    path = Path(path)
    fmt = file_format(path)
    reader = {"pod5": _read_pod5, "fast5": _read_fast5, "slow5": _read_slow5, "blow5": _read_slow5}
    reads = reader[fmt](path, read_ids)
    while True:
        try:
            read = next(reads)
        except StopIteration:
            return
        except InputError:
            raise
        except Exception as error:  # the format libraries raise many kinds; name the file
            raise InputError(f"cannot read {fmt} file ({one_line(error)})", path) from None
        problem = implausible(read)
        if problem:
            log.warning("%s: read %s %s; skipped", path, read.read_id, problem)
            continue
        read.format = fmt
        yield read


# What a read's current can be (pA): its median (strands lie near 60-120, an open pore near 200-
# 250) and nearly all of its samples. A corrupted calibration, or a compressed chunk whose bits
# flipped (it decompresses to noise of any size), falls outside.
MEDIAN_PA = (0.0, 600.0)
SAMPLE_PA = (-100.0, 1000.0)
MOST = 0.99  # the share of samples that must lie within SAMPLE_PA


def implausible(read: Read) -> str | None:
    """Why the read cannot be called (no samples, a calibration or sample rate that is not a
    positive number, a current outside :data:`MEDIAN_PA` or :data:`SAMPLE_PA`), or None."""
    if read.num_samples == 0:
        return "has no samples"
    calibration = (read.offset, read.range, read.digitisation)
    if not np.all(np.isfinite(calibration)) or read.range <= 0 or read.digitisation <= 0:
        return f"has a bad calibration (offset, range, digitisation {calibration})"
    if not read.sample_rate > 0 or not np.isfinite(read.sample_rate):
        return f"has a sample rate of {read.sample_rate:g} Hz"
    low, high = (pa / read.scale - read.offset for pa in SAMPLE_PA)  # in raw units
    inside = float(np.mean((read.signal >= low) & (read.signal <= high)))
    median = (float(np.median(read.signal)) + read.offset) * read.scale
    if not MEDIAN_PA[0] <= median <= MEDIAN_PA[1] or inside < MOST:
        return (
            f"has an implausible signal (median {median:.4g} pA, {1 - inside:.1%} of samples "
            f"outside {SAMPLE_PA[0]:g} to {SAMPLE_PA[1]:g} pA): a corrupt chunk or calibration"
        )
    return None


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _pick(*sources) -> dict:
    """Known metadata keys, first source that has each."""
    found = {}
    for source in sources:
        for key in METADATA_KEYS:
            if key not in found and source.get(key) not in (None, ""):
                found[key] = _text(source[key])
    return found


# --- pod5 -------------------------------------------------------------------------------------


def _read_pod5(path: Path, read_ids):
    pod5 = import_module("pod5")

    with pod5.Reader(path) as reader:
        selection = sorted(read_ids) if read_ids is not None else None
        for record in reader.reads(selection=selection, missing_ok=True):
            run = record.run_info
            yield Read(
                read_id=str(record.read_id),
                signal=record.signal,
                offset=float(record.calibration.offset),
                range=float(record.calibration_range),
                digitisation=float(record.calibration_digitisation),
                sample_rate=float(run.sample_rate),
                channel=int(record.pore.channel),
                mux=int(record.pore.well),
                read_number=int(record.read_number),
                start_sample=int(record.start_sample),
                run_id=str(run.acquisition_id),
                filename=path.name,
                metadata={
                    **_pick(
                        {
                            "sequencing_kit": run.sequencing_kit,
                            "flow_cell_product_code": run.flow_cell_product_code,
                            "flow_cell_id": run.flow_cell_id,
                            "exp_start_time": run.acquisition_start_time.isoformat(),
                        },
                        dict(run.context_tags),
                        dict(run.tracking_id),
                    ),
                    "end_reason": record.end_reason.name,
                    "median_before": float(record.median_before),
                },
            )


# --- fast5 ------------------------------------------------------------------------------------


def _vbz_available() -> bool:
    try:
        import vbz_h5py_plugin  # noqa: F401  (registers the VBZ filter with h5py on import)
    except ImportError:
        return False
    return True


def _read_fast5(path: Path, read_ids):
    import h5py

    vbz = _vbz_available()
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise InputError(f"not a readable fast5/HDF5 file ({one_line(error)})", path) from None
    with handle:
        if "Raw" in handle:  # single-read layout (file version 1.x / 2.x)
            reads = handle["Raw/Reads"]
            groups = [(reads[name], handle["UniqueGlobalKey"], handle.attrs) for name in reads]
        else:  # multi-read layout: one group per read
            groups = (
                (handle[name]["Raw"], handle[name], handle[name].attrs)
                for name in handle
                if name.startswith("read_")
            )
        for raw, info, extra in groups:
            read_id = _text(raw.attrs.get("read_id", path.stem))
            if read_ids is not None and read_id not in read_ids:
                continue
            if "Signal" not in raw:
                log.warning("%s: read %s has no Signal dataset; skipped", path, read_id)
                continue
            dataset = raw["Signal"]
            if not vbz and _uses_vbz(dataset):
                raise InputError(
                    "signal is VBZ-compressed but the VBZ filter cannot be loaded "
                    "(pip install vbz-h5py-plugin)",
                    path,
                )
            channel = info["channel_id"].attrs
            tracking = dict(info["tracking_id"].attrs) if "tracking_id" in info else {}
            context = dict(info["context_tags"].attrs) if "context_tags" in info else {}
            run_id = extra.get("run_id", tracking.get("run_id", ""))
            yield Read(
                read_id=read_id,
                signal=dataset[()].astype(np.int16, copy=False),
                offset=float(channel["offset"]),
                range=float(channel["range"]),
                digitisation=float(channel["digitisation"]),
                sample_rate=float(channel["sampling_rate"]),
                channel=int(_text(channel["channel_number"])),
                mux=int(raw.attrs.get("start_mux", 0)),
                read_number=int(raw.attrs.get("read_number", 0)),
                start_sample=int(raw.attrs.get("start_time", 0)),
                run_id=_text(run_id),
                filename=path.name,
                metadata={
                    **_pick(context, tracking),
                    **_optional(raw.attrs, "end_reason", "median_before"),
                },
            )


def _uses_vbz(dataset) -> bool:
    plist = dataset.id.get_create_plist()
    return any(plist.get_filter(i)[0] == VBZ_FILTER_ID for i in range(plist.get_nfilters()))


def _optional(attrs, *keys) -> dict:
    return {key: attrs[key].item() for key in keys if key in attrs}


# --- slow5 / blow5 ----------------------------------------------------------------------------


class _Slow5Errors(logging.Handler):
    """Collects pyslow5's log records (it logs a truncated file and stops instead of raising)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _quiet_slow5(pyslow5) -> _Slow5Errors:
    """Silence slow5lib's C-level stderr lines and route pyslow5's logger to a collector."""
    import ctypes

    ctypes.c_int.in_dll(ctypes.CDLL(pyslow5.__file__), "slow5_log_level").value = 0  # LOG_OFF
    logger = logging.getLogger("pyslow5")  # Open resets its level and handler: call after Open
    errors = _Slow5Errors()
    logger.handlers, logger.propagate = [errors], False
    return errors


def _read_slow5(path: Path, read_ids):
    import pyslow5

    _check_slow5_complete(path)  # pyslow5 crashes (segfault) on a truncated header
    handle = pyslow5.Open(str(path), "r", DEBUG=0)
    errors = _quiet_slow5(pyslow5)
    try:
        # Headers first: pyslow5 crashes if they are asked for while seq_reads is iterating.
        names = [n for n in ("run_id", *METADATA_KEYS) if n in handle.get_header_names()]
        headers = [
            {name: handle.get_header_value(name, group) for name in names}
            for group in range(handle.get_num_read_groups())
        ]
        for record in handle.seq_reads(pA=False, aux="all"):
            if read_ids is not None and record["read_id"] not in read_ids:
                continue
            header = headers[record.get("read_group", 0)]
            yield Read(
                read_id=record["read_id"],
                signal=np.asarray(record["signal"], dtype=np.int16),
                offset=float(record["offset"]),
                range=float(record["range"]),
                digitisation=float(record["digitisation"]),
                sample_rate=float(record["sampling_rate"]),
                channel=int(record.get("channel_number") or 0),
                mux=int(record.get("start_mux") or 0),
                read_number=int(record.get("read_number") or 0),
                start_sample=int(record.get("start_time") or 0),
                run_id=header.get("run_id") or "",
                filename=path.name,
                metadata={
                    **_pick(header),
                    **{k: record[k] for k in ("end_reason", "median_before") if k in record},
                },
            )
        if errors.messages:
            raise InputError(f"cannot read file ({_slow5_reason(errors.messages[-1])})", path)
    finally:
        handle.close()


def _check_slow5_complete(path: Path) -> None:
    """BLOW5 ends with an end-of-file marker; SLOW5's header ends with the '#read_id' line."""
    with open(path, "rb") as handle:
        if path.suffix.lower() == ".blow5":
            handle.seek(-len(BLOW5_EOF), os.SEEK_END)
            if handle.read() != BLOW5_EOF:
                raise InputError("truncated (no BLOW5 end-of-file marker)", path)
            return
        for line in handle:
            if line.startswith(b"#read_id"):
                return
            if not line.startswith((b"#", b"@")):
                break
    raise InputError("truncated or malformed SLOW5 header", path)


def _slow5_reason(message: str) -> str:
    """ "slow5_get_next error code: -3: ['SLOW5_ERR_TRUNC', 'file truncated']" -> the last part."""
    return message.rsplit("'", 2)[-2] if message.endswith("']") else message
