"""Decode CTC logits on the host: greedy and beam search, per-base qualities and move tables.

Every decoder returns ``(sequence, qualities, moves)``: the called bases, their phred scores
(uint8) and a per-frame uint8 move table with a 1 at the frame where each base is emitted.
"""

from __future__ import annotations

import numpy as np

from nanoseq.basecaller.model import ALPHABET
from nanoseq.probability import log_softmax

MAX_QSCORE = 50


def _finish(posteriors: np.ndarray, frames: np.ndarray, labels: np.ndarray):
    """Sequence, qualities from the posterior of each emitted label, and the move table."""
    sequence = "".join(ALPHABET[c] for c in labels)
    p = posteriors[frames, labels] if len(frames) else np.zeros(0)
    error = np.clip(1.0 - p, 10 ** (-MAX_QSCORE / 10), 1.0)
    qualities = np.clip(np.rint(-10 * np.log10(error)), 1, MAX_QSCORE).astype(np.uint8)
    moves = np.zeros(len(posteriors), dtype=np.uint8)
    moves[frames] = 1
    return sequence, qualities, moves


def greedy(logits: np.ndarray):
    """Best label per frame, repeats merged, blanks dropped."""
    logits = np.asarray(logits, dtype=np.float32)
    best = logits.argmax(axis=-1)
    new = np.ones(len(best), dtype=bool)
    new[1:] = best[1:] != best[:-1]
    frames = np.flatnonzero(new & (best > 0))
    return _finish(np.exp(log_softmax(logits)), frames, best[frames])


def beam_search(logits: np.ndarray, width: int = 5, cut: float = 1e-3):
    """CTC prefix beam search (fast-ctc-decode); ``width`` 1 falls back to greedy."""
    if width <= 1:
        return greedy(logits)
    from fast_ctc_decode import beam_search as search

    posteriors = np.exp(log_softmax(np.asarray(logits, dtype=np.float32)))
    sequence, path = search(posteriors, ALPHABET, beam_size=width, beam_cut_threshold=cut)
    frames = np.asarray(path, dtype=np.int64)
    labels = np.array([ALPHABET.index(b) for b in sequence], dtype=np.int64)
    return _finish(posteriors, frames, labels)


def decode(logits: np.ndarray, width: int = 1):
    """Greedy for ``width`` 1, beam search otherwise."""
    return beam_search(logits, width) if width > 1 else greedy(logits)
