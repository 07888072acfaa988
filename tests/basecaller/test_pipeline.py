"""The streaming pipeline: windows stitched back give the whole-read model output, order is kept,
memory holds only reads in flight, the model's settings prepare the reads."""

import threading
import time
from functools import partial

import numpy as np
import pytest

from nanoseq.basecaller.backbone import SignalBackbone
from nanoseq.basecaller.crf import CRFHead
from nanoseq.basecaller.model import Basecaller
from nanoseq.basecaller.pipeline import Runner, Windows, basecall, prepare, threaded, through_model
from nanoseq.errors import InputError
from nanoseq.signal.normalize import quantile
from nanoseq.signal.readers import read_signal


@pytest.fixture(scope="module")
def conv_model():
    """No recurrence: each frame sees only +-13 samples, so windows are exact away from edges."""
    import keras

    keras.utils.set_random_seed(3)
    return Basecaller(SignalBackbone((4, 8, 16), (5, 5, 19), (1, 1, 6), layers=0))


@pytest.fixture(scope="module")
def reads(sample_dir):
    return list(read_signal([sample_dir / "reads/lambda.pod5"]))[:3]


def stitched(reads, model, size, overlap, batch_size, width=1):
    """Each read's stitched frames, trimming off."""
    windows = Windows.of(model, size, overlap)
    prepared = (prepare(read, model, windows, trim=False) for read in reads)
    return list(through_model(prepared, Runner(model, batch_size, size, width=width), windows))


def test_stitched_windows_equal_one_pass_over_the_read(conv_model, reads):
    windowed = stitched(reads, conv_model, 1200, 240, batch_size=8)
    # one window exactly the read's (stride-padded) length: the same edges as the last window
    whole = [
        stitched([read], conv_model, -(-read.num_samples // 6) * 6, 0, batch_size=1)[0]
        for read in reads
    ]
    for read, (a_item, (a,)), (b_item, (b,)) in zip(reads, windowed, whole, strict=True):
        assert a_item.read.read_id == b_item.read.read_id == read.read_id
        assert a.shape == b.shape == (-(-read.num_samples // 6), 5)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_calls_keep_input_order_and_the_read_they_belong_to(conv_model, reads):
    calls = list(basecall(reads * 2, conv_model, batch_size=5, chunk_size=1200, overlap=240))
    assert [read for read, _ in calls] == reads * 2
    for read, call in calls:
        assert call.stride == 6 and len(call.qualities) == len(call.sequence)
        assert call.moves.sum() == len(call.sequence)
        assert len(call.moves) == -(-(read.num_samples - call.trimmed_samples) // 6)


def test_reads_are_prepared_as_the_model_was_trained(conv_model, reads):
    """A model whose training chunks were quantile-normalised gets quantile-normalised reads
    (the settings travel in its metadata)."""
    model = Basecaller(conv_model.backbone, metadata={"normalisation": {"method": "quantile"}})
    windows = Windows.of(model, 1200, 240)
    item = prepare(reads[0], model, windows, trim=False)
    shift, scale = quantile(reads[0].pa)
    assert (item.shift, item.scale) == pytest.approx((shift, scale))
    expected = (reads[0].pa[:1200] - shift) / scale
    np.testing.assert_allclose(item.windows[0], expected, rtol=1e-5, atol=1e-6)
    assert prepare(reads[0], conv_model, windows, trim=False).shift != pytest.approx(shift)


def test_reads_are_not_all_held(conv_model, reads):
    """The pipeline pulls reads lazily: after the first call only a batch's worth was read."""
    pulled = []

    def stream():
        for i in range(100):
            pulled.append(i)
            yield reads[i % len(reads)]

    calls = basecall(stream(), conv_model, batch_size=4, chunk_size=3600, overlap=480)
    next(calls)
    assert len(pulled) <= 3


def test_reads_at_another_sample_rate_are_resampled_with_a_note(conv_model, sample_dir, caplog):
    (read,) = read_signal([sample_dir / "formats/single_read_multi_layout.fast5"])
    with caplog.at_level("INFO"):
        ((_, call),) = basecall([read], conv_model, batch_size=2)
    assert "reads at 6024 Hz are resampled to the model's 4000 Hz" in caplog.text
    assert call.stride == 9  # 6 samples at 4 kHz span 9.04 at 6,024 Hz


def test_workers_change_nothing_but_speed(conv_model, reads):
    timing = {}
    options = dict(batch_size=5, chunk_size=1200, overlap=240)
    one = list(basecall(reads * 3, conv_model, **options))
    many = list(basecall(reads * 3, conv_model, **options, workers=3, timing=timing))
    assert [(r.read_id, c.sequence, c.qualities.tolist()) for r, c in many] == [
        (r.read_id, c.sequence, c.qualities.tolist()) for r, c in one
    ]
    assert timing["model_seconds"] > 0


def test_batches_computed_at_once_give_the_same_frames_in_order(conv_model, reads):
    """Two or three model calls at once (as on a CPU of 2 or 3 cores) stitch to the frames of
    one call at a time, read by read; the model's busy time counts time, not calls."""
    windows = Windows.of(conv_model, 1200, 240)

    def frames(streams, timing=None):
        prepared = (prepare(read, conv_model, windows, trim=False) for read in reads * 3)
        runner = Runner(conv_model, 3, 1200, timing, streams=streams)
        return [(item.read.read_id, f) for item, (f,) in through_model(prepared, runner, windows)]

    one = frames(1)
    for streams in (2, 3):
        timing, start = {}, time.perf_counter()
        many = frames(streams, timing)
        assert [read_id for read_id, _ in many] == [read_id for read_id, _ in one]
        for (_, a), (_, b) in zip(many, one, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        assert 0 < timing["model_seconds"] <= time.perf_counter() - start
    prepared = (prepare(read, conv_model, windows, trim=False) for read in reads * 20)
    calls = through_model(prepared, Runner(conv_model, 3, 1200, streams=2), windows)
    next(calls)
    calls.close()  # as an error or SIGTERM in the caller does: no model call runs on
    assert not [t for t in threading.enumerate() if t.name.startswith("model")]


def test_a_cpu_shares_the_models_batch_among_calls_at_once(conv_model, monkeypatch):
    """On CPUs: one call a thread, the default batch shared (none under 32 windows); a batch
    size given is each call's."""
    import nanoseq.basecaller.pipeline as pipeline
    from nanoseq import runtime

    model = Basecaller(conv_model.backbone, metadata={"batch_size": 160})
    monkeypatch.setattr(runtime, "on_accelerator", lambda: False)
    for threads, expected in ((1, (160, 1)), (2, (80, 2)), (4, (40, 4)), (16, (32, 5))):
        monkeypatch.setattr(runtime, "cpu_threads", lambda threads=threads: threads)
        assert pipeline.batching(model) == expected
    assert pipeline.batching(model, 64) == (64, 5)
    monkeypatch.setattr(runtime, "on_accelerator", lambda: True)
    assert pipeline.batching(model) == (160, 1)


def test_a_reading_error_in_a_worker_reaches_the_caller(conv_model, reads):
    def stream():
        yield reads[0]
        raise InputError("truncated file", "x.pod5")

    with pytest.raises(InputError, match="truncated file"):
        list(basecall(stream(), conv_model, batch_size=4, chunk_size=1200, overlap=240, workers=2))


def test_threaded_stages_keep_order_and_stop_with_their_consumer():
    def slow_square(x):
        time.sleep(0.001 * (x % 3))
        return x * x

    assert list(threaded(slow_square, range(50), 4)) == [x * x for x in range(50)]
    pulled = []

    def numbers():
        for x in range(10_000):
            pulled.append(x)
            yield x

    stage = threaded(partial(pow, exp=2), numbers(), 2)
    assert [next(stage) for _ in range(3)] == [0, 1, 4]
    stage.close()  # the feeding thread stops: it does not read on to the end
    assert len(pulled) < 100


def test_a_stopped_stage_leaves_no_thread_running_upstream():
    """Stopping the last stage (as an error or SIGTERM in the caller does) ends the threads of
    every stage before it returns, and closes the source: none runs on while Python exits."""
    before = set(threading.enumerate())
    closed = []

    def source():
        try:
            yield from range(10_000)
        finally:
            closed.append(True)

    def slow(x):
        time.sleep(0.002)
        return x

    stage = threaded(slow, threaded(slow, source(), 2), 2)
    assert [next(stage) for _ in range(5)] == [0, 1, 2, 3, 4]
    stage.close()
    assert closed == [True]
    assert [t.name for t in set(threading.enumerate()) - before if t.is_alive()] == []


def test_a_short_batch_is_padded_to_the_smallest_fraction_that_holds_it(conv_model, reads):
    runner = Runner(conv_model, batch_size=384, size=1200)
    assert [runner.padded_size(n) for n in (1, 48, 49, 96, 97, 192, 193, 384)] == [
        48, 48, 96, 96, 192, 192, 384, 384
    ]  # fmt: skip
    assert Runner(conv_model, batch_size=5, size=1200).padded_size(1) == 5
    windows = np.random.default_rng(0).normal(size=(60, 1200)).astype(np.float32)
    (short,) = runner(windows[:7])  # padded to 48 rows; rows are independent of each other
    np.testing.assert_allclose(short, runner(windows)[0][:7], rtol=1e-5, atol=1e-5)


def test_the_compiled_model_is_reused_and_does_not_keep_the_model_alive(reads):
    import gc
    import weakref

    model = Basecaller(SignalBackbone((4,), (5,), (6,), layers=0))
    first = Runner(model, 4, 1200).forward
    list(basecall(reads[:1], model, batch_size=4, chunk_size=1200, overlap=240))
    assert Runner(model, 8, 3600).forward is first
    alive = weakref.ref(model)
    del model, first
    gc.collect()
    assert alive() is None


def by_emitted_base(model: Basecaller) -> Basecaller:
    """A CRF model whose head scores a move by the base it emits alone (every state, every
    predecessor alike), staying at 0."""
    model = model.with_head(CRFHead(stay=0.0))
    head = model.get_layer("head")
    kernel, bias = head.get_weights()
    base = (np.arange(kernel.shape[1]) // 4) % 4  # column s * 4 + k enters s, emits s % 4
    head.set_weights([kernel[:, base], bias[base]])  # the first four columns, repeated
    return model


def test_crf_calls_of_windows_equal_one_pass(conv_model, reads):
    """Windows' best paths, trimmed and stitched, call what one path through the read calls.

    With :func:`by_emitted_base`, the best path is each frame's own best choice and a window's
    path is exact away from its edges, as the convolutions are: what is left to differ is the
    stitching. (An untrained head's best path depends on scores far away, so windows would
    differ from one pass.)"""
    import edlib

    model = by_emitted_base(conv_model)
    windowed = list(basecall(reads, model, 1, batch_size=8, chunk_size=1200, overlap=240))
    for read, call in windowed:
        size = -(-read.num_samples // 6) * 6
        ((_, whole),) = basecall([read], model, 1, batch_size=1, chunk_size=size, overlap=0)
        assert len(call.sequence) > 100 and call.moves.sum() == len(call.sequence)
        assert edlib.align(call.sequence, whole.sequence)["editDistance"] <= 2


def test_a_crf_model_takes_the_beam_width_into_its_compiled_decoding(conv_model, reads):
    """The width reaches the graph: the beam's path differs from the best path, the move
    posteriors do not. A CTC model's beam search runs on the host, so its compiled model is
    called at width 1 whatever the width asked for (no second compilation)."""
    crf_model = conv_model.with_head("crf")
    (_, (path1, posteriors1)), (_, (path5, posteriors5)) = (
        stitched(reads[:1], crf_model, 1200, 240, batch_size=8, width=width)[0] for width in (1, 5)
    )
    assert (path1 != path5).any()
    np.testing.assert_allclose(posteriors1, posteriors5, atol=1e-6)
    assert Runner(conv_model, 8, 1200, width=5).width == 1
