"""The basecaller: a backbone under a head; shapes, metadata, `.keras` round trip, new heads."""

import keras
import numpy as np
import pytest

import nanoseq
from nanoseq.basecaller.backbone import SignalBackbone
from nanoseq.basecaller.crf import CRFHead
from nanoseq.basecaller.ctc import CTCHead
from nanoseq.basecaller.model import Basecaller
from nanoseq.errors import InputError


def small(**options):
    return SignalBackbone(filters=(4, 8), kernels=(5, 9), strides=(1, 3), units=8, **options)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_round_trip_through_keras_file(tmp_path, rnn):
    keras.utils.set_random_seed(0)
    model = Basecaller(small(rnn=rnn, layers=2), metadata={"chemistry": "test"})
    x = np.random.default_rng(0).normal(size=(2, 600, 1)).astype("float32")
    expected = model.predict(x, verbose=0)
    assert expected.shape == (2, 200, 5) and expected.dtype == np.float32
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Basecaller) and isinstance(loaded.backbone, SignalBackbone)
    assert isinstance(loaded.head, CTCHead)
    # a weight not restored gives differences of order 1; 1e-4 allows float reassociation
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)
    assert loaded.stride == 3
    assert loaded.metadata["chemistry"] == "test" and loaded.metadata["alphabet"] == "NACGT"
    assert loaded.metadata["stride"] == 3 and loaded.metadata["sample_rate"] == 4000
    assert loaded.backbone.get_config() == model.backbone.get_config()
    assert loaded.backbone.get_config()["rnn"] == rnn


def test_the_backbone_config_keeps_its_dtype():
    backbone = small(layers=1, dtype="mixed_float16")
    assert backbone.get_config()["dtype"]["config"]["name"] == "mixed_float16"
    again = SignalBackbone.from_config(backbone.get_config())
    assert again.dtype_policy.name == "mixed_float16"
    assert again.get_layer("conv0").compute_dtype == "float16"
    out = Basecaller(again)(np.zeros((1, 120, 1), "float32"))
    assert out.dtype == "float32"  # the head's scores stay float32


def test_loading_by_path_and_by_family(tmp_path):
    path = tmp_path / "m.keras"
    Basecaller(small(layers=1)).save(path)
    assert isinstance(nanoseq.load_model(str(path)), Basecaller)
    assert isinstance(Basecaller.from_preset(str(path)), Basecaller)
    with pytest.raises(InputError, match="is a language model; this needs a basecaller"):
        Basecaller.from_preset("char_tinyshakespeare")
    with pytest.raises(
        InputError, match=r"nor a bundled basecaller \(dna_r1041_e82_400bps, dna_r941"
    ):
        Basecaller.from_preset("no_such_model")


def test_mixed_precision_keeps_float32_scores():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = Basecaller(SignalBackbone(units=8, layers=1))
        out = model(np.zeros((1, 120, 1), "float32"))
        assert out.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bad_configuration():
    with pytest.raises(ValueError, match="one entry per convolution"):
        SignalBackbone(filters=(4,), kernels=(5, 5), strides=(1, 1))
    with pytest.raises(ValueError, match="lstm"):
        SignalBackbone(rnn="transformer")
    with pytest.raises(ValueError, match="head must be one of crf, ctc"):
        Basecaller(small(layers=1), head="hmm")
    with pytest.raises(ValueError, match="divide"):
        Basecaller(SignalBackbone(strides=(1, 1, 5), layers=0), upsample=2)


def test_a_new_head_on_the_same_backbone(tmp_path):
    keras.utils.set_random_seed(0)
    ctc = Basecaller(SignalBackbone((4, 8), (5, 9), (1, 6), units=8, layers=1))
    model = ctc.with_head("crf").upsampled(2)
    assert isinstance(model.head, CRFHead) and model.upsample == 2 and model.stride == 3
    for a, b in zip(ctc.backbone.get_weights(), model.backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.backbone is not ctc.backbone
    x = np.random.default_rng(0).normal(size=(2, 600, 1)).astype("float32")
    assert model.predict(x, verbose=0).shape == (2, 200, CRFHead().classes)
    model.head = CRFHead(stay=1.5)  # as calibration sets it
    model.save(tmp_path / "crf.keras")
    loaded = keras.saving.load_model(tmp_path / "crf.keras")
    assert isinstance(loaded.head, CRFHead) and loaded.head.stay == 1.5
    expected = model.head.frames(model.predict(x, verbose=0))
    for a, b in zip(loaded.frames(x), expected, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_upsampled_head_calls_the_same_and_round_trips(tmp_path, sample_dir):
    from nanoseq.basecaller.pipeline import basecall
    from nanoseq.signal.readers import read_signal

    keras.utils.set_random_seed(0)
    narrow = Basecaller(SignalBackbone((4, 8), (5, 9), (1, 6), units=8, layers=1))
    wide = narrow.upsampled(2)
    x = np.random.default_rng(0).normal(size=(2, 600, 1)).astype("float32")
    logits = wide.predict(x, verbose=0)
    assert logits.shape == (2, 200, 5) and wide.output_frames(600) == 200
    assert wide.stride == wide.metadata["stride"] == 3
    # each step's two frames start as copies of the narrow head's one
    expected = np.repeat(narrow.predict(x, verbose=0), 2, axis=1)
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    wide.save(tmp_path / "wide.keras")
    loaded = keras.saving.load_model(tmp_path / "wide.keras")
    assert loaded.upsample == 2
    np.testing.assert_allclose(loaded.predict(x, verbose=0), logits, atol=1e-5)
    reads = list(read_signal([sample_dir / "reads/lambda.pod5"]))[:2]
    with pytest.raises(InputError, match=r"multiples of stride \(6\)"):
        list(basecall(reads, wide, batch_size=8, chunk_size=603, overlap=0))


def test_upsampled_ctc_head_on_the_bundled_backbone_calls_the_same_reads(sample_dir):
    """Windows at the input stride, stitching and decoding at output stride 1: a CTC head on the
    bundled model's backbone widened from two frames per step to six calls as it does (a seam
    may fall inside a step)."""
    import edlib

    from nanoseq.basecaller.pipeline import basecall
    from nanoseq.signal.readers import read_signal

    keras.utils.set_random_seed(1)
    model = Basecaller.from_preset("dna_r941_lambda").with_head("ctc")
    reads = list(read_signal([sample_dir / "reads/lambda.pod5"]))[:2]
    calls = [c.sequence for _, c in basecall(reads, model, 1, batch_size=16)]
    wide = model.upsampled(3 * model.upsample)
    wider = [c.sequence for _, c in basecall(reads, wide, 1, batch_size=16)]
    for a, b in zip(calls, wider, strict=True):
        assert len(a) > 1000 and edlib.align(a, b)["editDistance"] <= len(a) // 1000
