"""The basecaller: convolutions over raw signal, stacked bidirectional LSTM/GRU, a CTC or CRF
head.

Input ``(batch, samples, 1)`` normalised signal; output per frame ``(batch, samples // stride,
classes)`` float32: with ``decoder="ctc"`` 5 logits over ``N A C G T`` with the CTC blank at
index 0; with ``decoder="crf"`` the 256 move scores of :mod:`nanoseq.basecaller.crf`. The head
can emit ``upsample`` frames per recurrent step (as bonito's linear upsample): CTC needs a blank
between two equal bases, so at a stride of 6, 58 % of the homopolymers (>= 3 bases) of the R9.4.1
lambda training reads have too few frames to be called; at 3, 7 %, for the price of a wider head
only. A CRF head needs no blanks (its states know the bases before), but also emits at most one
base a frame.

The model carries everything basecalling needs in ``metadata`` (alphabet, stride, sample rate,
chemistry, normalisation, chunking), saved with it in the ``.keras`` file.

CTC on the TensorFlow backend uses ``tf.nn.ctc_loss`` with sparse labels (about 100x faster than
the dense path); other backends use ``keras.ops.ctc_loss``.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from nanoseq.basecaller import crf
from nanoseq.lstm import LSTM
from nanoseq.signal.chunks import n_frames

ALPHABET = "NACGT"
STRIDES = (1, 1, 6)

DEFAULT_METADATA = {
    "alphabet": ALPHABET,
    "sample_rate": 4000,
    "chemistry": "dna_r9.4.1",
    "normalisation": "med_mad",
    "chunk_size": 3600,
    "overlap": 480,
}


DECODERS = {"ctc": len(ALPHABET), "crf": crf.SCORES}  # head classes per frame


def output_frames(samples: int, strides, upsample: int = 1) -> int:
    """Frames a basecaller with these ``strides`` and ``upsample`` outputs for ``samples``."""
    return upsample * n_frames(samples, math.prod(strides))


@keras.saving.register_keras_serializable(package="nanoseq")
class Basecaller(keras.Model):
    """CNN front end (total stride = product of ``strides``), RNN stack, float32 dense head.

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
        upsample=1,
        decoder="ctc",
        metadata=None,
        **kwargs,
    ):
        if not len(filters) == len(kernels) == len(strides):
            raise ValueError("filters, kernels and strides need one entry per convolution")
        if math.prod(strides) % upsample:
            raise ValueError(f"upsample {upsample} must divide the total stride {strides}")
        if rnn not in ("lstm", "gru"):
            raise ValueError(f"rnn must be 'lstm' or 'gru', got {rnn!r}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be 'ctc' or 'crf', got {decoder!r}")
        classes = DECODERS[decoder]
        signal = keras.Input((None, 1), name="signal")
        x = signal
        for i, (f, k, s) in enumerate(zip(filters, kernels, strides, strict=True)):
            x = keras.layers.Conv1D(f, k, strides=s, padding="same", name=f"conv{i}")(x)
            x = keras.layers.Activation("swish", name=f"swish{i}")(x)
        cell = LSTM if rnn == "lstm" else keras.layers.GRU
        # All cells stay alive until the model is built: Bidirectional copies its cell through
        # Keras serialization, which while loading a model treats a reused id() (a freed cell's
        # address given to the next) as one shared object and made both directions one layer.
        cells = [cell(units, return_sequences=True) for _ in range(layers)]
        for i, rnn_cell in enumerate(cells):
            x = keras.layers.Bidirectional(rnn_cell, name=f"{rnn}{i}")(x)
        logits = keras.layers.Dense(upsample * classes, dtype="float32", name="logits")(x)
        if upsample > 1:
            logits = keras.layers.Reshape((-1, classes), name="upsample")(logits)
        super().__init__(signal, logits, **kwargs)
        self.filters, self.kernels, self.strides = list(filters), list(kernels), list(strides)
        self.rnn, self.units, self.layers_count, self.upsample = rnn, units, layers, upsample
        self.decoder = decoder
        self.input_stride = math.prod(strides)  # samples per recurrent step
        self.stride = self.input_stride // upsample  # samples per output frame
        self.metadata = {**DEFAULT_METADATA, **(metadata or {}), "stride": self.stride}

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
            "upsample": self.upsample,
            "decoder": self.decoder,
            "metadata": self.metadata,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def upsampled(self, upsample: int) -> Basecaller:
        """This model with a head emitting ``upsample`` frames per recurrent step, each frame a
        copy of this head's (a CTC head calls the same bases until trained further; a CRF head
        may move in every copy, so it must be trained further)."""
        if upsample % self.upsample:
            raise ValueError(f"upsample {upsample} is not a multiple of {self.upsample}")
        ratio = upsample // self.upsample
        classes = DECODERS[self.decoder]  # new head column -> the old column it copies
        source = (np.arange(upsample) // ratio)[:, None] * classes + np.arange(classes)
        return self._rebuilt({"upsample": upsample}, lambda w: w[..., source.ravel()])

    def with_decoder(self, decoder: str) -> Basecaller:
        """This model with a new, untrained head for ``decoder``: the convolutions and recurrent
        layers (what reads the signal) are kept."""
        return self._rebuilt({"decoder": decoder}, None)

    def _rebuilt(self, changes: dict, head) -> Basecaller:
        """A model of this config with ``changes``, this model's weights, and the head's weights
        mapped by ``head`` (None: the new model's own initial head)."""
        config = {**self.get_config(), **changes}
        config.pop("name")
        model = Basecaller(**config)
        for layer in self.layers:
            weights = layer.get_weights()
            if layer.name == "logits":
                if head is None:
                    continue
                weights = [head(w) for w in weights]
            if weights:
                model.get_layer(layer.name).set_weights(weights)
        return model

    def decoder_input(self, windows, width: int = 1):
        """What host decoding takes per frame, for a batch of windows (in the graph): the CTC
        logits, or the CRF's called path and move posteriors (see
        :func:`crf.path_and_posteriors`: its best path with the stay score
        ``metadata["crf_stay"]``, calibrated after training, or a beam search of ``width``)."""
        scores = self(windows, training=False)
        if self.decoder == "crf":
            stay = self.metadata.get("crf_stay", crf.STAY)
            return crf.path_and_posteriors(scores, stay, width)
        return scores


@keras.saving.register_keras_serializable(package="nanoseq")
def ctc_loss(labels, logits):
    """Mean CTC loss per chunk; ``labels`` are 1..4 codes padded with 0 (= blank, never a label)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        labels = tf.cast(labels, tf.int32)
        frames = tf.fill([tf.shape(logits)[0]], tf.shape(logits)[1])
        return tf.nn.ctc_loss(
            labels=tf.sparse.from_dense(labels),
            logits=logits,
            label_length=None,
            logit_length=frames,
            logits_time_major=False,
            blank_index=0,
        )
    ops = keras.ops
    labels = ops.cast(labels, "int32")
    lengths = ops.sum(ops.cast(labels > 0, "int32"), axis=1)
    frames = ops.full((ops.shape(logits)[0],), ops.shape(logits)[1], dtype="int32")
    return ops.ctc_loss(labels, logits, lengths, frames, mask_index=0)


LOSSES = {"ctc": ctc_loss, "crf": crf.crf_loss}  # the training loss of each head
