"""The encoder-decoder: round trip, masking, attention, the loss, overfitting real pairs,
and decoding (beam width 1 = greedy; padding never changes a translation)."""

import json
import logging
import math

import keras
import numpy as np
import pytest

from nanoseq.metrics import translation_scores
from nanoseq.probability import log_softmax
from nanoseq.text.backbone import TextBackbone
from nanoseq.text.data import read_pairs
from nanoseq.text.seq2seq import MaskedCrossEntropy, Seq2Seq
from nanoseq.text.seq2seq_train import train_seq2seq
from nanoseq.text.translate import Translator, evaluate_translation
from nanoseq.text.vocab import Vocabulary
from nanoseq.training import TrainingRun

SOURCE = np.array([[5, 6, 7, 8, 3, 0, 0], [9, 10, 11, 12, 13, 14, 3]], dtype=np.int32)
TARGET = np.array([[2, 5, 6, 0], [2, 7, 8, 9]], dtype=np.int32)


def small(cell="gru", attention="bahdanau", bidirectional=True, layers=2, layer_norm=False):
    keras.utils.set_random_seed(3)
    vocabulary = Vocabulary([f"w{i}" for i in range(36)], "word").get_config()
    encoder = TextBackbone(40, 8, 16, layers, cell, bidirectional, layer_norm)
    return Seq2Seq(encoder, 40, attention, vocabulary, vocabulary)


def without_ids(logits: np.ndarray, banned: list[int]) -> np.ndarray:
    """Log probabilities with the ``banned`` ids impossible (the translator's, on the host)."""
    logits = np.array(logits, dtype=np.float64)
    logits[:, banned] = -np.inf
    return log_softmax(logits)


def as_saved(config):
    """A config as a ``.keras`` file holds it (JSON: tuples become lists)."""
    return json.loads(json.dumps(config))


@pytest.mark.parametrize(
    "cell, attention, bidirectional",
    [("gru", "bahdanau", True), ("lstm", "luong", False), ("gru", "none", True)],
)
def test_keras_round_trip(tmp_path, cell, attention, bidirectional):
    model = small(cell, attention, bidirectional)
    before = keras.ops.convert_to_numpy(model((SOURCE, TARGET)))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded, Seq2Seq) and as_saved(loaded.get_config()) == as_saved(
        model.get_config()
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded((SOURCE, TARGET))), before, 1e-5)


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_attention_sums_to_one_and_is_zero_on_padding(attention):
    _, weights = small(attention=attention)((SOURCE, TARGET), return_attention=True)
    weights = keras.ops.convert_to_numpy(weights)
    assert weights.shape == (2, 4, 7)  # (batch, target, source)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert np.all(weights[0, :, 5:] == 0) and np.all(weights[0, :, :5] > 0)


def test_padding_does_not_change_the_logits():
    model = small("lstm", "luong")
    batch = keras.ops.convert_to_numpy(model((SOURCE, TARGET)))
    alone = keras.ops.convert_to_numpy(model((SOURCE[:1, :5], TARGET[:1, :3])))
    np.testing.assert_allclose(alone, batch[:1, :3], atol=1e-6)


@pytest.mark.parametrize("cell, layer_norm", [("gru", False), ("lstm", True)])
def test_one_token_steps_equal_the_teacher_forced_pass(cell, layer_norm):
    model = small(cell, layer_norm=layer_norm)
    logits = keras.ops.convert_to_numpy(model((SOURCE, TARGET)))
    translator = Translator(model)
    log_probs, states = translator.start(list(SOURCE))
    for t in range(TARGET.shape[1]):
        if t:
            log_probs, states = translator.step(TARGET[:, t], states)
        expected = without_ids(logits[:, t], translator.banned)  # <pad> <unk> <bos> never come
        np.testing.assert_allclose(log_probs, expected, atol=1e-5)


def test_tied_weights_read_the_decoders_embedding():
    """The softmax of a tied model is the decoder's embedding (no matrix of its own), and its
    one-token steps (translation) equal its teacher-forced pass."""
    keras.utils.set_random_seed(3)
    vocabulary = Vocabulary([f"w{i}" for i in range(36)], "word").get_config()
    encoder = TextBackbone(40, 16, 16, 1, bidirectional=True)
    model = Seq2Seq(encoder, 40, "bahdanau", vocabulary, vocabulary, tie_weights=True)
    untied = Seq2Seq(TextBackbone(40, 16, 16, 1, bidirectional=True), 40)
    model.build(((None, None), (None, None)))
    untied.build(((None, None), (None, None)))
    assert untied.count_params() - model.count_params() == 16 * 40  # the head's kernel
    embedding = model.decoder.embedding.embeddings
    before = keras.ops.convert_to_numpy(model((SOURCE, TARGET)))
    embedding.assign(embedding.value * keras.ops.convert_to_tensor([[2.0]] * 39 + [[1.0]]))
    after = keras.ops.convert_to_numpy(model((SOURCE, TARGET)))
    assert not np.allclose(before[..., :39], after[..., :39])
    translator = Translator(model)
    log_probs, _ = translator.start(list(SOURCE))
    np.testing.assert_allclose(log_probs, without_ids(after[:, 0], translator.banned), atol=1e-5)
    with pytest.raises(ValueError, match="tied"):
        Seq2Seq(TextBackbone(40, 8, 16), 40, tie_weights=True)


def test_loss_ignores_padding_and_starts_at_ln_vocabulary():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 30)).astype("float32")
    labels = np.array([[4, 5, 0, 0], [6, 7, 8, 9]])
    loss = MaskedCrossEntropy()
    padded = np.concatenate([logits, rng.normal(size=(2, 3, 30)).astype("float32")], 1)
    longer = np.pad(labels, ((0, 0), (0, 3)))
    assert float(loss(labels, logits)) == pytest.approx(float(loss(longer, padded)), 1e-6)
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    assert float(loss(labels, logits)) == pytest.approx(float(plain(labels, logits)), 1e-5)
    uniform = np.zeros_like(logits)
    assert float(MaskedCrossEntropy(0.1)(labels, uniform)) == pytest.approx(math.log(30), 1e-5)


@pytest.fixture(scope="module")
def overfit(tmp_path_factory, sample_dir):
    """A small model trained until it has learnt 100 real Multi30k pairs by heart."""
    sources, targets = read_pairs(pairs=sample_dir / "text/multi30k_de_en.tsv")
    output = tmp_path_factory.mktemp("seq2seq")
    train_seq2seq(
        (sources * 5, targets * 5),
        (sources, targets),
        TrainingRun(output, epochs=12),
        lowercase=True,
        tokenize=True,
        embedding_dim=64,
        units=128,
        batch_size=10,
        learning_rate=1.5e-2,
    )
    return output / "model.keras", sources, targets


def test_text_tokenised_on_purpose_is_scored_the_same_without_sacrebleus_warning(caplog):
    hypotheses = [f"a man number {i} rides a horse ." for i in range(100)]
    references = [f"a man number {i} rides a brown horse ." for i in range(100)]
    with caplog.at_level(logging.WARNING, logger="sacrebleu"):
        told = translation_scores(hypotheses, references, tokenised=True)
    assert "detokenize" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="sacrebleu"):
        untold = translation_scores(hypotheses, references)
    assert "forgot to detokenize" in caplog.text
    assert told == untold and 0 < told["bleu"] < 100


@pytest.mark.slow
def test_overfits_a_hundred_pairs(overfit, caplog):
    model, sources, targets = overfit
    with caplog.at_level(logging.WARNING, logger="sacrebleu"):
        greedy = evaluate_translation(str(model), sources, targets)
    assert "detokenize" not in caplog.text  # a tokenising model's own text: no false alarm
    assert greedy["bleu"] > 90 and greedy["chrf"] > 90
    assert greedy["bleu_signature"].startswith("nrefs:1")
    beam = evaluate_translation(str(model), sources[:30], targets[:30], beam_width=4)
    assert beam["bleu"] > 90
    # detokenised, against the references as given: the lower-cased model loses on case only
    lowered = evaluate_translation(str(model), sources, [t.lower() for t in targets])
    assert lowered["detokenised"]["bleu"] > 90
    assert greedy["detokenised"]["bleu"] < lowered["detokenised"]["bleu"] - 5


@pytest.mark.slow
def test_beam_width_one_is_greedy_and_padding_changes_nothing(overfit):
    model, sources, _ = overfit
    translator = Translator(keras.saving.load_model(model))
    ids = [translator.source_ids(s) for s in sources[:12]]
    greedy = translator.greedy(ids)
    assert translator.beams(ids, width=1, length_penalty=0.0) == greedy
    alone = [translator.greedy([source])[0] for source in ids]
    assert alone == greedy  # each sentence alone equals it in a padded batch of 12
    beams = translator.beams(ids, width=3)
    assert [translator.beams([source], width=3)[0] for source in ids] == beams


@pytest.mark.slow
def test_batches_translated_side_by_side_keep_their_order(overfit, monkeypatch):
    import nanoseq.text.translate as translate

    model, sources, _ = overfit
    translator = Translator(keras.saving.load_model(model))
    for width in (1, 3):
        monkeypatch.setattr(translate, "side_by_side", lambda items, smallest: 1)
        alone = translator.translate(sources[:40], width, batch_size=8)
        monkeypatch.setattr(translate, "side_by_side", lambda items, smallest: 3)
        assert translator.translate(sources[:40], width, batch_size=8) == alone


@pytest.mark.slow
def test_attention_of_a_translation(overfit):
    model, sources, _ = overfit
    translator = Translator(keras.saving.load_model(model))
    translation = translator.translate(sources[:1])[0]
    words, outputs, weights = translator.attention(sources[0], translation)
    assert words[-1] == "<eos>" and outputs[-1] == "<eos>"
    assert weights.shape == (len(outputs), len(words))
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
