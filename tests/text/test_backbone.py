"""The text backbone and its tasks: `.keras` and config round trips (dtype included), states in
and out, the wrong family refused, and training steps under mixed precision."""

import json

import keras
import numpy as np
import pytest

from nanoseq.errors import InputError
from nanoseq.text.backbone import TextBackbone
from nanoseq.text.data import read_pairs
from nanoseq.text.lm import LanguageModel, StreamingTrainer
from nanoseq.text.lm_train import train_language_model
from nanoseq.text.seq2seq import MaskedCrossEntropy, Seq2Seq
from nanoseq.text.seq2seq_train import train_seq2seq
from nanoseq.training import TrainingRun

TOKENS = np.array([[5, 6, 7, 8, 3, 9], [9, 10, 11, 12, 13, 3]], dtype=np.int32)
TARGET = np.array([[2, 5, 6, 0], [2, 7, 8, 9]], dtype=np.int32)


def numpy(tensors):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, tensors)


def as_saved(config):
    """A config as a ``.keras`` file holds it (JSON: tuples become lists)."""
    return json.loads(json.dumps(config))


def backbone(**options):
    keras.utils.set_random_seed(4)
    return TextBackbone(**{"vocab_size": 20, "embedding_dim": 8, "units": 8, **options})


def tasks(dtype=None):
    """One of each text task (and the LM's trainer), tiny."""
    lm = LanguageModel(backbone(cell="gru", layer_norm=True, dtype=dtype), {"level": "char"})
    return {
        "lm": lm,
        "tied": LanguageModel(backbone(layers=1, dtype=dtype), tie_weights=True),
        "trainer": StreamingTrainer(lm, batch_size=2),
        "seq2seq": Seq2Seq(backbone(bidirectional=True, dtype=dtype), 15, "luong"),
        "unidirectional": Seq2Seq(backbone(cell="rnn", dtype=dtype), 15, "none"),
        "tied seq2seq": Seq2Seq(backbone(bidirectional=True, dtype=dtype), 15, tie_weights=True),
    }


def run(model):
    return model((TOKENS, TARGET)) if isinstance(model, Seq2Seq) else model(TOKENS)


BACKBONES = {
    "lstm": {},
    "gru, bidirectional, layer norm, dropout": dict(
        cell="gru", bidirectional=True, layer_norm=True, dropout=0.2
    ),
    "rnn, 4 layers": dict(cell="rnn", layers=4),
}


@pytest.mark.parametrize("options", BACKBONES.values(), ids=BACKBONES.keys())
def test_backbone_round_trips_through_a_keras_file(tmp_path, options):
    model = backbone(**options)
    mask = TOKENS != 3
    expected = numpy(model(TOKENS, mask=mask))
    model.save(tmp_path / "b.keras")
    loaded = keras.saving.load_model(tmp_path / "b.keras")
    assert isinstance(loaded, TextBackbone)
    assert as_saved(loaded.get_config()) == as_saved(model.get_config())
    outputs, states = numpy(loaded(TOKENS, mask=mask))
    np.testing.assert_allclose(outputs, expected[0], atol=1e-6)
    for state, before in zip(states, expected[1], strict=True):
        np.testing.assert_allclose(state, before, atol=1e-6)


@pytest.mark.parametrize("bidirectional, layers", [(False, 2), (True, 1)])
def test_backbone_states_continue_a_sequence(bidirectional, layers):
    """Reading two halves, the second from the first's final states, equals reading the whole
    (in the forward direction); states are (batch, output_dim), layer by layer."""
    model = backbone(cell="lstm", layers=layers, bidirectional=bidirectional)
    whole, _ = numpy(model(TOKENS))
    _, states = model(TOKENS[:, :3])
    assert len(states) == 2 * layers and all(s.shape == (2, model.output_dim) for s in states)
    second, _ = numpy(model(TOKENS[:, 3:], states))
    np.testing.assert_allclose(second[..., :8], whole[:, 3:, :8], atol=1e-5)


@pytest.mark.parametrize(
    "name", ["lm", "tied", "trainer", "seq2seq", "unidirectional", "tied seq2seq"]
)
def test_tasks_round_trip_through_a_keras_file(tmp_path, name):
    model = tasks()[name]
    expected = numpy(run(model))
    if name == "trainer":  # a trainer carries its states on: compare from the same carry
        model.reset()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model)
    assert as_saved(loaded.get_config()) == as_saved(model.get_config())
    np.testing.assert_allclose(numpy(run(loaded)), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["lm", "tied", "seq2seq", "unidirectional", "tied seq2seq"])
def test_config_round_trip_keeps_the_dtype(name):
    model = tasks("mixed_float16")[name]
    again = type(model).from_config(model.get_config())
    assert again.get_config() == model.get_config()
    inner = again.encoder if isinstance(again, Seq2Seq) else again.backbone
    assert again.dtype_policy.name == inner.dtype_policy.name == "mixed_float16"
    assert inner.embedding.compute_dtype == "float16"
    assert run(again).dtype == "float32"  # float16 compute, float32 logits
    assert TextBackbone.from_config(inner.get_config()).dtype_policy.name == "mixed_float16"


def test_a_mixed_precision_model_saves_with_its_policy(tmp_path):
    model = tasks("mixed_float16")["seq2seq"]
    expected = numpy(run(model))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.dtype_policy.name == loaded.decoder.dtype_policy.name == "mixed_float16"
    np.testing.assert_allclose(numpy(run(loaded)), expected, atol=1e-3)


@pytest.mark.parametrize(
    "name",
    ["trainer", "tied", pytest.param("seq2seq", marks=pytest.mark.slow)],  # 6 s
)
def test_a_mixed_precision_training_step_has_a_finite_loss(name):
    model = tasks("mixed_float16")[name]
    if isinstance(model, Seq2Seq):
        loss, x, y = MaskedCrossEntropy(), (TOKENS, TARGET), np.roll(TARGET, -1, 1)
    else:
        loss, x, y = keras.losses.SparseCategoricalCrossentropy(from_logits=True), TOKENS, TOKENS
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    first = model.train_on_batch(x, y)
    assert np.isfinite(first) and np.isfinite(model.train_on_batch(x, y))


@pytest.fixture
def float32_after():
    """Training with ``mixed_precision`` sets the global policy: put it back afterwards."""
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
def test_both_families_train_with_mixed_precision(tmp_path, sample_dir, float32_after):
    (tmp_path / "text.txt").write_text("the quick brown fox jumps over the lazy dog. " * 20)
    text = [str(tmp_path / "text.txt")]
    run = TrainingRun(tmp_path / "lm", epochs=1, mixed_precision=True)
    trainer, history = train_language_model(
        text, text, run, units=16, embedding_dim=8, batch_size=4, steps=10
    )
    assert trainer.model.dtype_policy.name == "mixed_float16"
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(history.history["val_nats_per_token"]).all()
    sources, targets = read_pairs(pairs=sample_dir / "text/multi30k_de_en.tsv")
    pairs = sources[:20], targets[:20]
    run = TrainingRun(tmp_path / "seq2seq", epochs=1, mixed_precision=True)
    model, history = train_seq2seq(pairs, pairs, run, units=16, embedding_dim=8, batch_size=10)
    assert model.dtype_policy.name == "mixed_float16"
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(history.history["val_loss"]).all()
    loaded = Seq2Seq.from_preset(str(tmp_path / "seq2seq/model.keras"))
    assert loaded.dtype_policy.name == "mixed_float16"


def test_unit_embeddings_start_at_the_scale_the_first_kernel_expects():
    """N(0, 1), as PyTorch draws them (language models): the first recurrent layer's glorot
    kernel is scaled for inputs of unit variance; else Keras's uniform +-0.05 (seq2seq)."""
    for unit, (low, high) in ((True, (0.9, 1.1)), (False, (0.02, 0.04))):
        model = backbone(vocab_size=200, embedding_dim=64, unit_embeddings=unit)
        model.build((1, 3))
        embeddings = keras.ops.convert_to_numpy(model.embedding.embeddings)
        assert low < embeddings.std() < high and abs(embeddings.mean()) < 0.05
        assert TextBackbone.from_config(model.get_config()).unit_embeddings == unit


def test_a_basecaller_is_refused_in_one_line():
    for task in (LanguageModel, Seq2Seq):
        with pytest.raises(InputError) as error:
            task.from_preset("dna_r941_lambda")
        message = str(error.value)
        assert "\n" not in message
        assert message.startswith("dna_r941_lambda: is a basecaller; this needs a " + task.family)
    with pytest.raises(InputError, match="is a language model; this needs a seq2seq model"):
        Seq2Seq.from_preset("char_tinyshakespeare")
    assert isinstance(LanguageModel.from_preset("char_tinyshakespeare"), LanguageModel)
