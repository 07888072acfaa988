"""Cut a read into overlapping windows and stitch per-window model outputs back together.

Frame grid: with a model that downsamples by ``stride``, frame ``f`` of the read covers
samples ``[f * stride, (f + 1) * stride)``, so a read of ``length`` samples has
``ceil(length / stride)`` frames. ``chunk`` first zero-pads the read to a multiple of
``stride``, then places windows every ``size - overlap`` samples from 0 and one last window
aligned to the end of that padded read. Every start is therefore a multiple of
``stride`` and window ``i`` covers exactly frames ``starts[i] // stride + [0, size // stride)``,
which makes ``stitch`` exact for any stride. With ``stride=1`` this is bonito's scheme: the
last window ends on the read's last sample and no padding is needed unless the read is
shorter than one window (then a single window, zero-padded at the end).
"""

import operator

import numpy as np

from nanoseq.errors import InputError


def _check(size, overlap, stride) -> tuple[int, int, int]:
    try:
        size, overlap, stride = (operator.index(v) for v in (size, overlap, stride))
    except TypeError as error:
        raise InputError("chunk size, overlap and stride must be integers") from error
    if size <= 0:
        raise InputError(f"chunk size must be > 0, got {size}")
    if not 0 <= overlap < size:
        raise InputError(f"chunk overlap must be in [0, size={size}), got {overlap}")
    if stride <= 0:
        raise InputError(f"stride must be > 0, got {stride}")
    if size % stride or overlap % stride:
        raise InputError(
            f"chunk size ({size}) and overlap ({overlap}) must be multiples of stride ({stride})"
        )
    return size, overlap, stride


def n_frames(length: int, stride: int = 1) -> int:
    """Frames for a read of ``length`` samples: ``ceil(length / stride)``."""
    return -(-int(length) // int(stride))


def chunk(signal, size: int, overlap: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``(n, size)`` of ``signal``'s dtype and their int64 sample ``starts``.

    Starts are ``0, step, 2 * step, ...`` (``step = size - overlap``) while a window fits,
    then one window ending at ``ceil(len / stride) * stride``; samples past the read's end
    are zeros. Keep ``len(signal)`` to pass to :func:`stitch`.
    """
    size, overlap, stride = _check(size, overlap, stride)
    x = np.asarray(signal)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"expected a non-empty 1-D signal, got shape {x.shape}")
    padded = max(n_frames(x.size, stride) * stride, size)
    if padded > x.size:
        x = np.concatenate([x, np.zeros(padded - x.size, dtype=x.dtype)])
    starts = np.append(np.arange(0, padded - size, size - overlap), padded - size)
    windows = np.lib.stride_tricks.sliding_window_view(x, size)[starts].copy()
    return windows, starts.astype(np.int64)


def stitch(outputs, starts, length: int, size: int, overlap: int, stride: int = 1) -> np.ndarray:
    """Per-frame output ``(ceil(length / stride), ...)`` for the whole read.

    ``outputs`` is ``(n, size // stride, ...)``: window ``i``'s frames, from ``chunk``'s
    ``starts``. Where neighbours share frames the boundary sits in the middle of the shared
    region (window ``i`` keeps frames before ``(first[i+1] + end[i]) // 2``, in frames); the first
    window keeps its start and the last its end.
    """
    size, overlap, stride = _check(size, overlap, stride)
    outputs = np.asarray(outputs)
    starts = np.asarray(starts, dtype=np.int64)
    frames = size // stride
    total = n_frames(length, stride)
    n = starts.shape[0] if starts.ndim == 1 else -1
    if n < 1 or outputs.ndim < 2 or outputs.shape[:2] != (n, frames):
        raise InputError(
            f"outputs shape {outputs.shape} does not match {starts.shape} starts "
            f"of {frames} frames each"
        )
    if total < 1:
        raise InputError(f"read length must be > 0, got {length}")
    if np.any(starts % stride) or np.any(np.diff(starts) <= 0) or starts[0] != 0:
        raise InputError("window starts must increase from 0 in multiples of stride")
    first = starts // stride
    last = first + frames  # one past each window's last frame
    if last[-1] < total or np.any(first[1:] > last[:-1]):
        raise InputError("windows do not cover the whole read")
    bounds = np.minimum(np.concatenate([[0], (first[1:] + last[:-1]) // 2, [total]]), total)
    pieces = [
        outputs[i, bounds[i] - first[i] : bounds[i + 1] - first[i]]
        for i in range(n)
        if bounds[i + 1] > bounds[i]
    ]
    return np.concatenate(pieces, axis=0)
