"""The basecaller's backbone: what reads the signal. Convolutions (swish) over the normalised
signal, then stacked bidirectional LSTM/GRU layers; the heads of
:class:`~nanoseq.basecaller.model.Basecaller` sit on its features."""

from __future__ import annotations

import math

import keras

from nanoseq.recurrent import GRU, LSTM, Bidirectional

STRIDES = (1, 1, 6)
CELLS = {"lstm": LSTM, "gru": GRU}


@keras.saving.register_keras_serializable(package="nanoseq")
class SignalBackbone(keras.Model):
    """Signal ``(batch, samples, 1)`` -> features ``(batch, samples // stride, 2 * units)``, the
    total stride the product of ``strides``. ``layers`` 0 leaves the convolutions alone.

    The recurrent layers keep cuDNN-eligible settings (tanh/sigmoid, no recurrent dropout,
    biases on, not unrolled) so the same model runs fast on a GPU.
    """

    def __init__(
        self,
        filters=(4, 16, 96),
        kernels=(5, 5, 19),
        strides=STRIDES,
        rnn="lstm",
        units=96,
        layers=3,
        dtype=None,
        **kwargs,
    ):
        if not len(filters) == len(kernels) == len(strides):
            raise ValueError("filters, kernels and strides need one entry per convolution")
        if rnn not in CELLS:
            raise ValueError(f"rnn must be 'lstm' or 'gru', got {rnn!r}")
        signal = keras.Input((None, 1), name="signal")
        x = signal
        for i, (f, k, s) in enumerate(zip(filters, kernels, strides, strict=True)):
            x = keras.layers.Conv1D(f, k, strides=s, padding="same", dtype=dtype, name=f"conv{i}")(
                x
            )
            x = keras.layers.Activation("swish", dtype=dtype, name=f"swish{i}")(x)
        # All cells stay alive until the model is built: Bidirectional copies its cell through
        # Keras serialization, which while loading a model treats a reused id() (a freed cell's
        # address given to the next) as one shared object and made both directions one layer.
        cells = [CELLS[rnn](units, return_sequences=True, dtype=dtype) for _ in range(layers)]
        for i, cell in enumerate(cells):
            x = Bidirectional(cell, dtype=dtype, name=f"{rnn}{i}")(x)
        super().__init__(signal, x, **kwargs)
        if dtype is not None:
            self.dtype_policy = keras.dtype_policies.get(dtype)
        self.filters, self.kernels, self.strides = list(filters), list(kernels), list(strides)
        self.rnn, self.units, self.layers_count = rnn, units, layers
        self.stride = self.total_stride({"strides": strides})

    @staticmethod
    def total_stride(config: dict) -> int:
        """Samples per feature step of the backbone of ``config``."""
        return math.prod(config.get("strides", STRIDES))

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "filters": self.filters,
            "kernels": self.kernels,
            "strides": self.strides,
            "rnn": self.rnn,
            "units": self.units,
            "layers": self.layers_count,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def backbone_stride(serialized: dict) -> int:
    """The total stride of a saved backbone (its serialized config), without building it."""
    cls = keras.saving.get_registered_object(serialized["registered_name"])
    return cls.total_stride(serialized["config"])
