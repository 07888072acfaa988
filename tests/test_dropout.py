import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from nanoseq.dropout import Dropout, seed_stream


@pytest.mark.parametrize("jit", [False, True])
def test_drops_the_rate_and_keeps_the_mean(jit):
    layer = Dropout(0.3, seed=1)
    x = np.ones((200, 500), "float32")
    call = tf.function(lambda x: layer(x, training=True), jit_compile=jit)
    first, second = ops.convert_to_numpy(call(x)), ops.convert_to_numpy(call(x))
    assert abs((first == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(first[first != 0], 1 / 0.7, rtol=1e-6)
    assert abs(first.mean() - 1) < 0.02
    assert (first != second).mean() > 0.3  # a fresh mask each call
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=False)), x)


def test_seed_streams_draw_other_masks_from_one_seed_state():
    """Calls at once read one seed state: each traced in its own stream draws its own mask;
    stream 0 is the layer's usual draw."""
    layer = Dropout(0.5, seed=2)
    x = np.ones((8, 100), "float32")

    @tf.function(jit_compile=True)
    def masked(stream):  # a Python int: one compiled function a stream
        with seed_stream(stream):
            return layer(x, training=True)

    state = ops.convert_to_numpy(layer.seed_generator.state.value)
    drawn = {}
    for stream in (0, 1, 2):
        layer.seed_generator.state.assign(state)
        drawn[stream] = ops.convert_to_numpy(masked(stream))
    layer.seed_generator.state.assign(state)
    usual = tf.function(lambda: layer(x, training=True), jit_compile=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(usual()), drawn[0])
    assert (drawn[0] != drawn[1]).mean() > 0.3 and (drawn[1] != drawn[2]).mean() > 0.3
