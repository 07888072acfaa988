"""Decode on the host: CTC logits by greedy or beam search; a CRF model's path (its best path or
its beam search's, found in the graph, see :mod:`nanoseq.basecaller.crf`); per-base qualities
and move tables.

Every decoder returns ``(sequence, qualities, moves)``: the called bases, their phred scores
(uint8) and a per-frame uint8 move table with a 1 at the frame where each base is emitted.
"""

from __future__ import annotations

import numpy as np

from nanoseq.basecaller.model import ALPHABET
from nanoseq.probability import log_softmax

MAX_QSCORE = 50


def _finish(total: int, frames: np.ndarray, labels: np.ndarray, p: np.ndarray):
    """Sequence, qualities from the posterior ``p`` of each label, and the move table of
    ``total`` frames with the labels emitted at ``frames``."""
    sequence = "".join(ALPHABET[c] for c in labels)
    error = np.clip(1.0 - p, 10 ** (-MAX_QSCORE / 10), 1.0)
    qualities = np.clip(np.rint(-10 * np.log10(error)), 1, MAX_QSCORE).astype(np.uint8)
    moves = np.zeros(total, dtype=np.uint8)
    moves[frames] = 1
    return sequence, qualities, moves


def greedy(logits: np.ndarray):
    """Best label per frame, repeats merged, blanks dropped."""
    logits = np.asarray(logits, dtype=np.float32)
    best = logits.argmax(axis=-1)
    new = np.ones(len(best), dtype=bool)
    new[1:] = best[1:] != best[:-1]
    frames = np.flatnonzero(new & (best > 0))
    labels = best[frames]
    p = np.exp(log_softmax(logits[frames]))[np.arange(len(frames)), labels]
    return _finish(len(logits), frames, labels, p)


def beam_search(logits: np.ndarray, width: int = 5, cut: float = 1e-3):
    """CTC prefix beam search (fast-ctc-decode); ``width`` 1 falls back to greedy."""
    if width <= 1:
        return greedy(logits)
    from fast_ctc_decode import beam_search as search

    posteriors = np.exp(log_softmax(np.asarray(logits, dtype=np.float32)))
    sequence, path = search(posteriors, ALPHABET, beam_size=width, beam_cut_threshold=cut)
    frames = np.asarray(path, dtype=np.int64)
    labels = np.array([ALPHABET.index(b) for b in sequence], dtype=np.int64)
    return _finish(len(posteriors), frames, labels, posteriors[frames, labels])


def crf_path(frames: np.ndarray):
    """A CRF model's decoder input (per frame: best-path code, posteriors of moves emitting
    A, C, G, T) -> a base at each move of the path. Its quality is the posterior of a move
    emitting that base near it: from halfway to the previous move to halfway to the next."""
    frames = np.asarray(frames, dtype=np.float32)
    codes = np.rint(frames[:, 0]).astype(np.int64)
    at = np.flatnonzero(codes)
    labels = codes[at]
    edges = np.concatenate([[0], (at[1:] + at[:-1] + 1) // 2, [len(frames)]])
    mass = np.concatenate([np.zeros((1, 4)), np.cumsum(frames[:, 1:], axis=0, dtype=np.float64)])
    p = np.minimum(mass[edges[1:], labels - 1] - mass[edges[:-1], labels - 1], 1.0)
    return _finish(len(frames), at, labels, p)


def decode(outputs: np.ndarray, width: int = 1, decoder: str = "ctc"):
    """A read's decoder input (stitched) -> ``(sequence, qualities, moves)``. CTC: greedy for
    ``width`` 1, beam search otherwise; CRF: the path found in the graph (at its width)."""
    if decoder == "crf":
        return crf_path(outputs)
    return beam_search(outputs, width) if width > 1 else greedy(outputs)
