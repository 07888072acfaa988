"""The language model: initial loss ln(V), overfitting a short text, state carried across
batches, `.keras` round trip, generation agreeing with greedy."""

import keras
import numpy as np
import pytest

import nanoseq  # noqa: F401  (registers the models on Keras import)
from nanoseq.text.backbone import TextBackbone
from nanoseq.text.data import bptt_windows
from nanoseq.text.generate import beam_search, greedy, sample
from nanoseq.text.lm import LanguageModel, StreamingTrainer
from nanoseq.text.vocab import Vocabulary

TEXT = "the quick brown fox jumps over the lazy dog. " * 4


def compiled(model, batch_size, lr=1e-2):
    trainer = StreamingTrainer(model, batch_size)
    trainer.compile(
        optimizer=keras.optimizers.Adam(lr, global_clipnorm=5.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return trainer


class ResetEachEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset()


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_initial_loss_is_log_vocabulary(cell):
    keras.utils.set_random_seed(0)
    model = LanguageModel(TextBackbone(50, 16, 16, layers=2, cell=cell))
    tokens = np.random.default_rng(0).integers(0, 50, size=(8, 20))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(tokens, model(tokens))
    assert float(loss) == pytest.approx(np.log(50), abs=0.05)


@pytest.mark.slow
def test_tiny_model_overfits_and_generates_its_text(tmp_path):
    keras.utils.set_random_seed(1)
    vocab = Vocabulary.build([TEXT], "char")
    stream = vocab.encode(TEXT)
    x, y = bptt_windows(stream, batch_size=2, steps=20)
    model = LanguageModel(TextBackbone(len(vocab), 32, 64, layers=1), vocab.get_config())
    trainer = compiled(model, batch_size=2)
    history = trainer.fit(
        x, y, batch_size=2, epochs=120, shuffle=False, verbose=0, callbacks=[ResetEachEpoch()]
    )
    assert history.history["loss"][-1] < 0.1
    # the saved language model generates the text it learned, greedy = beam 1 = cold sampling
    model.save(tmp_path / "lm.keras")
    loaded = keras.saving.load_model(tmp_path / "lm.keras")
    prompt = vocab.encode("the quick ")
    log_probs, states = loaded.prime(prompt)
    out = greedy(loaded.step, states, log_probs, 20)
    assert vocab.decode(out) == "brown fox jumps over"
    assert beam_search(loaded.step, states, log_probs, 20, width=1) == out
    assert sample(loaded.step, states, log_probs, 20, temperature=1e-6, seed=0) == out
    assert Vocabulary.from_config(loaded.vocabulary).symbols == vocab.symbols


@pytest.mark.parametrize("tied", [False, True])
def test_steps_and_prompt_equal_the_whole_pass_with_banned_ids_impossible(tied):
    keras.utils.set_random_seed(5)
    model = LanguageModel(TextBackbone(30, 16, 16, layers=2, cell="lstm"), tie_weights=tied)
    tokens = np.random.default_rng(0).integers(3, 30, size=(2, 6))
    logits = keras.ops.convert_to_numpy(model(tokens)).astype(np.float64)
    banned = [0, 1, 7]
    logits[..., banned] = -np.inf
    expected = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    states = model.zero_states(2)
    for t in range(tokens.shape[1]):
        log_probs, states = model.step(tokens[:, t], states, banned)
        np.testing.assert_allclose(log_probs, expected[:, t], atol=1e-5)
    log_probs, states = model.prime(tokens[1, :4], banned)
    np.testing.assert_allclose(log_probs, expected[1, 3], atol=1e-5)
    assert [s.shape for s in states] == [(1, 16)] * 4


def test_streaming_trainer_carries_rows_and_resets():
    keras.utils.set_random_seed(2)
    backbone = TextBackbone(20, 8, 8, layers=2, cell="gru", layer_norm=True, dropout=0.1)
    model = LanguageModel(backbone)
    trainer = StreamingTrainer(model, batch_size=3)
    tokens = np.random.default_rng(1).integers(0, 20, size=(3, 6))
    first = keras.ops.convert_to_numpy(trainer(tokens))
    second = keras.ops.convert_to_numpy(trainer(tokens))  # starts from carried states
    assert not np.allclose(first, second)
    # carried = running both windows through the stateless model in one go
    both = keras.ops.convert_to_numpy(model(np.concatenate([tokens, tokens], axis=1)))
    np.testing.assert_allclose(second, both[:, 6:], atol=1e-5)
    trainer.reset()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(trainer(tokens)), first, atol=1e-5)


def test_rows_trained_side_by_side_train_as_one_batch(monkeypatch):
    """A batch's rows in calls at once (threads, shares of 3 and 4 rows, or 2, 2 and 3) give
    the weights, carried states and loss of Keras's own step over the whole batch."""
    import nanoseq.text.rows_side_by_side as rows_side_by_side

    tokens = np.random.default_rng(3).integers(0, 20, size=(21, 9))
    trained = {}
    for streams in (1, 2, 3):
        monkeypatch.setattr(rows_side_by_side, "side_by_side", lambda rows, least, n=streams: n)
        keras.utils.set_random_seed(4)
        trainer = compiled(LanguageModel(TextBackbone(20, 8, 16, cell="lstm")), batch_size=7)
        history = trainer.fit(tokens[:, :-1], tokens[:, 1:], batch_size=7, shuffle=False, verbose=0)
        side_by_side = trainer.train_function.__qualname__.startswith("train_function")
        assert side_by_side == (streams > 1)
        trained[streams] = history.history["loss"][0], trainer.get_weights()  # carry included
    loss, weights = trained[1]
    for streams in (2, 3):
        assert trained[streams][0] == pytest.approx(loss, rel=1e-5)
        for ours, keras_own in zip(trained[streams][1], weights, strict=True):
            np.testing.assert_allclose(ours, keras_own, atol=1e-5)
    dropout = StreamingTrainer(LanguageModel(TextBackbone(20, 8, 16, dropout=0.1)), 64)
    assert rows_side_by_side.training_streams(dropout) == 1  # measured slower side by side


def test_round_trip_with_tied_weights(tmp_path):
    model = LanguageModel(TextBackbone(30, 16, 16, layers=3), tie_weights=True)
    tokens = np.arange(12).reshape(2, 6)
    expected = keras.ops.convert_to_numpy(model(tokens))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(tokens)), expected, atol=1e-5)
    assert loaded.get_config()["tie_weights"] and loaded.head is None


def test_bad_configuration():
    with pytest.raises(ValueError, match="tied"):
        LanguageModel(TextBackbone(10, 8, 16), tie_weights=True)
    with pytest.raises(ValueError, match="layers"):
        TextBackbone(10, layers=5)
    with pytest.raises(ValueError, match="cell"):
        TextBackbone(10, cell="transformer")
    with pytest.raises(ValueError, match="bidirectional"):
        LanguageModel(TextBackbone(10, 8, 8, bidirectional=True))


def test_parts_read_in_parallel_score_like_one_pass_once_warmed_up(sample_dir):
    """Validation reads a text as rows in parallel; each row first reading the tokens before
    it keeps the score of one pass in order, where cold rows cost more."""
    from nanoseq.text.lm_evaluate import stream_nats

    model = LanguageModel.from_preset("char_tinyshakespeare")
    vocab = Vocabulary.from_config(model.vocabulary)
    lines = (sample_dir / "text/multi30k_de_en.tsv").read_text().splitlines()
    stream = vocab.encode("\n".join(line.split("\t")[1] for line in lines))
    one_pass, tokens = stream_nats(model, stream)
    warm, warm_tokens = stream_nats(model, stream, rows=16, context=100)
    cold, _ = stream_nats(model, stream, rows=16)
    assert warm_tokens == tokens - tokens % 16 > 5000
    warm_gap = abs(warm / warm_tokens - one_pass / tokens)
    cold_gap = cold / warm_tokens - one_pass / tokens
    assert warm_gap < 0.004
    assert cold_gap > max(0.003, 3 * warm_gap)  # bundled model: 0.0066 cold, 0.00001 warm
    for streams in (2, 16):  # the rows shared among calls at once, down to one row a call
        shared, shared_tokens = stream_nats(model, stream, rows=16, context=100, streams=streams)
        assert shared_tokens == warm_tokens
        assert shared == pytest.approx(warm, rel=1e-5)
