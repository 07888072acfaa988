"""A basecaller's head: what the model's scores per frame mean, and everything that follows from
that. Each head is one class (:mod:`~nanoseq.basecaller.ctc`, :mod:`~nanoseq.basecaller.crf`)
and the model hands it training and decoding; nothing else asks which head a model has, so a new
head is one new module.

A head is a Keras ``Loss`` (its ``call`` is the per-chunk training loss, saved with a compiled
model) that also knows:

- ``classes``: scores per frame;
- :meth:`Head.frames`: in the compiled model, a batch of scores -> what decoding on the host
  takes, a tuple of per-frame arrays ``(batch, frames, ...)`` (stitched across windows one by one);
- :meth:`Head.decode`: one read's stitched frames -> :class:`Decoded` (bases, qualities, moves);
- :meth:`Head.compiled_width`: the beam width the in-graph part depends on;
- :meth:`Head.feasible`: which training chunks the loss can align;
- ``skip``: labels a call does not emit (a CRF path starts in the state of its first bases);
- :meth:`Head.calibrated`: the head tuned on validation scores after training.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import keras
import numpy as np

from nanoseq.io import mean_qscore
from nanoseq.metrics import aligned, median_accuracy, phred
from nanoseq.models import DEFAULT_BEAM_WIDTH
from nanoseq.runtime import compiled_for
from nanoseq.signal.labels import ALPHABET

MAX_QSCORE = 50


class Decoded(NamedTuple):
    """A read's called bases, their phred scores (uint8) and its move table (uint8, one entry a
    frame, 1 where a base is emitted)."""

    sequence: str
    qualities: np.ndarray
    moves: np.ndarray


def decoded(frames: int, at: np.ndarray, codes: np.ndarray, p: np.ndarray, table=None) -> Decoded:
    """Bases ``codes`` (1..4) emitted at frames ``at`` of ``frames``, each right with probability
    ``p``: its quality -10 log10(1 - p), rounded, from 1 to :data:`MAX_QSCORE`, or what the
    head's calibration ``table`` makes of that."""
    error = np.clip(1.0 - p, 10 ** (-MAX_QSCORE / 10), 1.0)
    qualities = np.clip(np.rint(-10 * np.log10(error)), 1, MAX_QSCORE).astype(np.uint8)
    if table is not None:
        qualities = np.asarray(table, dtype=np.uint8)[qualities]
    moves = np.zeros(frames, dtype=np.uint8)
    moves[at] = 1
    return Decoded("".join(ALPHABET[c] for c in codes), qualities, moves)


class Head(keras.losses.Loss):
    """The base of the heads; see the module's docstring. ``qscore_table`` maps a base's
    posterior quality (0 to :data:`MAX_QSCORE`) to the quality it is reported at: fitted after
    training so that a base called at Q20 is wrong one time in a hundred
    (:meth:`with_fitted_qualities`); None keeps the posterior's. ``read_error_scale``: a read's
    errors over the sum of its bases' error probabilities (it misses bases, which no quality
    can carry), fitted with the table; a read's mean qscore counts it."""

    kind: ClassVar[str]  # the name `--head` takes
    classes: int  # a head's class or the head itself (a CRF's state length) says
    skip: int = 0

    def __init__(
        self, qscore_table: list[int] | None = None, read_error_scale: float = 1.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.qscore_table = None if qscore_table is None else [int(q) for q in qscore_table]
        self.read_error_scale = float(read_error_scale)

    def get_config(self):
        return {
            **super().get_config(),
            "qscore_table": self.qscore_table,
            "read_error_scale": self.read_error_scale,
        }

    def copy(self, **changes) -> Head:
        """This head with some of its settings changed."""
        return type(self).from_config({**self.get_config(), **changes})

    def frames(self, scores, beam_width: int = 1) -> tuple:
        raise NotImplementedError

    def decode(self, frames: tuple, beam_width: int = 1) -> Decoded:
        raise NotImplementedError

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

    def with_fitted_qualities(
        self, scores, truths: list[str], batch_size: int = 64, beam_width: int = DEFAULT_BEAM_WIDTH
    ) -> Head:
        """This head with the quality table under which the bases it calls of ``scores`` (with
        basecalling's default beam: a CTC beam's qualities are not its best path's) are as
        often wrong as their qualities say: per posterior quality, the errors of the calls
        aligned to ``truths`` (edlib), made monotone as isotonic regression does (neighbouring
        qualities whose error rate does not fall pooled, their bases and errors summed:
        :func:`pooled_qualities`); qualities seen too rarely take their neighbours'. Then
        the read error scale under which the calls' mean qscores (by the table) meet
        -10 log10(1 - identity) in the median (the median minimises the absolute gaps)."""
        raw = self.copy(qscore_table=None)  # decoding reports the posterior's qualities
        bases, errors = np.zeros(MAX_QSCORE + 1), np.zeros(MAX_QSCORE + 1)
        calls = raw.decode_scores(scores, beam_width, batch_size)
        alignments = [aligned(c.sequence, t) for c, t in zip(calls, truths, strict=True)]
        for call, alignment in zip(calls, alignments, strict=True):
            np.add.at(bases, call.qualities, 1)
            np.add.at(errors, call.qualities[~alignment.read_ok], 1)
        seen = np.flatnonzero(bases >= MIN_BASES)
        if not len(seen):
            return self
        fitted = pooled_qualities(bases[seen], errors[seen])
        table = np.interp(np.arange(MAX_QSCORE + 1), seen, fitted)
        table = np.clip(np.rint(table), 1, MAX_QSCORE).astype(int)
        gaps = [
            mean_qscore(table[call.qualities]) - phred(1 - alignment.identity)
            for call, alignment in zip(calls, alignments, strict=True)
            if len(call.sequence)
        ]
        return self.copy(
            qscore_table=table.tolist(), read_error_scale=10 ** (float(np.median(gaps)) / 10)
        )

    def truth(self, labels: np.ndarray) -> str:
        """What a call of a chunk labelled ``labels`` (codes, 0 padded) should be."""
        return "".join(ALPHABET[c] for c in labels if c)[self.skip :]


MIN_BASES = 100  # bases a quality needs to count in the fit


def best_setting(values, calls_for, truths: list[str]) -> tuple:
    """Of ``values`` of a decoding setting, the one under which ``calls_for(value)`` (decoded
    validation chunks) match ``truths`` best (median accuracy; of equals, the first), and each
    value's accuracy."""
    found = {v: median_accuracy(truths, [c.sequence for c in calls_for(v)]) for v in values}
    return max(found, key=found.get), found


def pooled_qualities(bases: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """The Q that ``errors`` of ``bases`` measure in each of a row of quality bins, made
    non-decreasing as isotonic regression of the errors does: neighbouring bins whose error
    rate does not fall are pooled (their bases and errors summed), each pool measuring
    -10 log10((errors + 0.5) / (bases + 1)). Pooling counts, not each bin's Q, keeps sparse
    bins without errors (whose smoothed Q is low) from dragging well-measured ones down."""
    pools: list[list[float]] = []  # [errors, bases, bins]
    for n, e in zip(bases, errors, strict=True):
        pools.append([float(e), float(n), 1])
        while len(pools) > 1 and pools[-2][0] * pools[-1][1] <= pools[-1][0] * pools[-2][1]:
            e2, n2, k2 = pools.pop()
            pools[-1] = [pools[-1][0] + e2, pools[-1][1] + n2, pools[-1][2] + k2]
    measured = [np.full(int(k), -10 * np.log10((e + 0.5) / (n + 1))) for e, n, k in pools]
    return np.maximum.accumulate(np.concatenate(measured))  # the smoothing can dip a pool


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
