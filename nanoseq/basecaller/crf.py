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

import keras
import numpy as np
from keras import ops

N_BASE = 4
STATE_LEN = 3
N_STATES = N_BASE**STATE_LEN
SCORES = N_STATES * N_BASE  # head outputs per frame
SCALE, STAY = 5.0, 2.0  # move scores are SCALE * tanh(head); staying scores STAY
NEG = -1e30

# PREDECESSORS[s, k]: the state a move emitting s's newest base leaves when its oldest base is k
PREDECESSORS = (
    np.arange(N_BASE)[None, :] * N_BASE ** (STATE_LEN - 1)
    + (np.arange(N_STATES) // N_BASE)[:, None]
)


def move_scores(head):
    """Head output ``(batch, frames, 64 * 4)`` -> move scores ``(batch, frames, 64, 4)``:
    ``[b, t, s, k]`` scores entering state ``s`` at frame ``t`` from ``PREDECESSORS[s, k]``."""
    shape = ops.shape(head)
    return SCALE * ops.tanh(ops.reshape(head, (shape[0], shape[1], N_STATES, N_BASE)))


def _time_major(x):
    return ops.moveaxis(x, 1, 0)


def log_partition(moves):
    """log Z: every path's score summed, from any starting state. ``moves`` as move_scores."""

    def step(alpha, frame):  # alpha (batch, states); frame (batch, states, 4)
        entering = ops.take(alpha, PREDECESSORS.reshape(-1), axis=1)
        entering = ops.reshape(entering, (-1, N_STATES, N_BASE)) + frame
        both = ops.concatenate([(alpha + STAY)[..., None], entering], axis=-1)
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
    """log of the summed score of every path that emits exactly ``labels`` (after the first
    ``STATE_LEN - 1``, which fix the starting state)."""
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


# SUCCESSORS[p, c]: the state a move from p emitting base c enters (p's oldest base is dropped)
SUCCESSORS = (np.arange(N_STATES)[:, None] * N_BASE + np.arange(N_BASE)[None, :]) % N_STATES
OLDEST = np.arange(N_STATES) // N_BASE ** (STATE_LEN - 1)  # each state's oldest base


def path_and_posteriors(head, stay: float = STAY):
    """What decoding a batch of head outputs takes, per frame ``(batch, frames, 5)`` float32:
    column 0 the best path with staying scored ``stay`` (0 stay, else the code 1..4 of the base
    its move emits), columns 1..4 the posterior probability of a move emitting A, C, G, T."""
    moves = _time_major(move_scores(ops.cast(head, "float32")))
    path = ops.cast(best_path(moves, stay), "float32")
    return ops.concatenate([path[..., None], move_posteriors(moves)], axis=-1)


def best_path(moves, stay: float = STAY):
    """Viterbi's best path, in the graph, of time-major move scores ``(frames, batch, 64, 4)``
    and staying scored ``stay``: per frame 0 (stay) or the code 1..4 of the base its move emits
    ``(batch, frames)`` int32."""

    def forward(score, frame):
        entering = ops.reshape(ops.take(score, PREDECESSORS.reshape(-1), axis=1), ops.shape(frame))
        both = ops.concatenate([(score + stay)[..., None], entering + frame], axis=-1)
        return ops.max(both, axis=-1), ops.cast(ops.argmax(both, axis=-1), "int32")

    batch = ops.shape(moves)[1]
    score, back = _scan(forward, ops.zeros((batch, N_STATES)), moves)
    predecessors = ops.convert_to_tensor(PREDECESSORS.reshape(-1), "int32")

    def backward(state, choices):  # choices (batch, states): 0 stay, 1 + k moved from pred k
        choice = ops.take_along_axis(choices, state[:, None], axis=1)[:, 0]
        moved = choice > 0
        code = ops.where(moved, 1 + state % N_BASE, 0)
        before = ops.take(predecessors, state * N_BASE + ops.maximum(choice - 1, 0))
        return ops.where(moved, before, state), code

    _, codes = _scan(backward, ops.cast(ops.argmax(score, axis=-1), "int32"), back, reverse=True)
    return ops.transpose(codes)


def move_posteriors(moves):
    """Forward-backward in the graph over time-major move scores ``(frames, batch, 64, 4)``:
    per frame the posterior probability of a move emitting each base ``(batch, frames, 4)``."""

    def forward(alpha, frame):
        entering = ops.reshape(ops.take(alpha, PREDECESSORS.reshape(-1), axis=1), ops.shape(frame))
        both = ops.concatenate([(alpha + STAY)[..., None], entering + frame], axis=-1)
        return ops.logsumexp(both, axis=-1), alpha  # the state before each frame

    batch = ops.shape(moves)[1]
    alpha, before = _scan(forward, ops.zeros((batch, N_STATES)), moves)
    log_z = ops.logsumexp(alpha, axis=-1)[:, None]
    into = (SUCCESSORS * N_BASE + OLDEST[:, None]).reshape(-1)  # p's moves in move-score order
    by_base = np.eye(N_BASE, dtype=np.float32)[np.arange(N_STATES) % N_BASE]  # (states, 4)

    def backward(beta, inputs):  # beta: the states after the frame
        frame, alpha = inputs
        entering = ops.reshape(ops.take(alpha, PREDECESSORS.reshape(-1), axis=1), ops.shape(frame))
        mass = ops.exp(entering + frame + beta[..., None] - log_z[..., None])  # (batch, s, k)
        posterior = ops.matmul(ops.sum(mass, axis=-1), by_base)
        leaving = ops.reshape(
            ops.take(ops.reshape(frame, (batch, -1)), into, axis=1), (batch, N_STATES, N_BASE)
        )
        onward = leaving + ops.reshape(
            ops.take(beta, SUCCESSORS.reshape(-1), axis=1), (batch, N_STATES, N_BASE)
        )
        beta = ops.logsumexp(ops.concatenate([(beta + STAY)[..., None], onward], axis=-1), axis=-1)
        return beta, posterior

    _, posteriors = _scan(backward, ops.zeros((batch, N_STATES)), (moves, before), reverse=True)
    return ops.moveaxis(posteriors, 0, 1)
