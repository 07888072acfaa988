"""A basecaller's head: what the model's scores per frame mean, and everything that follows from
that. Each head is one class (:mod:`~nanoseq.basecaller.ctc`, :mod:`~nanoseq.basecaller.crf`)
and the model hands it training and decoding; nothing else asks which head a model has, so a new
head is one new module.

A head is a Keras ``Loss`` (its ``call`` is the per-chunk training loss, saved with a compiled
model) that also knows:

- ``classes``: scores per frame;
- :meth:`Head.frames`: in the compiled model, a batch of scores -> what decoding on the host
  takes, a tuple of per-frame arrays ``(batch, frames, ...)`` (stitched across windows one by one);
- :meth:`Head.called`: one read's stitched frames -> :class:`Decoded` (bases, posterior
  qualities, moves); :meth:`Head.decode` reports them through the head's calibration;
- :meth:`Head.compiled_width`: the beam width the in-graph part depends on;
- :meth:`Head.feasible`: which training chunks the loss can align;
- ``skip``: labels a call does not emit (a CRF path starts in the state of its first bases);
- :meth:`Head.calibrated`: the head tuned on validation scores after training.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import keras
import numpy as np

from nanoseq.basecaller.qualities import MAX_QSCORE, fitted, qscores, reported
from nanoseq.io import mean_qscore
from nanoseq.metrics import aligned, median_accuracy, phred
from nanoseq.models import DEFAULT_BEAM_WIDTH
from nanoseq.runtime import compiled_for
from nanoseq.signal.labels import ALPHABET


class Decoded(NamedTuple):
    """A read's called bases, their phred scores (uint8) and its move table (uint8, one entry a
    frame, 1 where a base is emitted)."""

    sequence: str
    qualities: np.ndarray
    moves: np.ndarray


def decoded(frames: int, at: np.ndarray, codes: np.ndarray, p: np.ndarray) -> Decoded:
    """Bases ``codes`` (1..4) emitted at frames ``at`` of ``frames``, each right with probability
    ``p``: its posterior quality -10 log10(1 - p), rounded, from 1 to :data:`MAX_QSCORE`."""
    error = np.clip(1.0 - p, 10 ** (-MAX_QSCORE / 10), 1.0)
    qualities = qscores(-10 * np.log10(error))
    moves = np.zeros(frames, dtype=np.uint8)
    moves[at] = 1
    return Decoded("".join(ALPHABET[c] for c in codes), qualities, moves)


class Head(keras.losses.Loss):
    """The base of the heads; see the module's docstring. ``qscore_table`` and
    ``qscore_context`` turn a base's posterior quality into the quality it is reported at
    (:func:`~nanoseq.basecaller.qualities.reported`) in a beam search's calls, and
    ``best_path_qscores`` (``{"table": ..., "context": ...}``) in the best path's, where given
    (a beam calls uncertain bases the best path skips, so their neighbourhoods differ): fitted
    after training so that a base called at Q20 is wrong one time in a hundred
    (:meth:`with_fitted_qualities`); None keeps the posterior's. ``read_error_scale``: a read's
    errors over the sum of its bases' error probabilities (it misses bases, which no quality
    can carry), fitted with them; a read's mean qscore counts it."""

    kind: ClassVar[str]  # the name `--head` takes
    classes: int  # a head's class or the head itself (a CRF's state length) says
    skip: int = 0

    def __init__(
        self,
        qscore_table: list[int] | None = None,
        read_error_scale: float = 1.0,
        qscore_context: list[float] | None = None,
        best_path_qscores: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.qscore_table = None if qscore_table is None else [int(q) for q in qscore_table]
        self.read_error_scale = float(read_error_scale)
        self.qscore_context = None if qscore_context is None else [float(w) for w in qscore_context]
        self.best_path_qscores = best_path_qscores

    def get_config(self):
        return {
            **super().get_config(),
            "qscore_table": self.qscore_table,
            "read_error_scale": self.read_error_scale,
            "qscore_context": self.qscore_context,
            "best_path_qscores": self.best_path_qscores,
        }

    def copy(self, **changes) -> Head:
        """This head with some of its settings changed."""
        return type(self).from_config({**self.get_config(), **changes})

    def frames(self, scores, beam_width: int = 1) -> tuple:
        raise NotImplementedError

    def called(self, frames: tuple, beam_width: int = 1) -> Decoded:
        raise NotImplementedError

    def decode(self, frames: tuple, beam_width: int = 1) -> Decoded:
        """One read's stitched frames -> its call (:meth:`called`), qualities as reported."""
        call = self.called(frames, beam_width)
        maps = self.qscore_table, self.qscore_context
        if beam_width == 1 and self.best_path_qscores:
            maps = self.best_path_qscores["table"], self.best_path_qscores["context"]
        return call._replace(qualities=reported(call.qualities, *maps))

    def compiled_width(self, beam_width: int) -> int:
        """The beam width :meth:`frames` depends on (one compiled program a width)."""
        return beam_width

    def feasible(self, references: np.ndarray, lengths: np.ndarray, frames: int) -> np.ndarray:
        raise NotImplementedError

    def decode_scores(
        self, scores, beam_width: int = 1, batch_size: int = 64, options: tuple = ()
    ) -> list[Decoded]:
        """The calls of rows of scores ``(n, frames, classes)``, e.g. a model's output for
        training chunks; :meth:`frames` (given ``options`` after the width) runs compiled,
        ``batch_size`` rows at a time."""
        function = compiled_for(self, _frames)
        calls = []
        for i in range(0, len(scores), batch_size):
            frames = [
                keras.ops.convert_to_numpy(f)
                for f in function(scores[i : i + batch_size], beam_width, *options)
            ]
            for row in range(len(frames[0])):
                calls.append(self.decode(tuple(f[row] for f in frames), beam_width))
        return calls

    def calibrated(self, scores: np.ndarray, truths: list[str], batch_size: int) -> Head:
        """This head tuned to decode ``scores`` (validation chunks) as ``truths``; as it is."""
        return self

    def with_fitted_qualities(self, scores, truths: list[str], batch_size: int = 64) -> Head:
        """This head with the qualities fitted (:func:`~nanoseq.basecaller.qualities.fitted`)
        to the errors of the bases it calls of ``scores`` (validation chunks) aligned to
        ``truths`` (edlib): once with basecalling's default beam, once with the best path. Then
        the read error scale under which the beam's calls' mean qscores meet -10 log10(1 -
        identity) in the median (the median minimises the absolute gaps)."""
        raw = self.copy(qscore_table=None, qscore_context=None, best_path_qscores=None)

        def fit(width: int) -> tuple:
            calls = raw.decode_scores(scores, width, batch_size)
            alignments = [aligned(c.sequence, t) for c, t in zip(calls, truths, strict=True)]
            posterior = [call.qualities for call in calls]
            return fitted(posterior, alignments), posterior, alignments

        beam, posterior, alignments = fit(DEFAULT_BEAM_WIDTH)
        if beam is None:
            return self
        gaps = [
            mean_qscore(reported(q, beam["table"], beam["context"])) - phred(1 - a.identity)
            for q, a in zip(posterior, alignments, strict=True)
            if len(q)
        ]
        return self.copy(
            qscore_table=beam["table"],
            qscore_context=beam["context"],
            best_path_qscores=fit(1)[0],
            read_error_scale=10 ** (float(np.median(gaps)) / 10),
        )

    def truth(self, labels: np.ndarray) -> str:
        """What a call of a chunk labelled ``labels`` (codes, 0 padded) should be."""
        return "".join(ALPHABET[c] for c in labels if c)[self.skip :]


def best_setting(values, calls_for, truths: list[str]) -> tuple:
    """Of ``values`` of a decoding setting, the one under which ``calls_for(value)`` (decoded
    validation chunks) match ``truths`` best (median accuracy; of equals, the first), and each
    value's accuracy."""
    found = {v: median_accuracy(truths, [c.sequence for c in calls_for(v)]) for v in values}
    return max(found, key=found.get), found


def _frames(head: Head, scores, beam_width: int = 1, *options):
    return head.frames(scores, beam_width, *options)


HEADS: dict[str, type[Head]] = {}


def register(cls: type[Head]) -> type[Head]:
    """Class decorator: a head known by its ``kind`` and saved with models (Keras registry)."""
    HEADS[cls.kind] = cls
    return keras.saving.register_keras_serializable(package="nanoseq")(cls)


def make_head(kind: str) -> Head:
    """A new head of ``kind`` (``ctc`` or ``crf``)."""
    if kind not in HEADS:
        raise ValueError(f"head must be one of {', '.join(sorted(HEADS))}, got {kind!r}")
    return HEADS[kind]()
