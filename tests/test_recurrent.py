"""nanoseq's LSTM and GRU: Keras's results and gradients, from their own CPU path."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nanoseq.recurrent import GRU, LSTM, Bidirectional

LAYERS = {"lstm": (keras.layers.LSTM, LSTM), "gru": (keras.layers.GRU, GRU)}


def pair(cell, **options):
    """A Keras layer and nanoseq's with the same weights."""
    keras_class, own_class = LAYERS[cell]
    theirs = keras_class(8, **options)
    ours = own_class(8, **options)
    theirs.build((None, None, 5))
    ours.build((None, None, 5))
    rng = np.random.default_rng(0)
    ours.set_weights([rng.normal(scale=0.5, size=w.shape) for w in theirs.get_weights()])
    theirs.set_weights(ours.get_weights())
    return theirs, ours


def outputs_and_gradients(layer, x, states, jit=False):
    x, states = tf.Variable(x), [tf.Variable(s) for s in states]

    @tf.function(jit_compile=jit)
    def run():
        with tf.GradientTape() as tape:
            out = layer(x, initial_state=states, training=True)
            out = keras.tree.flatten(out)
            loss = sum(tf.reduce_sum(o * tf.sin(3 * o)) for o in out)
        return out, tape.gradient(loss, [x, *states, *layer.trainable_variables])

    return run()


def own_path_only(monkeypatch):
    """Keras's own loops, made unusable: nanoseq's layers must not need them."""

    def refuse(*args, **kwargs):
        raise AssertionError("fell back to Keras's loop")

    for keras_class, _ in LAYERS.values():
        monkeypatch.setattr(keras_class, "inner_loop", refuse)


@pytest.mark.parametrize(
    "options",
    [
        dict(return_sequences=True, return_state=True),
        dict(return_sequences=True, go_backwards=True),
        dict(return_state=True, go_backwards=True),
        dict(),
    ],
    ids=["sequences+state", "backwards", "backwards-last+state", "last"],
)
@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("cell", LAYERS)
def test_same_outputs_and_gradients_as_keras(cell, options, jit, monkeypatch):
    theirs, ours = pair(cell, **options)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 11, 5)).astype("float32")
    states = [rng.normal(size=(3, 8)).astype("float32") for _ in range(2 if cell == "lstm" else 1)]
    expected, expected_gradients = outputs_and_gradients(theirs, x, states)
    own_path_only(monkeypatch)
    got, gradients = outputs_and_gradients(ours, x, states, jit)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-6)
    for a, b in zip(gradients, expected_gradients, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [dict(return_sequences=True, return_state=True), dict(go_backwards=True)],
    ids=["sequences+state", "backwards-last"],
)
@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("rows", [3, 1])  # several rows carry the state transposed, one does not
def test_lstm_inference_scans_to_keras_results(options, jit, rows, monkeypatch):
    theirs, ours = pair("lstm", **options)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(rows, 11, 5)).astype("float32")
    states = [rng.normal(size=(rows, 8)).astype("float32") for _ in range(2)]
    expected = keras.tree.flatten(theirs(x, initial_state=states))
    own_path_only(monkeypatch)
    got = tf.function(lambda: ours(x, initial_state=states), jit_compile=jit)()
    for a, b in zip(keras.tree.flatten(got), expected, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-6)


def test_bidirectional_runs_both_directions_in_one_scan(monkeypatch):
    ours = Bidirectional(LSTM(8, return_sequences=True))
    theirs = keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True))
    x = np.random.default_rng(4).normal(size=(3, 11, 5)).astype("float32")
    ours.build(x.shape)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    expected = theirs(x)
    scanned = []
    monkeypatch.setattr(LSTM, "_scanned", lambda *args: scanned.append(1))  # one layer alone
    own_path_only(monkeypatch)
    for jit in (False, True):
        got = tf.function(lambda: ours(x), jit_compile=jit)()
        np.testing.assert_allclose(got, expected, atol=2e-6)
    assert not scanned
    assert not ours._merges((ours.forward_layer, ours.backward_layer), None, None, True)
    states = Bidirectional(LSTM(8, return_sequences=True, return_state=True))
    assert not states._merges((ours.forward_layer, ours.backward_layer), None, None, False)


def test_bidirectional_model_round_trip_and_training_path(tmp_path, monkeypatch):
    inputs = keras.Input((None, 5))
    model = keras.Model(inputs, Bidirectional(LSTM(8, return_sequences=True))(inputs))
    x = np.random.default_rng(2).normal(size=(2, 7, 5)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[1], Bidirectional)
    assert isinstance(loaded.layers[1].forward_layer, LSTM)
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected)
    own_path_only(monkeypatch)
    np.testing.assert_allclose(loaded(x, training=True), expected, atol=2e-6)


def test_masks_and_dropout_use_keras_loop():
    layer = LSTM(4, dropout=0.5)
    layer.build((None, None, 3))
    assert not layer._fast(None, training=True)
    assert not layer._fast(None, training=False)
    assert not layer._scans(None, training=False)
    plain = LSTM(4)
    plain.build((None, None, 3))
    assert plain._fast(None, training=True)
    assert plain._scans(None, training=False) and not plain._scans(None, training=True)
    assert not plain._fast(np.ones((1, 2), bool), training=True)
    reset_before = GRU(4, reset_after=False)
    reset_before.build((None, None, 3))
    assert not reset_before._fast(None, training=True)
    assert GRU(4)._fast(None, training=True)
