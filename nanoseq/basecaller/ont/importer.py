"""dorado's and bonito's model folders as nanoseq basecallers.

A folder holds ``config.toml`` (bonito's model config) and the weights: dorado's one
``<state-dict key>.tensor`` a weight (batch norm folded, clamp layers not counted in the
numbering) or bonito's ``weights_N.tar`` (the highest N; batch norm folded here). The config's
encoder, old style (``[encoder]`` features, winlen, stride: three convolutions and five LSTMs)
or new (``type = "serial"`` / ``"namedserial"`` sublayers, a ``stack`` repeating a layer),
becomes a :class:`~nanoseq.basecaller.serial.SerialBackbone`; the affine layers at its end (a
split head's linear layers, a v5 model's linear upsampling, the CRF's own linear layer) are one
map, so they become the :class:`~nanoseq.basecaller.model.Basecaller`'s dense head (``upsample``
frames a step) under a :class:`~nanoseq.basecaller.crf.CRFHead` of the config's state length,
scale, tanh and blank score. The model's metadata say how to prepare reads as dorado does.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nanoseq.basecaller.crf import CRFHead
from nanoseq.basecaller.model import Basecaller
from nanoseq.basecaller.ont.torchfiles import read_state_dict, read_tensor
from nanoseq.basecaller.qualities import MAX_QSCORE, qscores
from nanoseq.basecaller.serial import ACTIVATIONS, SerialBackbone
from nanoseq.errors import InputError
from nanoseq.signal.chemistry import R941, UNKNOWN, chemistry
from nanoseq.signal.normalize import Normalisation

CHUNK_SIZE, OVERLAP = 10000, 500  # dorado's defaults where a config names none
# windows a batch for transformers: their attention holds steps x steps scores a head and window
# (a v5 model's 1,000 steps, 8 heads: 32 MB a window and layer)
TRANSFORMER_BATCH = 16
BN_EPS = 1e-5


@dataclass
class Layer:
    """One of the config's layers (a sublayer dict) and the state-dict prefix of its weights:
    ``key`` as bonito numbers a serial list's layers, ``exported`` as dorado's files do (clamp
    layers not counted)."""

    spec: dict
    key: str
    exported: str

    def prefix(self, weights: Weights) -> str:
        return self.exported if weights.exported else self.key


@dataclass
class Weights:
    """A folder's weights by state-dict key; ``exported``: dorado's (clamps not counted)."""

    tensors: dict[str, np.ndarray]
    exported: bool


def import_ont_model(folder, chemistry_name: str | None = None, sample_rate=None) -> Basecaller:
    """The model in ``folder`` as a :class:`Basecaller`. ``chemistry_name`` and ``sample_rate``
    override what the folder's name and config say (needed where they say nothing)."""
    folder = Path(folder)
    config_path = folder / "config.toml"
    try:
        config = tomllib.loads(config_path.read_text())
    except FileNotFoundError:
        raise InputError(
            f"{folder}: not a dorado or bonito model folder (no config.toml)"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{config_path}: not a TOML file ({e})") from None
    weights = _weights(folder)
    layers, state_len = _layers(config, config_path)
    body, affine, crf, clamp = _split(layers, config_path)
    specs = [_backbone_spec(layer.spec) for layer in body]
    backbone = SerialBackbone(specs, name="backbone")
    head = _head(crf.spec, state_len, clamp, config)
    kernel, bias, upsample = _head_weights(affine + [crf], weights, config_path)
    metadata = _metadata(folder, config, chemistry_name, sample_rate, backbone.stride)
    if any(spec["type"] == "transformer" for spec in specs):
        metadata["batch_size"] = TRANSFORMER_BATCH
    model = Basecaller(backbone, head, upsample, metadata)
    for i, layer in enumerate(body):
        _set_weights(model.backbone, i, layer, weights, config_path)
    model.get_layer("head").set_weights([kernel, bias])
    return model


def _weights(folder: Path) -> Weights:
    tensors = sorted(folder.glob("*.tensor"))
    if tensors:
        return Weights({path.name[: -len(".tensor")]: read_tensor(path) for path in tensors}, True)
    checkpoints = sorted(
        folder.glob("weights_*.tar"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0)
    )
    if not checkpoints:
        raise InputError(f"{folder}: no weights (*.tensor or weights_N.tar)")
    state = read_state_dict(checkpoints[-1])
    prefix = r"^(module\.)?(base_model\.)?(encoder\.)?"
    return Weights({re.sub(prefix, "", k): v for k, v in state.items()}, False)


def _encoder(config: dict) -> dict:
    model = config.get("model", {})
    encoder = config.get("encoder") or model.get("encoder") or {}
    while isinstance(encoder, dict) and isinstance(encoder.get("base_encoder"), dict):
        encoder = encoder["base_encoder"]
    return encoder


def _layers(config: dict, path: Path) -> tuple[list[Layer], int]:
    """The config's layers in order, and the CRF's state length."""
    encoder = _encoder(config)
    state_len = config.get("global_norm", {}).get("state_len")
    state_len = state_len or config.get("model", {}).get("seqdist", {}).get("state_len")
    if not encoder:
        raise InputError(f"{path}: no model encoder in the config")
    if "type" not in encoder:  # old style: bonito's rnn_encoder
        layers = _old_style(encoder, state_len)
    else:
        layers = _flatten(encoder, "")
    for layer in layers:
        if layer.spec["type"] == "linearcrfencoder":
            state_len = state_len or layer.spec.get("state_len")
    if state_len not in (3, 4, 5):
        raise InputError(f"{path}: CRF state length {state_len!r}; nanoseq takes 3, 4 or 5")
    return layers, int(state_len)


def _old_style(encoder: dict, state_len) -> list[Layer]:
    act = encoder.get("activation", "swish")
    convs = [
        (encoder.get("first_conv_size", 4), 5, 1),
        (16, 5, 1),
        (encoder["features"], encoder["winlen"], encoder["stride"]),
    ]
    specs = [
        dict(type="convolution", size=s, winlen=k, stride=st, padding=k // 2, activation=act)
        for s, k, st in convs
    ]
    specs.append(dict(type="permute"))
    n = encoder.get("num_layers", 5)
    rnn = encoder.get("rnn_type", "lstm")
    specs += [dict(type=rnn, size=encoder["features"], reverse=bool((n - i) % 2)) for i in range(n)]
    specs.append(
        dict(
            type="linearcrfencoder",
            state_len=state_len,
            activation="tanh",
            scale=encoder.get("scale", 5.0),
            blank_score=encoder.get("blank_score"),
        )
    )
    return _numbered(specs, "")


def _numbered(specs: list[dict], prefix: str) -> list[Layer]:
    """Layers of a serial list: keys by position, counting clamps (bonito) or not (dorado)."""
    layers, clamps = [], 0
    for i, spec in enumerate(specs):
        if spec.get("type") == "clamp":
            clamps += 1
        layers.append(Layer(spec, f"{prefix}{i}.", f"{prefix}{i - clamps}."))
    return layers


def _flatten(encoder: dict, prefix: str) -> list[Layer]:
    kind = encoder.get("type")
    if kind == "serial":
        layers = []
        for layer in _numbered(encoder.get("sublayers", []), prefix):
            if layer.spec.get("type") in ("serial", "namedserial", "stack"):
                layers += _flatten(layer.spec, layer.key)
            else:
                layers.append(layer)
        return layers
    if kind == "namedserial":  # children by name: conv, transformer_encoder, upsample, crf
        children = [
            (n, sub) for n, sub in encoder.items() if isinstance(sub, dict) and "type" in sub
        ]
        return [layer for name, sub in children for layer in _flatten(sub, f"{prefix}{name}.")]
    if kind == "stack":
        return _numbered([dict(encoder["layer"]) for _ in range(encoder["depth"])], prefix)
    return [Layer(encoder, prefix, prefix)]


AFFINE = ("linear", "linearupsample")


def _split(layers: list[Layer], path: Path):
    """The backbone's layers, the affine layers before the CRF's, the CRF's, and the clamp
    after it (v4's, or None)."""
    layers = [layer for layer in layers if layer.spec["type"] != "permute"]
    clamp = None
    if layers and layers[-1].spec["type"] == "clamp":
        bounds = (layers[-1].spec["min"], layers[-1].spec["max"])
        if bounds[0] != -bounds[1]:
            raise InputError(f"{path}: a clamp of the CRF's scores to {bounds} is not supported")
        clamp = float(bounds[1])
        layers = layers[:-1]
    if not layers or layers[-1].spec["type"] != "linearcrfencoder":
        raise InputError(f"{path}: the encoder does not end in a CRF (linearcrfencoder)")
    *body, crf = layers
    affine = []
    while body and body[-1].spec["type"] in AFFINE and not body[-1].spec.get("activation"):
        affine.insert(0, body.pop())
    known = ("convolution", "clamp", "lstm", "linear", "transformerencoderlayer", *ACTIVATIONS)
    for layer in body:
        if layer.spec["type"] not in known:
            raise InputError(f"{path}: layer type {layer.spec['type']!r} is not supported")
    return body, affine, crf, clamp


def _backbone_spec(spec: dict) -> dict:
    kind = spec["type"]
    if kind == "convolution":  # padded by half its width, as dorado does whatever the config says
        if spec["winlen"] % 2 == 0:
            raise InputError(f"a convolution of even width {spec['winlen']} is not supported")
        spec = {**spec, "padding": spec["winlen"] // 2}
        keep = ("size", "winlen", "stride", "padding", "activation")
    elif kind == "lstm":
        keep = ("size", "reverse")
    elif kind == "transformerencoderlayer":
        return {
            "type": "transformer",
            **{k: spec[k] for k in ("d_model", "nhead", "dim_feedforward", "deepnorm_alpha")},
            "attn_window": spec.get("attn_window"),
        }
    elif kind == "linear":
        spec = {**spec, "size": spec.get("out_features", spec.get("size"))}
        keep = ("size", "bias", "activation")
    elif kind == "clamp":
        keep = ("min", "max")
    else:
        keep = ()
    return {"type": kind, **{k: spec[k] for k in keep if spec.get(k) is not None}}


def _head(spec: dict, state_len: int, clamp, config: dict) -> CRFHead:
    if spec.get("blank_score") is None:
        raise InputError("CRF heads with a learned stay score (no blank_score) are not supported")
    if spec.get("activation") not in (None, "tanh"):
        raise InputError(f"CRF activation {spec['activation']!r} is not supported")
    qscore = config.get("qscore", {})
    table = None
    if qscore:  # dorado's: each base's quality scaled and shifted
        q = np.arange(MAX_QSCORE + 1) * float(qscore.get("scale", 1.0)) + float(
            qscore.get("bias", 0)
        )
        table = qscores(q).tolist()
    return CRFHead(
        state_len=state_len,
        scale=spec.get("scale") or 1.0,
        tanh=spec.get("activation") == "tanh",
        blank=spec["blank_score"],
        clamp=clamp,
        qscore_table=table,
    )


def _find(weights: Weights, layer: Layer, name: str, path: Path, required: bool = True):
    key = layer.prefix(weights) + name
    if required and key not in weights.tensors:
        raise InputError(f"{path.parent}: no weight {key}")
    return weights.tensors.get(key)


def _head_weights(layers: list[Layer], weights: Weights, path: Path):
    """The affine layers and the CRF's linear one as one dense kernel ``(in, upsample *
    classes)`` and bias, and ``upsample``: frame ``j`` of a step takes columns ``j * classes``
    on, as bonito's upsampling takes its output's ``j``-th slice of ``d_model``."""
    maps = None  # (W, b) per output frame, as PyTorch's y = W x + b
    for layer in layers:
        w = _find(weights, layer, "linear.weight", path).astype(np.float64)
        b = _find(weights, layer, "linear.bias", path, required=False)
        b = np.zeros(len(w)) if b is None else b.astype(np.float64)
        if layer.spec["type"] == "linearupsample":
            factor = int(layer.spec["scale_factor"])
            parts = list(zip(np.split(w, factor), np.split(b, factor), strict=True))
        else:
            parts = [(w, b)]
        if maps is None:
            maps = parts
        else:
            maps = [(wj @ wm, wj @ bm + bj) for wm, bm in maps for wj, bj in parts]
    kernel = np.concatenate([w.T for w, _ in maps], axis=1).astype(np.float32)
    bias = np.concatenate([b for _, b in maps]).astype(np.float32)
    return kernel, bias, len(maps)


def _set_weights(backbone, index: int, layer: Layer, weights: Weights, path: Path):
    kind = layer.spec["type"]
    name = f"{index}_{_backbone_spec(layer.spec)['type']}"
    find = lambda key, required=True: _find(weights, layer, key, path, required)  # noqa: E731
    if kind == "convolution":
        w, b = find("conv.weight"), find("conv.bias", False)
        b = np.zeros(len(w)) if b is None else b
        if find("norm.bn.running_mean", False) is not None:  # bonito's, not yet folded
            scale = find("norm.bn.weight") / np.sqrt(find("norm.bn.running_var") + BN_EPS)
            w = w * scale[:, None, None]
            b = (b - find("norm.bn.running_mean")) * scale + find("norm.bn.bias")
        values = [np.transpose(w, (2, 1, 0)), b]
    elif kind == "lstm":
        values = [
            find("rnn.weight_ih_l0").T,
            find("rnn.weight_hh_l0").T,
            find("rnn.bias_ih_l0") + find("rnn.bias_hh_l0"),
        ]
    elif kind == "linear":
        values = [find("linear.weight").T]
        if layer.spec.get("bias", True):
            values.append(find("linear.bias"))
    elif kind == "transformerencoderlayer":
        alpha = find("deepnorm_alpha", False)
        if alpha is not None and not np.isclose(float(alpha), layer.spec["deepnorm_alpha"]):
            raise InputError(f"{path.parent}: deepnorm_alpha {float(alpha)} in the weights")
        target = backbone.get_layer(name)
        parts = {
            target.qkv: [find("self_attn.Wqkv.weight").T],
            target.out: [find("self_attn.out_proj.weight").T, find("self_attn.out_proj.bias")],
            target.fc1: [find("ff.fc1.weight").T],
            target.fc2: [find("ff.fc2.weight").T],
        }
        for part, values in parts.items():
            _assign(part, values, layer, path)
        target.norm1.assign(find("norm1.weight"))
        target.norm2.assign(find("norm2.weight"))
        return
    else:
        return
    _assign(backbone.get_layer(name), values, layer, path)


def _assign(target, values: list, layer: Layer, path: Path):
    expected = [tuple(v.shape) for v in target.get_weights()]
    if expected != [tuple(np.shape(v)) for v in values]:
        raise InputError(
            f"{path.parent}: weights of layer {layer.key} have shapes "
            f"{[np.shape(v) for v in values]}, the config makes {expected}"
        )
    target.set_weights([np.asarray(v, np.float32) for v in values])


def _metadata(folder: Path, config: dict, chemistry_name, sample_rate, stride: int) -> dict:
    """Chemistry, sample rate, normalisation and windows (whole steps of ``stride``, as dorado
    rounds them)."""
    name = folder.resolve().name
    found = chemistry({"basecall_config_filename": name})
    chem = chemistry_name or found
    rate = sample_rate or config.get("run_info", {}).get("sample_rate")
    if chem == UNKNOWN:
        raise InputError(f"{folder}: its name says no chemistry; give one (--chemistry)")
    if not rate:
        raise InputError(f"{folder}: its config says no sample rate; give one (--sample-rate)")
    scaling = config.get("scaling", {}).get("strategy", "quantile")
    standard = config.get("standardisation", {})
    if name.startswith(R941):  # as dorado: med/MAD for R9.4.1 models whatever the config
        norm = Normalisation("med_mad")
    elif scaling == "pa" and standard.get("standardise", 0):
        norm = Normalisation("pa", float(standard["mean"]), float(standard["stdev"]))
    elif scaling == "pa":
        raise InputError(f"{folder}: pA scaling without standardisation is not supported")
    else:
        norm = Normalisation("quantile")
    basecaller = config.get("basecaller", {})
    return {
        "name": name,
        "chemistry": chem,
        "sample_rate": float(rate),
        "normalisation": norm.to_dict(),
        "chunk_size": int(basecaller.get("chunksize", CHUNK_SIZE)) // stride * stride,
        "overlap": int(basecaller.get("overlap", OVERLAP)) // stride * stride,
        "imported_from": "dorado" if any(folder.glob("*.tensor")) else "bonito",
    }
