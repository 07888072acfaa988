import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nanoseq.errors import InputError
from nanoseq.signal.chunks import chunk, n_frames, stitch

SETTINGS = settings(max_examples=200, deadline=None)


@st.composite
def layouts(draw):
    """(length, size, overlap, stride) with size and overlap multiples of stride."""
    stride = draw(st.integers(1, 6))
    frames = draw(st.integers(1, 12))
    size = frames * stride
    overlap = draw(st.integers(0, frames - 1)) * stride
    kind = draw(st.sampled_from(["any", "exact", "short"]))
    if kind == "short":
        length = draw(st.integers(1, size))
    elif kind == "exact":  # windows tile the read exactly
        length = size + draw(st.integers(0, 5)) * (size - overlap)
    else:
        length = draw(st.integers(1, 6 * size))
    return length, size, overlap, stride


def fake_model(starts, length, size, stride, trailing=()):
    """Frame j of a window starting at sample s is s // stride + j; -1 past the read's end."""
    frames = np.asarray(starts)[:, None] // stride + np.arange(size // stride)
    frames = np.where(frames < n_frames(length, stride), frames, -1)
    return np.broadcast_to(
        frames.reshape(frames.shape + (1,) * len(trailing)), frames.shape + trailing
    )


@SETTINGS
@given(layouts())
def test_chunk_covers_read(layout):
    length, size, overlap, stride = layout
    signal = np.arange(1, length + 1, dtype=np.float32)
    windows, starts = chunk(signal, size, overlap, stride)
    assert windows.shape == (len(starts), size)
    assert windows.dtype == np.float32
    assert starts[0] == 0 and np.all(starts % stride == 0) and np.all(np.diff(starts) > 0)
    # regular step except possibly the end-aligned last window
    assert np.all(np.diff(starts)[:-1] == size - overlap)
    assert np.all(np.diff(starts) <= size - overlap)
    # the last window ends at the read's end rounded up to the stride (or at size)
    assert starts[-1] + size == max(n_frames(length, stride) * stride, size)
    for s, w in zip(starts, windows, strict=True):
        real = signal[s : s + size]
        np.testing.assert_array_equal(w[: real.size], real)
        assert np.all(w[real.size :] == 0)
        # zero padding only past the read's end: < stride samples, or a short read's tail
        assert size - real.size <= max(stride - 1, size - length)
    covered = np.zeros(length, dtype=bool)
    for s in starts:
        covered[s : s + size] = True
    assert covered.all()


@SETTINGS
@given(layouts())
def test_stitch_recovers_frame_sequence(layout):
    length, size, overlap, stride = layout
    windows, starts = chunk(np.ones(length, dtype=np.float32), size, overlap, stride)
    outputs = fake_model(starts, length, size, stride)
    stitched = stitch(outputs, starts, length, size, overlap, stride)
    np.testing.assert_array_equal(stitched, np.arange(n_frames(length, stride)))


@SETTINGS
@given(layouts(), st.integers(1, 4))
def test_stitch_trailing_dims(layout, classes):
    length, size, overlap, stride = layout
    _, starts = chunk(np.ones(length, dtype=np.float32), size, overlap, stride)
    frames = fake_model(starts, length, size, stride, trailing=(classes,))
    logits = frames * 10.0 + np.arange(classes)  # (n, T, C), distinct per class
    stitched = stitch(logits, starts, length, size, overlap, stride)
    total = n_frames(length, stride)
    assert stitched.shape == (total, classes)
    np.testing.assert_array_equal(stitched, np.arange(total)[:, None] * 10.0 + np.arange(classes))


@SETTINGS
@given(layouts())
def test_stitch_keeps_middle_of_overlaps(layout):
    """Each frame comes from a window that covers it, away from that window's shared edges."""
    length, size, overlap, stride = layout
    _, starts = chunk(np.ones(length, dtype=np.float32), size, overlap, stride)
    T = size // stride
    n = len(starts)
    frames = fake_model(starts, length, size, stride)
    source = np.broadcast_to(np.arange(n)[:, None], frames.shape)
    stitched = stitch(np.stack([frames, source], axis=-1), starts, length, size, overlap, stride)
    total = n_frames(length, stride)
    np.testing.assert_array_equal(stitched[:, 0], np.arange(total))
    src = stitched[:, 1]
    assert np.all(np.diff(src) >= 0)
    first = starts // stride
    shared = first[:-1] + T - first[1:]  # frames shared by neighbours i, i + 1
    assert np.all(shared >= overlap // stride)
    for f, i in enumerate(src):
        assert first[i] <= f < first[i] + T
        if i > 0:
            assert f - first[i] >= shared[i - 1] // 2
        if i < n - 1:
            assert first[i] + T - 1 - f >= shared[i] // 2


@SETTINGS
@given(layouts())
def test_stitch_per_sample_round_trip(layout):
    length, size, overlap, _ = layout
    signal = np.random.default_rng(length).normal(size=length).astype(np.float32)
    windows, starts = chunk(signal, size, overlap)
    np.testing.assert_array_equal(stitch(windows, starts, length, size, overlap), signal)


def test_chunk_known_layout():
    windows, starts = chunk(np.arange(10), size=4, overlap=2)
    np.testing.assert_array_equal(starts, [0, 2, 4, 6])
    np.testing.assert_array_equal(windows[-1], [6, 7, 8, 9])
    windows, starts = chunk(np.arange(11), size=4, overlap=2)
    np.testing.assert_array_equal(starts, [0, 2, 4, 6, 7])
    np.testing.assert_array_equal(windows[-1], [7, 8, 9, 10])
    # stride 2: the read is padded to 12 samples and the last window starts at 8
    windows, starts = chunk(np.arange(1, 12), size=4, overlap=2, stride=2)
    np.testing.assert_array_equal(starts, [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(windows[-1], [9, 10, 11, 0])
    windows, starts = chunk(np.array([5, 6], dtype=np.int16), size=4, overlap=0)
    assert windows.dtype == np.int16
    np.testing.assert_array_equal(windows, [[5, 6, 0, 0]])
    np.testing.assert_array_equal(starts, [0])


def test_stitch_known_boundaries():
    # windows at 0, 4, 6 of size 8 over 14 samples; values = window index
    outputs = np.repeat(np.arange(3)[:, None], 8, axis=1)
    stitched = stitch(outputs, [0, 4, 6], 14, size=8, overlap=4)
    # boundary 0|1 at (4 + 8) // 2 = 6, boundary 1|2 at (6 + 12) // 2 = 9
    np.testing.assert_array_equal(stitched, [0] * 6 + [1] * 3 + [2] * 5)


@pytest.mark.parametrize(
    ("size", "overlap", "stride"),
    [(0, 0, 1), (-4, 0, 1), (4, 4, 1), (4, -1, 1), (4, 0, 0), (6, 0, 4), (8, 2, 4), (4.0, 0, 1)],
)
def test_bad_parameters(size, overlap, stride):
    with pytest.raises(InputError):
        chunk(np.ones(20), size, overlap, stride)
    with pytest.raises(InputError):
        stitch(np.ones((1, 1)), [0], 20, size, overlap, stride)


def test_bad_inputs():
    with pytest.raises(InputError):
        chunk(np.ones(0), 4, 0)
    with pytest.raises(InputError):
        chunk(np.ones((2, 8)), 4, 0)
    windows, starts = chunk(np.ones(10), 4, 0)
    with pytest.raises(InputError, match="shape"):
        stitch(windows[:-1], starts, 10, 4, 0)
    with pytest.raises(InputError, match="cover"):
        stitch(windows, starts, 20, 4, 0)
    with pytest.raises(InputError, match="multiples of stride"):
        stitch(windows[:, :2], starts + 1, 10, 4, 0, stride=2)
