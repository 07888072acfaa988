"""The CRF head (bonito's CTC-CRF): states are the last bases.

Per frame the model scores, for each of its states (the last ``state_len`` bases as a base-4
number, newest last: 64 for nanoseq's heads, 64 to 1,024 for ONT's), entering it by a *move*
from each of its four predecessor states, which emits the state's newest base; *staying* in a
state emits nothing and scores a constant, the blank. Unlike CTC, two equal bases need no blank
between them, and each move is conditioned on the bases before it.

The loss is ``log Z - log score(labels)``: the partition function over every path minus the
summed score of every path through the labels' states (the first ``state_len`` labels are the
starting state). Decoding finds the best path (Viterbi) or, with a beam, the most probable
sequence (:class:`Beam`); qualities come from forward-backward posteriors of the moves. The best
path under-calls where a base's timing is uncertain (its probability is spread over many paths,
staying is one path), so it is found with a lower stay score, calibrated on validation chunks
after training (:meth:`CRFHead.calibrated`). Everything but the last step of decoding is
``keras.ops``, so it runs inside a compiled model on any backend.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from keras import ops

from nanoseq.basecaller.head import Decoded, Head, best_setting, decoded, register
from nanoseq.scan import scan

log = logging.getLogger(__name__)

N_BASE = 4
STATE_LEN = 3  # nanoseq's own CRF heads; imported ONT heads have 3, 4 or 5
SCALE, STAY = 5.0, 2.0  # move scores are SCALE * tanh(head); staying scores STAY
NEG = -1e30


def states_of(scores) -> int:
    """The states of a CRF whose moves (or forward sums) are ``scores``: their last axis
    (states) or their last two (states, 4)."""
    shape = scores.shape
    return int(shape[-2] if len(shape) > 1 and shape[-1] == N_BASE else shape[-1])


def predecessor(state, k, states: int):
    """The state a move into ``state`` leaves when that state's oldest base was ``k``."""
    return k * (states // N_BASE) + state // N_BASE


def move_scores(head, scale: float = SCALE, tanh: bool = True, clamp: float | None = None):
    """Head output ``(batch, frames, states * 4)`` -> move scores ``(batch, frames, states, 4)``:
    ``[b, t, s, k]`` scores entering state ``s`` at frame ``t`` from ``predecessor(s, k)``;
    ``scale * tanh(head)`` (or ``scale * head``), within ``+-clamp`` if given (ONT's v4)."""
    shape = ops.shape(head)
    head = ops.reshape(head, (shape[0], shape[1], head.shape[-1] // N_BASE, N_BASE))
    moves = scale * (ops.tanh(head) if tanh else head)
    return moves if clamp is None else ops.clip(moves, -clamp, clamp)


def _time_major(x):
    return ops.moveaxis(x, 1, 0)


def _entering(alpha):
    """``alpha`` ``(batch, states)`` at each state's predecessors ``(batch, states, 4)``:
    ``[s, k]`` is ``alpha[predecessor(s, k)]`` (a reshape, not a gather: gathers are slow on
    XLA CPUs)."""
    states = states_of(alpha)
    quarter = states // N_BASE  # a state s = 4 m + c: m its older bases, c its newest
    by_oldest = ops.transpose(ops.reshape(alpha, (-1, N_BASE, quarter)), (0, 2, 1))  # [m, k]
    spread = ops.broadcast_to(
        by_oldest[:, :, None, :], (ops.shape(alpha)[0], quarter, N_BASE, N_BASE)
    )
    return ops.reshape(spread, (-1, states, N_BASE))  # s = 4 m + c


def _onward(beta, weights):
    """For each state ``p`` and base ``c``: the weight (exp score) of moving from ``p``
    emitting ``c`` times ``beta`` of the state entered, ``(batch, states, 4)``."""
    states = states_of(beta)
    quarter = states // N_BASE
    by_entered = ops.reshape(weights, (-1, quarter, N_BASE, N_BASE))  # [m, c, k]
    leaving = ops.transpose(by_entered, (0, 3, 1, 2))  # [k, m, c]: p = quarter k + m
    return ops.reshape(leaving * ops.reshape(beta, (-1, 1, quarter, N_BASE)), (-1, states, N_BASE))


def log_partition(moves, blank: float = STAY):
    """log Z: every path's score summed, from any starting state, staying scored ``blank``.
    ``moves`` as move_scores."""

    def step(alpha, frame):  # alpha (batch, states); frame (batch, states, 4)
        both = ops.concatenate([(alpha + blank)[..., None], _entering(alpha) + frame], axis=-1)
        alpha = ops.logsumexp(both, axis=-1)
        return alpha, alpha

    batch = ops.shape(moves)[0]
    alpha, _ = ops.scan(step, ops.zeros((batch, states_of(moves))), _time_major(moves))
    return ops.logsumexp(alpha, axis=-1)


def label_states(labels, state_len: int = STATE_LEN):
    """Labels ``(batch, L)`` of codes 1..4 (0 padding) -> the state after each label from the
    ``state_len``-th on ``(batch, L - state_len + 1)`` and the oldest base of each (the k of
    the move out of it)."""
    codes = ops.maximum(ops.cast(labels, "int32") - 1, 0)
    n = ops.shape(codes)[1] - state_len + 1
    states = codes[:, :n]
    for j in range(1, state_len):
        states = states * N_BASE + codes[:, j : j + n]
    return states, codes[:, :n]


def log_label_score(moves, labels, state_len: int = STATE_LEN, blank: float = STAY):
    """log of the summed score of every path that emits exactly ``labels`` after the first
    ``state_len``, which are its starting state."""
    shape = ops.shape(moves)
    batch, frames = shape[0], shape[1]
    states, oldest = label_states(labels, state_len)
    # the score of moving from label state j - 1 into label state j, at every frame
    index = states[:, 1:] * N_BASE + oldest[:, :-1]  # (batch, n - 1)
    flat = ops.reshape(moves, (batch, frames, -1))
    n = ops.shape(states)[1]
    index = ops.broadcast_to(index[:, None, :], (batch, frames, n - 1))
    along = ops.take_along_axis(flat, index, axis=2)
    start = ops.concatenate(
        [ops.zeros((batch, 1)), ops.full((batch, n - 1), NEG)], axis=1
    )  # in the first label state

    def step(alpha, move):  # alpha (batch, n); move (batch, n - 1)
        moved = ops.concatenate([ops.full((batch, 1), NEG), alpha[:, :-1] + move], axis=1)
        alpha = ops.logaddexp(alpha + blank, moved)
        return alpha, alpha

    alpha, _ = ops.scan(step, start, _time_major(along))
    lengths = ops.sum(ops.cast(ops.cast(labels, "int32") > 0, "int32"), axis=1)
    last = ops.maximum(lengths - state_len, 0)  # index of the labels' final state
    return ops.take_along_axis(alpha, last[:, None], axis=1)[:, 0]


def path_and_posteriors(moves, stay: float = STAY, width: int = 1, blank: float = STAY):
    """What decoding a batch of move scores (:func:`move_scores`) takes, per frame: the called
    path ``(batch, frames)`` int8 (0 stay, else the code 1..4 of the base its move emits) and
    the posterior probability of a move emitting A, C, G, T ``(batch, frames, 4)``, staying
    scored ``blank`` as in training. The path is the best one with staying scored ``stay``, or
    with ``width`` > 1 that of a beam search (see :class:`Beam`) back from its final state. One
    scan forward (Viterbi's, and the forward sums), one back (the path's trace or the beam, and
    the backward sums), and for a beam its trace. The sums run in probabilities scaled to 1
    each frame, not logarithms: only products and sums, the dearer exp and log once a frame."""
    moves = _time_major(moves)
    batch, states = ops.shape(moves)[1], states_of(moves)
    kept = math.exp(blank)

    def forward(carry, frame):
        best, alpha = carry
        choices = ops.concatenate([(best + stay)[..., None], _entering(best) + frame], axis=-1)
        choice = ops.cast(ops.argmax(choices, axis=-1), "int8")  # 0 stay, 1 + k moved from k
        after = alpha * kept + ops.sum(_entering(alpha) * ops.exp(frame), axis=-1)
        after = after / ops.sum(after, axis=-1, keepdims=True)
        return (ops.max(choices, axis=-1), after), (choice, alpha)

    start = ops.zeros((batch, states))
    uniform = ops.full((batch, states), 1.0 / states)
    (best, _), (choices, before) = scan(forward, (start, uniform), moves)
    end = ops.cast(ops.argmax(best, axis=-1), "int32")
    beam = Beam(width, blank) if width > 1 else None

    def backward(carry, inputs):  # the path's state after this frame (or the beam); beta
        path, beta = carry
        frame, choice, alpha = inputs
        if beam:
            path, step = beam.step(path, frame, alpha)
        else:
            choice = ops.take_along_axis(ops.cast(choice, "int32"), path[:, None], axis=1)[:, 0]
            moved = choice > 0
            step = ops.where(moved, 1 + path % N_BASE, 0)
            path = ops.where(moved, predecessor(path, choice - 1, states), path)
        weights = ops.exp(frame)
        mass = ops.sum(_entering(alpha) * weights, axis=-1) * beta  # (batch, states)
        stays = ops.sum(alpha * beta, axis=-1, keepdims=True) * kept
        posterior = ops.sum(ops.reshape(mass, (-1, states // N_BASE, N_BASE)), axis=1)
        posterior = posterior / (ops.sum(mass, axis=-1, keepdims=True) + stays)
        beta = beta * kept + ops.sum(_onward(beta, weights), axis=-1)
        beta = beta / ops.sum(beta, axis=-1, keepdims=True)
        return (path, beta), (step, posterior)

    init = (beam.start(end) if beam else end, uniform)
    (path, _), (steps, posteriors) = scan(backward, init, (moves, choices, before), reverse=True)
    codes = beam.trace(path, steps) if beam else steps
    return ops.cast(ops.transpose(codes), "int8"), ops.moveaxis(posteriors, 0, 1)


HASH = 2**28 - 57  # sequences are told apart by their state and a hash of their bases


class Beam:
    """Beam search for the most probable sequence: every path that emits it summed, staying
    scored ``blank`` as in training. A beam of ``width`` sequences grows from the last frame
    back, each ranked by its score times the forward sum of the state it has reached: in a CRF,
    scores are not probabilities frame by frame, so sequences in different states compare only
    with what lies before them. A sequence is known by its state (its first bases) and a
    hash of the bases after them; one that a move makes and that the beam already holds (which
    then stays) is summed into it. Its path is the one that contributes most to it."""

    def __init__(self, width: int, blank: float = STAY):
        self.width, self.blank = width, blank

    def start(self, end):
        """The beam before the last frame: one sequence, the state ``end`` ``(batch,)``."""
        shape = (ops.shape(end)[0], self.width)
        first = ops.broadcast_to(ops.arange(self.width)[None, :] == 0, shape)
        return (
            ops.where(first, 0.0, NEG),
            ops.broadcast_to(ops.cast(end, "int32")[:, None], shape),
            ops.cast(first, "int32"),  # the hash of no bases
        )

    def step(self, beam, frame, alpha):
        """The beam before a frame, from the beam after it, the frame's move scores ``(batch,
        states, 4)`` and the forward sums before it ``(batch, states)``; and per sequence the
        slot it came from and the code of this frame (0 stay, else the base its move emits)."""
        score, state, key = beam  # (batch, width) each
        batch, width, states = ops.shape(score)[0], self.width, states_of(alpha)
        slots = ops.broadcast_to(ops.arange(width, dtype="int32")[None, :], (batch, width))
        bases = ops.arange(N_BASE, dtype="int32")[None, None, :]
        left = predecessor(state[..., None], bases, states)  # the state a move left, by base
        index = ops.reshape(state[..., None] * N_BASE + bases, (batch, -1))
        moved = score[..., None] + ops.reshape(
            ops.take_along_axis(ops.reshape(frame, (batch, states * N_BASE)), index, axis=1),
            (batch, width, N_BASE),
        )
        moved_key = (key[..., None] * 5 + bases + 1) % HASH
        same = (moved_key[..., None] == key[:, None, None, :]) & (
            left[..., None] == state[:, None, None, :]
        )  # [b, a, k, w]: sequence a with base k before it is sequence w
        joining = ops.reshape(ops.where(same, moved[..., None], NEG), (batch, -1, width))
        joined = ops.max(joining, axis=1)
        source = ops.cast(ops.argmax(joining, axis=1), "int32") // N_BASE
        stayed = score + self.blank
        by_move = joined > stayed
        newest = state % N_BASE + 1  # the code a move into a sequence's state emits
        candidates = (  # score, state, key, slot it came from, code of this frame
            ops.concatenate(
                [
                    ops.logaddexp(stayed, joined),
                    ops.reshape(ops.where(ops.any(same, axis=-1), NEG, moved), (batch, -1)),
                ],
                axis=1,
            ),
            ops.concatenate([state, ops.reshape(left, (batch, -1))], axis=1),
            ops.concatenate([key, ops.reshape(moved_key, (batch, -1))], axis=1),
            ops.concatenate(
                [ops.where(by_move, source, slots), ops.repeat(slots, N_BASE, axis=1)], axis=1
            ),
            ops.concatenate(
                [
                    ops.where(by_move, ops.take_along_axis(newest, source, axis=1), 0),
                    ops.repeat(newest, N_BASE, axis=1),
                ],
                axis=1,
            ),
        )
        reached = ops.take_along_axis(alpha, candidates[1], axis=1)
        _, top = ops.top_k(candidates[0] + ops.log(reached + 1e-30), width)
        score, state, key, parent, code = (ops.take_along_axis(c, top, axis=1) for c in candidates)
        score = score - ops.max(score, axis=1, keepdims=True)
        return (score, state, key), ops.stack([parent, code])

    def trace(self, beam, steps):
        """The codes ``(frames, batch)`` of the best sequence's path, from the beam before the
        first frame and every frame's steps ``(frames, 2, batch, width)``."""

        def follow(slot, step):
            parent = ops.take_along_axis(step[0], slot[:, None], axis=1)[:, 0]
            return parent, ops.take_along_axis(step[1], slot[:, None], axis=1)[:, 0]

        best = ops.cast(ops.argmax(beam[0], axis=1), "int32")
        return scan(follow, best, steps)[1]


STAYS = tuple(-i / 8 for i in range(9))  # the stay scores calibration tries, from the blank's


@register
class CRFHead(Head):
    """A CRF head over states of the last ``state_len`` bases: 4 ** (state_len + 1) scores a
    frame, moves scored ``scale * tanh(score)`` (or ``scale * score`` without ``tanh``),
    staying ``blank``, moves within ``+-clamp`` where given (nanoseq's own heads: 3, 5, tanh,
    2, none; ONT's: as their config says).
    ``stay`` is the stay score decoding's best path takes (calibrated after training; default
    ``blank``); the posteriors and the beam keep ``blank``."""

    kind = "crf"

    def __init__(
        self,
        stay: float | None = None,
        state_len: int = STATE_LEN,
        scale: float = SCALE,
        tanh: bool = True,
        blank: float = STAY,
        clamp: float | None = None,
        name="crf",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.state_len, self.scale, self.tanh = int(state_len), float(scale), bool(tanh)
        self.blank = float(blank)
        self.clamp = None if clamp is None else float(clamp)
        self.stay = self.blank if stay is None else float(stay)
        self.classes = N_BASE ** (self.state_len + 1)
        self.skip = self.state_len

    def call(self, labels, scores):
        """Negative log-likelihood per chunk: log Z - log score(labels)."""
        moves = self.moves(scores)
        return log_partition(moves, self.blank) - log_label_score(
            moves, labels, self.state_len, self.blank
        )

    def frames(self, scores, beam_width: int = 1, stay=None) -> tuple:
        """The called path (best, or a beam search's) and the move posteriors; the best path
        with staying scored ``stay`` where given (a tensor: one compiled program for every
        value), else :attr:`stay`."""
        stay = self.stay if stay is None else stay
        return path_and_posteriors(self.moves(scores), stay, beam_width, self.blank)

    def moves(self, scores):
        """The move scores of the model's output ``scores``."""
        return move_scores(ops.cast(scores, "float32"), self.scale, self.tanh, self.clamp)

    def called(self, frames: tuple, beam_width: int = 1) -> Decoded:
        """A base at each move of the path. Its quality is the posterior of a move emitting
        that base near it: from halfway to the previous move to halfway to the next."""
        codes, posteriors = frames
        at = np.flatnonzero(codes)
        labels = np.asarray(codes, dtype=np.int64)[at]
        edges = np.concatenate([[0], (at[1:] + at[:-1] + 1) // 2, [len(codes)]])
        mass = np.concatenate(
            [np.zeros((1, N_BASE)), np.cumsum(posteriors, axis=0, dtype=np.float64)]
        )
        p = np.minimum(mass[edges[1:], labels - 1] - mass[edges[:-1], labels - 1], 1.0)
        return decoded(len(codes), at, labels, p)

    def feasible(self, references, lengths, frames):
        """The labels fill its first state, and one frame a move for the rest."""
        return (lengths >= self.state_len) & (lengths - self.state_len <= frames)

    def calibrated(self, scores, truths, batch_size):
        """This head with the stay score (the blank's plus one of :data:`STAYS`) under which the
        best paths of ``scores`` call ``truths`` best (median accuracy; of equals, the least
        change)."""
        best, found = best_setting(
            [self.blank + offset for offset in STAYS],
            lambda stay: self.decode_scores(
                scores, batch_size=batch_size, options=(np.float32(stay),)
            ),
            truths,
        )
        log.info(
            "CRF decoding stay score %.3g (validation accuracy %.4f; %.4f at the trained %.3g)",
            best,
            found[best],
            found[self.blank],
            self.blank,
        )
        return self.with_stay(best)

    def with_stay(self, stay: float) -> CRFHead:
        return self.copy(stay=stay)

    def get_config(self):
        return {
            **super().get_config(),
            "stay": self.stay,
            "state_len": self.state_len,
            "scale": self.scale,
            "tanh": self.tanh,
            "blank": self.blank,
            "clamp": self.clamp,
        }
