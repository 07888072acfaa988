"""A backbone described layer by layer, in the vocabulary of bonito's model configs: what ONT's
basecallers are built of (:mod:`nanoseq.basecaller.ont` imports them into one), and
deepnano-blitz's networks (:mod:`nanoseq.basecaller.blitz`).

``layers`` is a list of dicts, each with a ``type``:

- ``convolution``: ``size`` filters of ``winlen`` samples, ``stride``, zero ``padding`` on both
  sides (as PyTorch pads; Keras's ``same`` pads otherwise with a stride), ``activation``;
- ``clamp``: ``min``, ``max``;
- ``squares``: the features followed by their squares;
- ``maxpool``: the maximum of every ``size`` steps (a stride of ``size``);
- ``lstm``, ``gru``: ``size`` units, over time reversed when ``reverse`` (read back to front,
  the outputs in time order); the GRU's reset gate after its recurrent product;
- ``transformer``: a :class:`~nanoseq.basecaller.transformer.TransformerEncoderLayer`;
- ``linear``: ``size``, ``bias``, ``activation``;
- ``swish``, ``tanh``, ``relu``: an activation alone.

Keras layer ``i`` of the list is named ``"{i}_{type}"`` (several for an LSTM or a convolution).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from nanoseq.basecaller.transformer import TransformerEncoderLayer
from nanoseq.recurrent import GRU, LSTM

ACTIVATIONS = ("swish", "tanh", "relu")
RECURRENT = {"lstm": LSTM, "gru": GRU}


@keras.saving.register_keras_serializable(package="nanoseq")
class Clamp(keras.layers.Layer):
    def __init__(self, min, max, **kwargs):
        super().__init__(**kwargs)
        self.min, self.max = float(min), float(max)

    def call(self, x):
        return ops.clip(x, self.min, self.max)

    def get_config(self):
        return {**super().get_config(), "min": self.min, "max": self.max}


@keras.saving.register_keras_serializable(package="nanoseq")
class Squares(keras.layers.Layer):
    """The features, then their squares: ``(..., n)`` -> ``(..., 2 n)``."""

    def call(self, x):
        return ops.concatenate([x, x * x], axis=-1)


@keras.saving.register_keras_serializable(package="nanoseq")
class Flip(keras.layers.Layer):
    """Time reversed: ``(batch, steps, features)`` read back to front."""

    def call(self, x):
        return ops.flip(x, axis=1)


def _activation(name, dtype, layer_name):
    if name is None:
        return lambda x: x
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; nanoseq knows {', '.join(ACTIVATIONS)}")
    return keras.layers.Activation(name, dtype=dtype, name=layer_name)


def _apply(spec: dict, x, name: str, dtype):
    kind = spec["type"]
    if kind == "convolution":
        pad = int(spec.get("padding", 0))
        if pad:
            x = keras.layers.ZeroPadding1D(pad, dtype=dtype, name=f"{name}_pad")(x)
        x = keras.layers.Conv1D(
            spec["size"],
            spec["winlen"],
            strides=spec.get("stride", 1),
            use_bias=spec.get("bias", True),
            dtype=dtype,
            name=name,
        )(x)
        return _activation(spec.get("activation"), dtype, f"{name}_act")(x)
    if kind == "clamp":
        return Clamp(spec["min"], spec["max"], dtype=dtype, name=name)(x)
    if kind == "squares":
        return Squares(dtype=dtype, name=name)(x)
    if kind == "maxpool":
        return keras.layers.MaxPooling1D(spec["size"], dtype=dtype, name=name)(x)
    if kind in RECURRENT:
        reverse = bool(spec.get("reverse", False))
        if reverse:
            x = Flip(dtype=dtype, name=f"{name}_flip")(x)
        x = RECURRENT[kind](spec["size"], return_sequences=True, dtype=dtype, name=name)(x)
        return Flip(dtype=dtype, name=f"{name}_unflip")(x) if reverse else x
    if kind == "transformer":
        options = {k: v for k, v in spec.items() if k != "type"}
        return TransformerEncoderLayer(**options, dtype=dtype, name=name)(x)
    if kind == "linear":
        x = keras.layers.Dense(
            spec["size"], use_bias=spec.get("bias", True), dtype=dtype, name=name
        )(x)
        return _activation(spec.get("activation"), dtype, f"{name}_act")(x)
    if kind in ACTIVATIONS:
        return _activation(kind, dtype, name)(x)
    raise ValueError(f"unknown layer type {kind!r}")


@keras.saving.register_keras_serializable(package="nanoseq")
class SerialBackbone(keras.Model):
    """Signal ``(batch, samples, 1)`` -> features ``(batch, samples // stride, size)`` through
    ``layers`` (see the module's docstring); ``stride`` is the product of the convolutions' and
    the poolings'."""

    def __init__(self, layers, dtype=None, **kwargs):
        layers = [dict(spec) for spec in layers]
        signal = keras.Input((None, 1), name="signal")
        x = signal
        for i, spec in enumerate(layers):
            x = _apply(spec, x, f"{i}_{spec['type']}", dtype)
        super().__init__(signal, x, **kwargs)
        if dtype is not None:
            self.dtype_policy = keras.dtype_policies.get(dtype)
        self.specs = layers
        self.stride = self.total_stride({"layers": layers})

    @staticmethod
    def total_stride(config: dict) -> int:
        """Samples per feature step of the backbone of ``config``."""
        layers = config["layers"]
        strides = [s.get("stride", 1) for s in layers if s["type"] == "convolution"]
        return math.prod(strides + [s["size"] for s in layers if s["type"] == "maxpool"])

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": self.specs,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
