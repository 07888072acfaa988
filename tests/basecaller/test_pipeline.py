"""The streaming pipeline: windows stitched back give the whole-read model output, order is kept,
memory holds only reads in flight."""

import numpy as np
import pytest

from nanoseq.basecaller.model import Basecaller
from nanoseq.basecaller.pipeline import Runner, basecall, stitched_outputs
from nanoseq.errors import InputError
from nanoseq.signal.readers import read_signal


@pytest.fixture(scope="module")
def conv_model():
    """No recurrence: each frame sees only +-13 samples, so windows are exact away from edges."""
    import keras

    keras.utils.set_random_seed(3)
    return Basecaller(filters=(4, 8, 16), kernels=(5, 5, 19), strides=(1, 1, 6), layers=0)


@pytest.fixture(scope="module")
def reads(sample_dir):
    return list(read_signal([sample_dir / "reads/lambda.pod5"]))[:3]


def test_stitched_windows_equal_one_pass_over_the_read(conv_model, reads):
    windowed = list(
        stitched_outputs(reads, conv_model, batch_size=8, chunk_size=1200, overlap=240, trim=False)
    )
    # one window exactly the read's (stride-padded) length: the same edges as the last window
    whole = [
        next(
            stitched_outputs(
                [read],
                conv_model,
                batch_size=1,
                chunk_size=-(-read.num_samples // 6) * 6,
                overlap=0,
                trim=False,
            )
        )
        for read in reads
    ]
    for read, (a_item, a), (b_item, b) in zip(reads, windowed, whole, strict=True):
        assert a_item.read.read_id == b_item.read.read_id == read.read_id
        assert a.shape == b.shape == (-(-read.num_samples // 6), 5)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_calls_keep_input_order_and_carry_metadata(conv_model, reads):
    calls = list(basecall(reads * 2, conv_model, batch_size=5, chunk_size=1200, overlap=240))
    assert [c.read_id for c in calls] == [r.read_id for r in reads * 2]
    for call, read in zip(calls, reads * 2, strict=True):
        assert call.num_samples == read.num_samples and call.stride == 6
        assert call.channel == read.channel and call.run_id == "lambda-sample"
        assert len(call.qualities) == len(call.sequence)
        assert call.moves.sum() == len(call.sequence)
        assert len(call.moves) == -(-(read.num_samples - call.trimmed_samples) // 6)


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


def test_sample_rate_mismatch_warns(conv_model, sample_dir, caplog):
    (read,) = read_signal([sample_dir / "formats/single_read_multi_layout.fast5"])
    list(basecall([read], conv_model, batch_size=2))
    assert "6024 Hz" in caplog.text and "4000 Hz" in caplog.text


def test_reader_and_decoder_workers_change_nothing_but_speed(conv_model, reads):
    timing = {}
    one = list(basecall(reads * 3, conv_model, batch_size=5, chunk_size=1200, overlap=240))
    many = list(
        basecall(
            reads * 3,
            conv_model,
            batch_size=5,
            chunk_size=1200,
            overlap=240,
            workers=3,
            timing=timing,
        )
    )
    assert [(c.read_id, c.sequence, c.qualities.tolist()) for c in many] == [
        (c.read_id, c.sequence, c.qualities.tolist()) for c in one
    ]
    assert timing["model_seconds"] > 0


def test_a_reading_error_in_the_worker_reaches_the_caller(conv_model, reads):
    def stream():
        yield reads[0]
        raise InputError("truncated file", "x.pod5")

    with pytest.raises(InputError, match="truncated file"):
        list(basecall(stream(), conv_model, batch_size=4, chunk_size=1200, overlap=240, workers=2))


def test_a_short_batch_is_padded_to_the_smallest_fraction_that_holds_it(conv_model, reads):
    runner = Runner(conv_model, batch_size=384, chunk_size=1200)
    assert [runner.padded_size(n) for n in (1, 48, 49, 96, 97, 192, 193, 384)] == [
        48, 48, 96, 96, 192, 192, 384, 384
    ]  # fmt: skip
    assert Runner(conv_model, batch_size=5, chunk_size=1200).padded_size(1) == 5
    windows = np.random.default_rng(0).normal(size=(60, 1200)).astype(np.float32)
    short = runner(windows[:7])  # padded to 48 rows; rows are independent of each other
    np.testing.assert_allclose(short, runner(windows)[:7], rtol=1e-5, atol=1e-5)


def test_the_compiled_model_is_reused_and_does_not_keep_the_model_alive(reads):
    import gc
    import weakref

    model = Basecaller(filters=(4,), kernels=(5,), strides=(6,), layers=0)
    first = Runner(model, 4, 1200).forward
    list(basecall(reads[:1], model, batch_size=4, chunk_size=1200, overlap=240))
    assert Runner(model, 8, 3600).forward is first
    alive = weakref.ref(model)
    del model, first
    gc.collect()
    assert alive() is None


def test_crf_calls_of_windows_equal_one_pass(conv_model, reads):
    """Windows' best paths, trimmed and stitched, call what one path through the read calls.

    The head scores a move by the base it emits alone (every state, every predecessor alike),
    so the best path is each frame's own best choice and a window's path is exact away from its
    edges, as the convolutions are: what is left to differ is the stitching. (An untrained
    head's best path depends on scores far away, so windows would differ from one pass.)"""
    import edlib

    model = conv_model.with_decoder("crf")
    head = model.get_layer("logits")
    kernel, bias = head.get_weights()
    base = (np.arange(kernel.shape[1]) // 4) % 4  # column s * 4 + k enters s, emits s % 4
    head.set_weights([kernel[:, base], bias[base]])  # the first four columns, repeated
    model.metadata["crf_stay"] = 0.0
    windowed = list(basecall(reads, model, batch_size=8, chunk_size=1200, overlap=240))
    for read, call in zip(reads, windowed, strict=True):
        size = -(-read.num_samples // 6) * 6
        (whole,) = basecall([read], model, batch_size=1, chunk_size=size, overlap=0)
        assert len(call.sequence) > 100 and call.moves.sum() == len(call.sequence)
        assert edlib.align(call.sequence, whole.sequence)["editDistance"] <= 2


def test_a_crf_model_takes_the_beam_width_into_its_compiled_decoding(conv_model, reads):
    """The width reaches the graph: the beam's path differs from the best path, the move
    posteriors (columns 1..4) do not. A CTC model's beam search runs on the host, so its
    compiled model is called at width 1 whatever the width asked for (no second compilation)."""
    crf_model = conv_model.with_decoder("crf")
    options = dict(batch_size=8, chunk_size=1200, overlap=240)
    best, beam = (
        [out for _, out in stitched_outputs(reads[:1], crf_model, **options, beam_width=width)]
        for width in (1, 5)
    )
    assert (best[0][:, 0] != beam[0][:, 0]).any()
    np.testing.assert_allclose(best[0][:, 1:], beam[0][:, 1:], atol=1e-6)
    assert Runner(conv_model, 8, 1200, width=5).width == 1
