"""The basecaller model: shapes, metadata, `.keras` round trip, CTC loss."""

import keras
import numpy as np
import pytest

import nanoseq
from nanoseq.basecaller.model import Basecaller, ctc_loss, output_frames


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_round_trip_through_keras_file(tmp_path, rnn):
    keras.utils.set_random_seed(0)
    model = Basecaller(
        filters=(4, 8),
        kernels=(5, 9),
        strides=(1, 3),
        rnn=rnn,
        units=8,
        layers=2,
        metadata={"chemistry": "test"},
    )
    x = np.random.default_rng(0).normal(size=(2, 600, 1)).astype("float32")
    expected = model.predict(x, verbose=0)
    assert expected.shape == (2, 200, 5) and expected.dtype == np.float32
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Basecaller)
    # a weight not restored gives differences of order 1; 1e-4 allows float reassociation
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)
    assert loaded.stride == 3
    assert loaded.metadata["chemistry"] == "test" and loaded.metadata["alphabet"] == "NACGT"
    assert loaded.metadata["stride"] == 3 and loaded.metadata["sample_rate"] == 4000
    assert loaded.get_config()["rnn"] == rnn


def test_loading_by_path_through_the_package(tmp_path):
    path = tmp_path / "m.keras"
    Basecaller(units=8, layers=1).save(path)
    assert isinstance(nanoseq.load_model(str(path)), Basecaller)


def test_mixed_precision_keeps_float32_logits():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = Basecaller(units=8, layers=1)
        out = model(np.zeros((1, 120, 1), "float32"))
        assert out.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_ctc_loss_prefers_the_right_labels():
    labels = np.array([[1, 2, 3, 0], [4, 4, 0, 0]], dtype="int32")
    frames = np.full((2, 12, 5), -4.0, dtype="float32")
    path = [[1, 1, 0, 2, 2, 0, 3, 3, 0, 0, 0, 0], [4, 4, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]]
    for row, seq in enumerate(path):
        frames[row, np.arange(12), seq] = 4.0
    good = keras.ops.convert_to_numpy(ctc_loss(labels, frames))
    wrong = keras.ops.convert_to_numpy(ctc_loss(labels[::-1], frames))
    assert good.shape == (2,) and (good < 1.0).all() and (wrong > 10.0).all()


def test_bad_configuration():
    with pytest.raises(ValueError, match="one entry per convolution"):
        Basecaller(filters=(4,), kernels=(5, 5), strides=(1, 1))
    with pytest.raises(ValueError, match="lstm"):
        Basecaller(rnn="transformer")


def test_upsampled_head_calls_the_same_and_round_trips(tmp_path, sample_dir):
    from nanoseq.basecaller.pipeline import basecall
    from nanoseq.errors import InputError
    from nanoseq.signal.readers import read_signal

    keras.utils.set_random_seed(0)
    small = Basecaller(filters=(4, 8), kernels=(5, 9), strides=(1, 6), units=8, layers=1)
    wide = small.upsampled(2)
    x = np.random.default_rng(0).normal(size=(2, 600, 1)).astype("float32")
    logits = wide.predict(x, verbose=0)
    assert logits.shape == (2, 200, 5) and output_frames(600, wide.strides, 2) == 200
    assert wide.stride == wide.metadata["stride"] == 3
    # each step's two frames start as copies of the narrow head's one
    np.testing.assert_allclose(logits, np.repeat(small.predict(x, verbose=0), 2, axis=1), atol=1e-5)
    wide.save(tmp_path / "wide.keras")
    loaded = keras.saving.load_model(tmp_path / "wide.keras")
    assert loaded.upsample == 2
    np.testing.assert_allclose(loaded.predict(x, verbose=0), logits, atol=1e-5)
    with pytest.raises(ValueError, match="divide"):
        Basecaller(strides=(1, 1, 5), upsample=2)
    reads = list(read_signal([sample_dir / "reads/lambda.pod5"]))[:2]
    with pytest.raises(InputError, match=r"multiples of stride \(6\)"):
        list(basecall(reads, wide, 8, chunk_size=603, overlap=0))


def test_upsampled_ctc_head_on_the_bundled_layers_calls_the_same_reads(sample_dir):
    """Windows at the input stride, stitching and decoding at output stride 1: a CTC head on the
    bundled model's layers widened from two frames per step to six calls as it does (a seam may
    fall inside a step)."""
    import edlib

    from nanoseq.basecaller.pipeline import basecall
    from nanoseq.signal.readers import read_signal

    keras.utils.set_random_seed(1)
    model = nanoseq.load_model("dna_r941_lambda").with_decoder("ctc")
    reads = list(read_signal([sample_dir / "reads/lambda.pod5"]))[:2]
    calls = [c.sequence for c in basecall(reads, model, 16)]
    wide = [c.sequence for c in basecall(reads, model.upsampled(3 * model.upsample), 16)]
    for a, b in zip(calls, wide, strict=True):
        assert len(a) > 1000 and edlib.align(a, b)["editDistance"] <= len(a) // 1000
