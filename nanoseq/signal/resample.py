"""A read's signal at the model's sample rate (a polyphase filter, ``scipy.signal.resample_poly``)
and a move table made at that rate put back on the read's own samples, so that moves, qualities,
summary times and BAM tags stay in the read's own terms."""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def resample(signal: np.ndarray, rate: float, to_rate: float) -> np.ndarray:
    """``signal`` sampled at ``rate`` Hz, at ``to_rate`` Hz (float32)."""
    if rate == to_rate:
        return signal
    from scipy.signal import resample_poly

    ratio = Fraction(to_rate / rate).limit_denominator(1000)
    out = resample_poly(signal, ratio.numerator, ratio.denominator)
    return out.astype(np.float32)


def moves_on_read(moves: np.ndarray, stride: int, rate: float, model_rate: float, samples: int):
    """A move table of ``stride`` samples a frame at ``model_rate``, on the read's own ``samples``
    at ``rate``: ``(moves, stride)`` with the stride the largest whole number of the read's
    samples that a frame spans at most (so that no two moves share a frame)."""
    if rate == model_rate:
        return moves, stride
    span = stride * rate / model_rate  # read samples per model frame
    own = max(1, int(span))
    frames = -(-samples // own)
    placed = np.zeros(frames, dtype=np.uint8)
    at = np.minimum((np.flatnonzero(moves) * span / own).astype(np.int64), frames - 1)
    placed[at] = 1
    return placed, own
