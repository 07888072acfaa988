"""Per-read signal normalisation (pA in, float32 out) and open-pore trimming. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nanoseq.errors import InputError

METHODS = ("med_mad", "quantile", "pa")


def _as_signal(signal) -> np.ndarray:
    x = np.asarray(signal)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"expected a non-empty 1-D signal, got shape {x.shape}")
    return x


FLAT = 1e-6  # a spread below this (pA) is a constant signal's, not a read's


def med_mad(signal, factor: float = 1.4826) -> tuple[float, float]:
    """Median and ``factor`` * median absolute deviation; a scale below :data:`FLAT` (a
    constant signal, or one whose spread would overflow float32 once divided) becomes 1.0."""
    x = _as_signal(signal).astype(np.float64)
    shift = float(np.median(x))
    scale = float(factor * np.median(np.abs(x - shift)))
    return shift, (scale if scale > FLAT else 1.0)


def quantile(
    signal,
    q_lo: float = 0.2,
    q_hi: float = 0.9,
    shift_mult: float = 0.51,
    scale_mult: float = 0.53,
    min_shift: float = 10.0,
    min_scale: float = 1.0,
) -> tuple[float, float]:
    """Bonito's rule: ``qa, qb = quantiles(q_lo, q_hi)``;
    ``shift = max(min_shift, shift_mult * (qa + qb))``,
    ``scale = max(min_scale, scale_mult * (qb - qa))``."""
    x = _as_signal(signal).astype(np.float64)
    qa, qb = np.quantile(x, [q_lo, q_hi])
    shift = max(min_shift, shift_mult * float(qa + qb))
    scale = max(min_scale, scale_mult * float(qb - qa))
    return float(shift), float(scale)


def standardise(signal, shift: float, scale: float) -> np.ndarray:
    """``(signal - shift) / scale`` as float32; ``scale`` must be finite and > 0."""
    x = _as_signal(signal)
    if not np.isfinite(shift) or not np.isfinite(scale) or scale <= 0:
        raise InputError(f"need a finite shift and a finite scale > 0, got {shift}, {scale}")
    return ((x.astype(np.float64) - shift) / scale).astype(np.float32)


def normalise(
    signal, method: str = "med_mad", mean: float | None = None, sd: float | None = None
) -> tuple[np.ndarray, float, float]:
    """Normalise one read; returns ``(float32 signal, shift, scale)``.

    ``method``: ``"med_mad"``, ``"quantile"`` or ``"pa"`` (fixed pA ``mean`` and ``sd``).
    """
    if method == "med_mad":
        shift, scale = med_mad(signal)
    elif method == "quantile":
        shift, scale = quantile(signal)
    elif method == "pa":
        if mean is None or sd is None:
            raise InputError("normalisation 'pa' needs both a mean and an sd (pA)")
        shift, scale = float(mean), float(sd)
    else:
        raise InputError(f"unknown normalisation {method!r}; choose one of {', '.join(METHODS)}")
    return standardise(signal, shift, scale), shift, scale


@dataclass(frozen=True)
class Normalisation:
    """How a read's pA signal is normalised: ``method`` ``med_mad``, ``quantile`` or ``pa`` (a
    fixed ``mean`` and ``sd`` in pA, as dorado's models of a known pore level)."""

    method: str = "med_mad"
    mean: float | None = None
    sd: float | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(f"unknown normalisation {self.method!r}; one of {', '.join(METHODS)}")
        pa = self.method == "pa"
        if pa != (self.mean is not None) or pa != (self.sd is not None):
            raise InputError("normalisation 'pa' takes a mean and an sd (pA); the others neither")
        if pa and not (np.isfinite(self.mean) and np.isfinite(self.sd) and self.sd > 0):
            raise InputError(f"normalisation 'pa' needs a finite mean and sd > 0, got {self}")

    def __call__(self, signal) -> tuple[np.ndarray, float, float]:
        """``(float32 signal, shift, scale)``: see :func:`normalise`."""
        return normalise(signal, self.method, self.mean, self.sd)

    def to_dict(self) -> dict:
        extra = {"mean": self.mean, "sd": self.sd} if self.method == "pa" else {}
        return {"method": self.method, **extra}

    @classmethod
    def from_dict(cls, value: dict | str) -> Normalisation:
        """From :meth:`to_dict`'s form, or a method's name alone."""
        return cls(value) if isinstance(value, str) else cls(**value)


MED_MAD = Normalisation()  # the default


def trim_start(
    signal,
    window: int = 40,
    threshold: float = 4.0,
    max_lead: int = 200,
    max_fraction: float = 0.3,
) -> int:
    """Number of leading samples to drop (open pore / adapter before the strand).

    Rule: ``level = median + threshold * MAD`` of the read past the cap (strand only: the
    open pore sits far above it). Cut the read into ``window``-sample windows; a window is *high*
    when more than half its samples exceed ``level``. If the first high window starts
    within the first ``max_lead`` samples, the trim is the end of the run of consecutive
    high windows from there, moved forward past any samples still above ``level`` at the
    start of the next window. The result is capped at ``max_fraction`` of the read; 0
    when there is no such stretch.
    """
    x = _as_signal(signal)
    n = x.size
    cap = int(max_fraction * n)
    n_win = n // window
    if n_win == 0 or cap == 0:
        return 0
    shift, scale = med_mad(x[cap:])
    above = x[: n_win * window] > shift + threshold * scale
    high = above.reshape(n_win, window).sum(axis=1) * 2 > window
    first = int(np.argmax(high))
    if not high[first] or first * window >= max_lead:
        return 0
    low = np.flatnonzero(~high[first:])
    if low.size == 0:
        return cap
    end_win = first + int(low[0])
    tail = above[end_win * window : (end_win + 1) * window]
    trim = end_win * window + int(np.argmin(tail))  # leading high samples of that window
    return min(trim, cap)
