"""``keras.ops.scan`` whose per-step outputs need not match the carry."""

from __future__ import annotations

import keras
from keras import ops


def scan(step, init, xs, reverse=False):
    """``keras.ops.scan`` whose per-step outputs need not match the carry (Keras's TensorFlow
    scan stacks outputs shaped as the carry)."""
    if keras.backend.backend() != "tensorflow":
        return ops.scan(step, init, xs, reverse=reverse)
    import tensorflow as tf

    flat = tf.nest.flatten(xs)
    n = tf.shape(flat[0])[0]
    _, probe = step(init, tf.nest.pack_sequence_as(xs, [x[0] for x in flat]))
    outputs = [tf.TensorArray(y.dtype, size=n) for y in tf.nest.flatten(probe)]

    def body(i, carry, outputs):
        t = n - 1 - i if reverse else i  # inputs sliced where they are, not copied
        carry, ys = step(carry, tf.nest.pack_sequence_as(xs, [x[t] for x in flat]))
        return (
            i + 1,
            carry,
            [o.write(t, y) for o, y in zip(outputs, tf.nest.flatten(ys), strict=True)],
        )

    _, carry, outputs = tf.while_loop(lambda i, *_: i < n, body, (0, init, outputs))
    return carry, tf.nest.pack_sequence_as(probe, [o.stack() for o in outputs])
