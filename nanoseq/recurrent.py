"""``keras.layers.LSTM`` and ``keras.layers.GRU`` with a training path that is fast on CPUs.

Keras runs a recurrent layer on a CPU as a graph loop over its cell, and TensorFlow
differentiates that loop op by op: on 2 CPU cores a 2x256 LSTM over 32 rows of 100 steps spends
0.75 s a training step, a quarter of it in the forward pass. Here, when training on TensorFlow
without a GPU, the input projection of every step is one matrix product, the loop keeps only
the recurrent product, and the backward pass is written out (the weight gradients again as
whole-sequence products): 0.31 s for the same LSTM step under XLA, 0.39 s without. Weights,
configuration and results are Keras's own (the same to float32 rounding). A plain LSTM's
inference on a CPU, and its training too under JAX, is a scan of nanoseq's own (under
TensorFlow every step's input product made before the scan, as in training; under JAX each step
one product of input and state with both kernels stacked); a :class:`Bidirectional` over two
runs both directions in one scan of the latter kind. A plain GRU under JAX is a scan of its
own too (training and inference). Masks, dropout inside the layer, other activations, a GRU's
inference under TensorFlow (and its ``reset_after=False``) use Keras's implementation, and so
does a GPU under TensorFlow (cuDNN).
"""

from __future__ import annotations

import keras
from keras import ops

from nanoseq.runtime import on_accelerator
from nanoseq.scan import scan


class _FastOnCPU:
    """What the fast paths share: when they apply, and the weights and inputs they take."""

    def _plain(self, mask) -> bool:
        """Whether the layer is plain (no mask, dropout or unrolling; tanh and sigmoid; biases
        on), which the fast paths compute."""
        cell = self.cell
        if mask is not None or self.unroll or cell.recurrent_dropout or cell.dropout:
            return False
        return cell.use_bias and (cell.activation, cell.recurrent_activation) == (
            keras.activations.tanh,
            keras.activations.sigmoid,
        )

    def _fast(self, mask, training) -> bool:
        """Whether the hand-written training path runs: training on TensorFlow without a GPU."""
        if not training or keras.backend.backend() != "tensorflow" or not self._plain(mask):
            return False
        return not on_accelerator()

    def _time_major(self, sequences):
        """The inputs time-major, in the order the layer reads them."""
        x = ops.transpose(sequences, (1, 0, 2))
        return ops.flip(x, 0) if self.go_backwards else x  # outputs stay in the order read

    def _weights(self, dtype) -> list:
        """The cell's kernel, recurrent kernel and bias, as ``dtype``."""
        cell = self.cell
        return [ops.cast(w.value, dtype) for w in (cell.kernel, cell.recurrent_kernel, cell.bias)]

    def _returned(self, outputs, h):
        """Keras's ``outputs`` from time-major ones (or the last step's)."""
        return ops.transpose(outputs, (1, 0, 2)) if self.return_sequences else h[:, None]


@keras.saving.register_keras_serializable(package="nanoseq")
class LSTM(_FastOnCPU, keras.layers.LSTM):
    """``keras.layers.LSTM``, same arguments and weights, with a fast CPU training path on
    TensorFlow and a scan of its own for inference (and for training under JAX)."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if self._scans(mask, training):
            return self._scanned(sequences, initial_state)
        if not self._fast(mask, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        x, weights = self._time_major(sequences), self._weights(sequences.dtype)
        h0, c0 = (ops.cast(s, sequences.dtype) for s in initial_state)
        outputs, h, c = _lstm_sequence(x, h0, c0, *weights)
        return h, self._returned(outputs, h), [h, c]

    def _scans(self, mask, training) -> bool:
        """Whether :meth:`_scanned` runs the layer: a plain one under JAX, and for inference
        under TensorFlow without a GPU (where Keras would use cuDNN)."""
        if not self._plain(mask) or keras.backend.backend() not in ("jax", "tensorflow"):
            return False
        return keras.backend.backend() == "jax" or not (training or on_accelerator())

    def _scanned(self, sequences, initial_state):
        """This layer as a scan: under TensorFlow :func:`_lstm_hoisted`, under JAX
        :func:`_lstm_scan` over one direction."""
        x, dtype = self._time_major(sequences), sequences.dtype
        h0, c0 = (ops.cast(s, dtype) for s in initial_state)
        if keras.backend.backend() == "tensorflow":
            outputs, h, c = _lstm_hoisted(x, h0, c0, *self._weights(dtype))
        else:
            outputs, h, c = _lstm_scan(x[:, None], h0[None], c0[None], *_joined([self], dtype))
            outputs, h, c = outputs[:, 0], h[0], c[0]
        return h, self._returned(outputs, h), [h, c]


@keras.saving.register_keras_serializable(package="nanoseq")
class Bidirectional(keras.layers.Bidirectional):
    """``keras.layers.Bidirectional``, same arguments and weights; over two plain nanoseq
    :class:`LSTM` layers that scan (see :meth:`LSTM._scans`) both directions run in one scan,
    each step one batched product for the two."""

    def call(self, sequences, initial_state=None, mask=None, training=None):
        layers = (self.forward_layer, self.backward_layer)
        if not self._merges(layers, initial_state, mask, training):
            return super().call(sequences, initial_state, mask, training)
        x = ops.stack([layer._time_major(sequences) for layer in layers], 1)  # each as read
        zeros = ops.zeros((2, ops.shape(sequences)[0], self.forward_layer.units), x.dtype)
        outputs, _, _ = _lstm_scan(x, zeros, zeros, *_joined(layers, x.dtype))
        outputs = ops.concatenate([outputs[:, 0], ops.flip(outputs[:, 1], 0)], -1)
        return ops.cast(ops.swapaxes(outputs, 0, 1), self.compute_dtype)

    def _merges(self, layers, initial_state, mask, training) -> bool:
        """Whether both directions run as one scan: scanning LSTMs of concatenated sequences,
        nothing else asked."""
        if initial_state is not None or self.return_state or not self.return_sequences:
            return False
        if self.merge_mode != "concat":
            return False
        return all(isinstance(layer, LSTM) and layer._scans(mask, training) for layer in layers)


def _joined(layers, dtype) -> tuple:
    """The stacked kernels (a direction per row: input and recurrent kernel one above the
    other) and biases of ``layers``, for :func:`_lstm_scan`."""
    weights = [layer._weights(dtype) for layer in layers]
    joined = [ops.concatenate([kernel, recurrent], 0) for kernel, recurrent, _ in weights]
    return ops.stack(joined), ops.stack([bias[None] for *_, bias in weights])


def _lstm_scan(x, h0, c0, joined, bias):
    """LSTMs of several directions over time-major ``x`` ``(time, direction, batch,
    features)``: outputs ``(time, direction, batch, units)`` and the last states ``(direction,
    batch, units)``. A scan whose step is one (batched) product of each direction's input and
    state with its kernels stacked; JAX differentiates it. The basecaller's backbone (three
    bidirectional layers of 96) on 320 windows of 2 CPU cores, TensorFlow under XLA: 1.55 s
    against 2.09-2.18 s with Keras's loops (the directions in one scan: 1.08x of it, keeping no
    cell states for outputs 1.05x); under JAX its
    whole model 1.07x Keras's loop (a product of every step's input hoisted out of the loop was
    0.85x: its large intermediate costs more than it saves)."""

    double = _doubled(ops.shape(h0)[-1], joined.dtype)
    joined, bias = joined * double, bias * double

    def step(state, x_t):
        h, c = _lstm_step(ops.concatenate([x_t, state[0]], -1) @ joined + bias, state[1])
        return (h, c), h

    (h, c), outputs = scan(step, (h0, c0), x)
    return outputs, h, c


def _lstm_hoisted(x, h0, c0, kernel, recurrent, bias):
    """An LSTM over time-major ``x`` ``(time, batch, features)``: outputs ``(time, batch,
    units)`` and the last states. Every step's input product is one matrix product before the
    scan, whose step keeps the recurrent product only (as :func:`_lstm_sequence` trains).
    Under TensorFlow with XLA on 2 cores of an Intel Xeon (AVX-512, AMX), two layers over 32
    rows of 100 steps: 124 ms against 158 ms for :func:`_lstm_scan` at 512 units, 44-46 ms
    against 47 ms at 256 (a character model scored: 1.29x and 1.01x); on 2 cores of an AMD EPYC
    (Zen 4) an earlier measurement found it 0.9-1.0x. Under JAX :func:`_lstm_scan` stays
    (hoisting measured 0.85x on the basecaller there). Over several rows the state is carried
    transposed (units by rows), so that XLA computes the step's product with its own code rather
    than YNNPACK's (which takes no transposed left operand): a character model scored on 2 cores
    of the AMD EPYC, 32 rows of 100 steps, 1.13-1.30x faster at 2x512 (three rounds), 0.95-1.17x
    at 2x256. One row (YNNPACK takes no one-row product) keeps it as it is: transposed, its
    graph without XLA (``lm evaluate``'s) read 0.81-0.94x."""
    double = _doubled(ops.shape(h0)[-1], x.dtype)
    projected = (ops.einsum("tbi,ij->tbj", x, kernel) + bias) * double
    recurrent = recurrent * double
    carried = ops.transpose if h0.shape[0] != 1 else (lambda state: state)  # see the docstring

    def step(state, projected_t):
        h, c = _lstm_step(projected_t + carried(state[0]) @ recurrent, state[1])
        return (carried(h), c), h

    (h_carried, c), outputs = scan(step, (carried(h0), c0), projected)
    return outputs, carried(h_carried), c


def _doubled(units, dtype):
    """Per gate column 1, but 2 for the cell candidate's block: with tanh(z) = 2 sigmoid(2z) - 1
    one sigmoid covers the four gates (see :func:`_lstm_step`)."""
    ones = ops.ones((units,), dtype)
    return ops.concatenate([ones, ones, 2 * ones, ones])


def _lstm_step(doubled_gates, c):
    """One LSTM step from its gates' pre-activations (the cell candidate's doubled, see
    :func:`_doubled`) and the cell state before: the new ``(h, c)``."""
    i, f, g, o = ops.split(ops.sigmoid(doubled_gates), 4, axis=-1)
    c = f * c + i * (2 * g - 1)
    return o * ops.tanh(c), c


@keras.saving.register_keras_serializable(package="nanoseq")
class GRU(_FastOnCPU, keras.layers.GRU):
    """``keras.layers.GRU``, same arguments and weights, with a fast CPU training path on
    TensorFlow and a scan of its own under JAX."""

    def _plain(self, mask) -> bool:
        """Plain, and the reset gate applied after the recurrent product (Keras's default)."""
        return super()._plain(mask) and self.cell.reset_after

    def inner_loop(self, sequences, initial_state, mask, training=False):
        scans = self._plain(mask) and keras.backend.backend() == "jax"
        if not (scans or self._fast(mask, training)):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        x, weights = self._time_major(sequences), self._weights(sequences.dtype)
        h0 = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        run = _gru_scan if scans else _gru_sequence
        outputs, h = run(x, ops.cast(h0, sequences.dtype), *weights)
        return h, self._returned(outputs, h), [h]


def _lstm_sequence(x, h0, c0, kernel, recurrent, bias):
    """Outputs ``(time, batch, units)`` and the last states of an LSTM (Keras's gate order i, f,
    c, o) over time-major ``x``, with a hand-written gradient."""
    import tensorflow as tf

    steps, dtype = tf.shape(x)[0], x.dtype
    double = _doubled(tf.shape(h0)[1], dtype)  # one sigmoid over the four gates' block

    @tf.custom_gradient
    def run(x, h0, c0, kernel, recurrent, bias):
        projected = tf.TensorArray(dtype, size=steps).unstack(
            (tf.einsum("tbi,ij->tbj", x, kernel) + bias) * double
        )
        scaled = recurrent * double
        saved = [tf.TensorArray(dtype, size=steps) for _ in range(4)]  # gates, c before, tanh c, h

        def forward(t, h, c_before, gates_, cs, tanhs, hs):  # c_before: its gradient needs it
            gates = tf.sigmoid(projected.read(t) + tf.matmul(h, scaled))
            i, f, g, o = tf.split(gates, 4, axis=1)
            c = f * c_before + i * (2 * g - 1)
            tanh_c = tf.tanh(c)
            h = o * tanh_c
            kept = (gates, c_before, tanh_c, h)
            return t + 1, h, c, *_written(t, (gates_, cs, tanhs, hs), kept)

        _, h, c, gates_, cs, tanhs, hs = tf.while_loop(
            lambda t, *_: t < steps, forward, (0, h0, c0, *saved)
        )
        outputs = hs.stack()

        def gradient(d_outputs, d_h, d_c):
            d_outputs = tf.TensorArray(dtype, size=steps).unstack(d_outputs)
            quadruple = double * double  # d(2 sigmoid(2z) - 1)/dz = 4 s (1 - s)
            back = tf.transpose(recurrent)

            def backward(t, d_h, d_c, d_zs):
                gates = gates_.read(t)
                i, f, g, o = tf.split(gates, 4, axis=1)
                d_h = d_h + d_outputs.read(t)
                tanh_c = tanhs.read(t)
                c_before = cs.read(t)
                d_c = d_c + d_h * o * (1 - tanh_c * tanh_c)
                d_gates = tf.concat([d_c * (2 * g - 1), d_c * c_before, d_c * i, d_h * tanh_c], 1)
                d_z = d_gates * gates * (1 - gates) * quadruple
                return t - 1, tf.matmul(d_z, back), d_c * f, d_zs.write(t, d_z)

            _, d_h0, d_c0, d_zs = tf.while_loop(
                lambda t, *_: t >= 0,
                backward,
                (steps - 1, d_h, d_c, tf.TensorArray(dtype, size=steps)),
            )
            d_z = d_zs.stack()
            h_before = tf.concat([h0[None], outputs[:-1]], 0)
            return (
                tf.einsum("tbj,ij->tbi", d_z, kernel),
                d_h0,
                d_c0,
                tf.einsum("tbi,tbj->ij", x, d_z),
                tf.einsum("tbu,tbj->uj", h_before, d_z),
                tf.reduce_sum(d_z, (0, 1)),
            )

        return (outputs, h, c), gradient

    return run(x, h0, c0, kernel, recurrent, bias)


def _gru_sequence(x, h0, kernel, recurrent, bias):
    """Outputs ``(time, batch, units)`` and the last state of a GRU (Keras's gate order z, r,
    h; the reset gate applied after the recurrent product; ``bias`` input and recurrent rows)
    over time-major ``x``, with a hand-written gradient."""
    import tensorflow as tf

    steps, dtype, units = tf.shape(x)[0], x.dtype, recurrent.shape[0]

    @tf.custom_gradient
    def run(x, h0, kernel, recurrent, bias):
        projected = tf.TensorArray(dtype, size=steps).unstack(
            tf.einsum("tbi,ij->tbj", x, kernel) + bias[0]
        )
        saved = [tf.TensorArray(dtype, size=steps) for _ in range(4)]  # z and r, n, m_n, h

        def forward(t, h, gates_, ns, ms, hs):
            a_zr, a_n = tf.split(projected.read(t), [2 * units, units], axis=1)
            m_zr, m_n = tf.split(tf.matmul(h, recurrent) + bias[1], [2 * units, units], 1)
            gates = tf.sigmoid(a_zr + m_zr)
            z, r = tf.split(gates, 2, axis=1)
            n = tf.tanh(a_n + r * m_n)  # m_n: the recurrent product the reset gate scales
            h = z * h + (1 - z) * n
            return t + 1, h, *_written(t, (gates_, ns, ms, hs), (gates, n, m_n, h))

        _, h, gates_, ns, ms, hs = tf.while_loop(lambda t, *_: t < steps, forward, (0, h0, *saved))
        outputs = hs.stack()

        def gradient(d_outputs, d_h):
            d_outputs = tf.TensorArray(dtype, size=steps).unstack(d_outputs)
            back = tf.transpose(recurrent)
            h_befores = tf.concat([h0[None], outputs[:-1]], 0)  # the state each step starts from

            def backward(t, d_h, d_as, d_ms):
                z, r = tf.split(gates_.read(t), 2, axis=1)
                n, m_n = ns.read(t), ms.read(t)
                h_before = h_befores[t]
                d_h = d_h + d_outputs.read(t)
                d_n = d_h * (1 - z) * (1 - n * n)
                d_zr = tf.concat([d_h * (h_before - n), d_n * m_n], 1)
                d_zr = d_zr * tf.concat([z * (1 - z), r * (1 - r)], 1)
                d_m = tf.concat([d_zr, d_n * r], 1)
                d_h = d_h * z + tf.matmul(d_m, back)
                return t - 1, d_h, d_as.write(t, tf.concat([d_zr, d_n], 1)), d_ms.write(t, d_m)

            empty = [tf.TensorArray(dtype, size=steps) for _ in range(2)]
            _, d_h0, d_as, d_ms = tf.while_loop(
                lambda t, *_: t >= 0, backward, (steps - 1, d_h, *empty)
            )
            d_a, d_m = d_as.stack(), d_ms.stack()
            return (
                tf.einsum("tbj,ij->tbi", d_a, kernel),
                d_h0,
                tf.einsum("tbi,tbj->ij", x, d_a),
                tf.einsum("tbu,tbj->uj", h_befores, d_m),
                tf.stack([tf.reduce_sum(d_a, (0, 1)), tf.reduce_sum(d_m, (0, 1))]),
            )

        return (outputs, h), gradient

    return run(x, h0, kernel, recurrent, bias)


def _gru_scan(x, h0, kernel, recurrent, bias):
    """:func:`_gru_sequence`'s outputs and last state as a scan of two products a step (the
    step's input and its state, each with its kernel), for JAX, which differentiates it. The
    default basecaller's first GRU (96 units) on 160 held-out windows (1,200 steps, its real
    convolution output), 2 CPU cores, compiled: 0.32-0.34 s against 0.64 s for Keras's JAX loop
    in the same run (TensorFlow's, under XLA: 0.28 s). Of this scan's forms, in another run on
    the same input: two products 0.27 s, input and state stacked in one product 0.32 s, every
    step's input product hoisted out of the loop 0.60 s."""
    units = ops.shape(recurrent)[0]

    def step(h, x_t):
        a = x_t @ kernel + bias[0]
        m = h @ recurrent + bias[1]
        z, r = ops.split(ops.sigmoid(a[:, : 2 * units] + m[:, : 2 * units]), 2, axis=-1)
        n = ops.tanh(a[:, 2 * units :] + r * m[:, 2 * units :])  # reset after the product
        h = z * h + (1 - z) * n
        return h, h

    h, outputs = scan(step, h0, x)
    return outputs, h


def _written(t, arrays, values) -> list:
    """Each ``TensorArray`` of ``arrays`` with its value of ``values`` written at step ``t``."""
    return [array.write(t, value) for array, value in zip(arrays, values, strict=True)]
