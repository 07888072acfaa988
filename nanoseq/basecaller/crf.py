"""CRF decoding of basecaller outputs (bonito's CTC-CRF): states are the last three bases.

Per frame the model scores, for each of the 64 states (the last ``STATE_LEN`` bases as a base-4
number, newest last), entering it by a *move* from each of its four predecessor states, which
emits the state's newest base; *staying* in a state emits nothing and scores the constant
``STAY``. Unlike CTC, two equal bases need no blank between them, and each move is conditioned
on the bases before it.

The loss is ``log Z - log score(labels)``: the partition function over every path minus the
summed score of every path through the labels' states (the first ``STATE_LEN`` labels are the
starting state). Decoding is Viterbi's best path; qualities come from forward-backward
posteriors of the moves. The best path under-calls where a base's timing is uncertain (its
probability is spread over many paths, staying is one path), so it is found with a lower stay
score, calibrated on validation chunks after training (``metadata["crf_stay"]``). Everything
is ``keras.ops``, so it runs inside a compiled model on any backend.
"""

from __future__ import annotations

import math

import keras
from keras import ops

N_BASE = 4
STATE_LEN = 3
N_STATES = N_BASE**STATE_LEN
SCORES = N_STATES * N_BASE  # head outputs per frame
SCALE, STAY = 5.0, 2.0  # move scores are SCALE * tanh(head); staying scores STAY
NEG = -1e30
QUARTER = N_STATES // N_BASE  # a state s = 4 m + c: m its two oldest bases, c its newest


def predecessor(state, k):
    """The state a move into ``state`` leaves when that state's oldest base was ``k``."""
    return k * QUARTER + state // N_BASE


def move_scores(head):
    """Head output ``(batch, frames, 64 * 4)`` -> move scores ``(batch, frames, 64, 4)``:
    ``[b, t, s, k]`` scores entering state ``s`` at frame ``t`` from ``predecessor(s, k)``."""
    shape = ops.shape(head)
    return SCALE * ops.tanh(ops.reshape(head, (shape[0], shape[1], N_STATES, N_BASE)))


def _time_major(x):
    return ops.moveaxis(x, 1, 0)


def _entering(alpha):
    """``alpha`` ``(batch, 64)`` at each state's predecessors ``(batch, 64, 4)``: ``[s, k]`` is
    ``alpha[predecessor(s, k)]`` (a reshape, not a gather: gathers are slow on XLA CPUs)."""
    by_oldest = ops.transpose(ops.reshape(alpha, (-1, N_BASE, QUARTER)), (0, 2, 1))  # [m, k]
    spread = ops.broadcast_to(
        by_oldest[:, :, None, :], (ops.shape(alpha)[0], QUARTER, N_BASE, N_BASE)
    )
    return ops.reshape(spread, (-1, N_STATES, N_BASE))  # s = 4 m + c


def _onward(beta, weights):
    """For each state ``p`` and base ``c``: the weight (exp score) of moving from ``p``
    emitting ``c`` times ``beta`` of the state entered, ``(batch, 64, 4)``."""
    by_entered = ops.reshape(weights, (-1, QUARTER, N_BASE, N_BASE))  # [m, c, k]
    leaving = ops.transpose(by_entered, (0, 3, 1, 2))  # [k, m, c]: p = 16 k + m
    return ops.reshape(
        leaving * ops.reshape(beta, (-1, 1, QUARTER, N_BASE)), (-1, N_STATES, N_BASE)
    )


def log_partition(moves):
    """log Z: every path's score summed, from any starting state. ``moves`` as move_scores."""

    def step(alpha, frame):  # alpha (batch, states); frame (batch, states, 4)
        both = ops.concatenate([(alpha + STAY)[..., None], _entering(alpha) + frame], axis=-1)
        alpha = ops.logsumexp(both, axis=-1)
        return alpha, alpha

    batch = ops.shape(moves)[0]
    alpha, _ = ops.scan(step, ops.zeros((batch, N_STATES)), _time_major(moves))
    return ops.logsumexp(alpha, axis=-1)


def label_states(labels):
    """Labels ``(batch, L)`` of codes 1..4 (0 padding) -> the state after each label from the
    third on ``(batch, L - 2)`` and the oldest base of the state before it (the move's k)."""
    codes = ops.maximum(ops.cast(labels, "int32") - 1, 0)
    states = codes[:, :-2] * N_BASE**2 + codes[:, 1:-1] * N_BASE + codes[:, 2:]
    return states, codes[:, :-2]


def log_label_score(moves, labels):
    """log of the summed score of every path that emits exactly ``labels`` after the first
    ``STATE_LEN``, which are its starting state."""
    shape = ops.shape(moves)
    batch, frames = shape[0], shape[1]
    states, oldest = label_states(labels)
    # the score of moving from label state j - 1 into label state j, at every frame
    index = states[:, 1:] * N_BASE + oldest[:, :-1]  # (batch, n - 1)
    flat = ops.reshape(moves, (batch, frames, N_STATES * N_BASE))
    n = ops.shape(states)[1]
    index = ops.broadcast_to(index[:, None, :], (batch, frames, n - 1))
    along = ops.take_along_axis(flat, index, axis=2)
    start = ops.concatenate(
        [ops.zeros((batch, 1)), ops.full((batch, n - 1), NEG)], axis=1
    )  # in the first label state

    def step(alpha, move):  # alpha (batch, n); move (batch, n - 1)
        moved = ops.concatenate([ops.full((batch, 1), NEG), alpha[:, :-1] + move], axis=1)
        alpha = ops.logaddexp(alpha + STAY, moved)
        return alpha, alpha

    alpha, _ = ops.scan(step, start, _time_major(along))
    lengths = ops.sum(ops.cast(ops.cast(labels, "int32") > 0, "int32"), axis=1)
    last = ops.maximum(lengths - STATE_LEN, 0)  # index of the labels' final state
    return ops.take_along_axis(alpha, last[:, None], axis=1)[:, 0]


@keras.saving.register_keras_serializable(package="nanoseq")
def crf_loss(labels, head):
    """CRF negative log-likelihood per chunk: log Z - log score(labels)."""
    moves = move_scores(ops.cast(head, "float32"))
    return log_partition(moves) - log_label_score(moves, labels)


def _scan(step, init, xs, reverse=False):
    """``keras.ops.scan`` whose per-step outputs need not match the carry (Keras's TensorFlow
    scan stacks outputs shaped as the carry)."""
    if keras.backend.backend() != "tensorflow":
        return ops.scan(step, init, xs, reverse=reverse)
    import tensorflow as tf

    flat = tf.nest.flatten(xs)
    n = tf.shape(flat[0])[0]
    inputs = [tf.TensorArray(x.dtype, size=n).unstack(x) for x in flat]
    _, probe = step(init, tf.nest.pack_sequence_as(xs, [x[0] for x in flat]))
    outputs = [tf.TensorArray(y.dtype, size=n) for y in tf.nest.flatten(probe)]

    def body(i, carry, outputs):
        t = n - 1 - i if reverse else i
        carry, ys = step(carry, tf.nest.pack_sequence_as(xs, [x.read(t) for x in inputs]))
        return (
            i + 1,
            carry,
            [o.write(t, y) for o, y in zip(outputs, tf.nest.flatten(ys), strict=True)],
        )

    _, carry, outputs = tf.while_loop(lambda i, *_: i < n, body, (0, init, outputs))
    return carry, tf.nest.pack_sequence_as(probe, [o.stack() for o in outputs])


def path_and_posteriors(head, stay: float = STAY):
    """What decoding a batch of head outputs takes, per frame ``(batch, frames, 5)`` float32:
    column 0 the best path with staying scored ``stay`` (0 stay, else the code 1..4 of the base
    its move emits), columns 1..4 the posterior probability of a move emitting A, C, G, T.
    One scan forward (Viterbi's, and the forward sums), one back (the path's trace, and the
    backward sums). The sums run in probabilities scaled to 1 each frame, not logarithms:
    only products and sums, the dearer exp and log once a frame."""
    moves = _time_major(move_scores(ops.cast(head, "float32")))
    batch = ops.shape(moves)[1]
    kept = math.exp(STAY)

    def forward(carry, frame):
        best, alpha = carry
        choices = ops.concatenate([(best + stay)[..., None], _entering(best) + frame], axis=-1)
        choice = ops.cast(ops.argmax(choices, axis=-1), "int8")  # 0 stay, 1 + k moved from k
        after = alpha * kept + ops.sum(_entering(alpha) * ops.exp(frame), axis=-1)
        after = after / ops.sum(after, axis=-1, keepdims=True)
        return (ops.max(choices, axis=-1), after), (choice, alpha)

    start = ops.zeros((batch, N_STATES))
    uniform = ops.full((batch, N_STATES), 1.0 / N_STATES)
    (best, _), (choices, before) = _scan(forward, (start, uniform), moves)

    def backward(carry, inputs):  # state: the path's after this frame; beta: the sums'
        state, beta = carry
        frame, choice, alpha = inputs
        choice = ops.take_along_axis(ops.cast(choice, "int32"), state[:, None], axis=1)[:, 0]
        moved = choice > 0
        code = ops.where(moved, 1 + state % N_BASE, 0)
        state = ops.where(moved, predecessor(state, choice - 1), state)
        weights = ops.exp(frame)
        mass = ops.sum(_entering(alpha) * weights, axis=-1) * beta  # (batch, states)
        stays = ops.sum(alpha * beta, axis=-1, keepdims=True) * kept
        posterior = ops.sum(ops.reshape(mass, (-1, QUARTER, N_BASE)), axis=1)
        posterior = posterior / (ops.sum(mass, axis=-1, keepdims=True) + stays)
        beta = beta * kept + ops.sum(_onward(beta, weights), axis=-1)
        beta = beta / ops.sum(beta, axis=-1, keepdims=True)
        return (state, beta), (code, posterior)

    end = (ops.cast(ops.argmax(best, axis=-1), "int32"), uniform)
    _, (codes, posteriors) = _scan(backward, end, (moves, choices, before), reverse=True)
    path = ops.cast(ops.transpose(codes), "float32")
    return ops.concatenate([path[..., None], ops.moveaxis(posteriors, 0, 1)], axis=-1)
