import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from nanoseq.dropout import Dropout


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
