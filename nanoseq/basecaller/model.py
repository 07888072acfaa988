"""The basecaller: a :class:`SignalBackbone` and a head (:mod:`~nanoseq.basecaller.head`) that
scores each frame; a task in keras-hub's sense.

Input ``(batch, samples, 1)`` normalised signal; output per frame ``(batch, samples // stride,
head.classes)`` float32. The head can emit ``upsample`` frames per recurrent step (as bonito's
linear upsample): CTC needs a blank between two equal bases, so at a stride of 6, 58 % of the
homopolymers (>= 3 bases) of the R9.4.1 lambda training reads have too few frames to be called;
at 3, 7 %, for the price of a wider head only. A CRF head needs no blanks (its states know the
bases before), but also emits at most one base a frame.

The model carries everything basecalling needs in ``metadata``: the alphabet and stride, and
the settings of the chunks it was trained on (chemistry, sample rate, normalisation, chunk
size; see :mod:`nanoseq.signal.settings`), saved with it in the ``.keras`` file.
"""

from __future__ import annotations

import keras
import numpy as np

from nanoseq.basecaller import crf, ctc, serial  # noqa: F401 (registers heads, backbones)
from nanoseq.basecaller.backbone import SignalBackbone
from nanoseq.basecaller.head import Decoded, Head, make_head
from nanoseq.models import DEFAULT_BEAM_WIDTH, Task
from nanoseq.signal.chunks import n_frames
from nanoseq.signal.labels import ALPHABET
from nanoseq.signal.settings import SignalSettings

CHUNK_SIZE, OVERLAP = 3600, 480  # windows when basecalling (samples), unless trained on others


@keras.saving.register_keras_serializable(package="nanoseq")
class Basecaller(Task, keras.Model):
    """``backbone`` (default: a new :class:`SignalBackbone`) under a float32 dense head of
    ``upsample`` frames per feature step, scored as ``head`` (a :class:`Head` or its kind)."""

    nested = ("backbone", "head")

    def __init__(self, backbone=None, head="ctc", upsample=1, metadata=None, **kwargs):
        backbone = backbone if backbone is not None else SignalBackbone()
        head = make_head(head) if isinstance(head, str) else head
        if backbone.stride % upsample:
            raise ValueError(f"upsample {upsample} must divide the total stride {backbone.strides}")
        signal = keras.Input((None, 1), name="signal")
        scores = keras.layers.Dense(upsample * head.classes, dtype="float32", name="head")(
            backbone(signal)
        )
        if upsample > 1:
            scores = keras.layers.Reshape((-1, head.classes), name="upsample")(scores)
        super().__init__(signal, scores, **kwargs)
        self.backbone, self.head, self.upsample = backbone, head, upsample
        self.input_stride = backbone.stride  # samples per recurrent step
        self.stride = backbone.stride // upsample  # samples per output frame
        self.metadata = {
            **SignalSettings().to_metadata(),
            "chunk_size": CHUNK_SIZE,
            "overlap": OVERLAP,
            **(metadata or {}),
            "alphabet": ALPHABET,
            "stride": self.stride,
        }

    @property
    def settings(self) -> SignalSettings:
        """How reads are prepared for this model: as its training chunks were."""
        return SignalSettings.from_metadata(self.metadata)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "head": keras.saving.serialize_keras_object(self.head),
            "upsample": self.upsample,
            "metadata": self.metadata,
        }

    def output_frames(self, samples: int) -> int:
        """Frames this model outputs for ``samples``."""
        return self.upsample * n_frames(samples, self.input_stride)

    def frames(self, windows, beam_width: int = 1) -> tuple:
        """What decoding on the host takes for a batch of windows (in the graph): see
        :meth:`Head.frames`."""
        return self.head.frames(self(windows, training=False), beam_width)

    def decode(
        self, scores: np.ndarray, beam_width: int = DEFAULT_BEAM_WIDTH, batch_size: int = 64
    ) -> list[Decoded]:
        """Calls of this model's output ``(n, frames, classes)``, one :class:`Decoded` a row."""
        return self.head.decode_scores(scores, beam_width, batch_size)

    def upsampled(self, upsample: int) -> Basecaller:
        """This model with a head emitting ``upsample`` frames per recurrent step, each frame a
        copy of this head's (a CTC head calls the same bases until trained further; a CRF head
        may move in every copy, so it must be trained further)."""
        if upsample % self.upsample:
            raise ValueError(f"upsample {upsample} is not a multiple of {self.upsample}")
        ratio, classes = upsample // self.upsample, self.head.classes
        source = (np.arange(upsample) // ratio)[:, None] * classes + np.arange(classes)
        model = self._rebuilt(self.head, upsample)
        weights = self.get_layer("head").get_weights()
        model.get_layer("head").set_weights([w[..., source.ravel()] for w in weights])
        return model

    def with_head(self, head: str | Head) -> Basecaller:
        """This model with a new, untrained head: the backbone (what reads the signal) kept."""
        return self._rebuilt(head, self.upsample)

    def _rebuilt(self, head, upsample: int) -> Basecaller:
        """A model of this backbone's config and weights, under a new dense head."""
        backbone = type(self.backbone).from_config(self.backbone.get_config())
        backbone.set_weights(self.backbone.get_weights())
        return Basecaller(backbone, head, upsample, self.metadata)
