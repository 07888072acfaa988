"""Greedy and beam decoding, qualities and move tables."""

import numpy as np

from nanoseq.basecaller.decode import beam_search, greedy
from nanoseq.probability import log_softmax


def logits_for(path, strength=6.0, frames_of=None):
    """Frame logits that make ``path`` (label per frame, 0 = blank) the most likely one."""
    out = np.zeros((len(path), 5), dtype=np.float32)
    out[np.arange(len(path)), path] = strength
    return out


def test_greedy_merges_repeats_and_drops_blanks():
    sequence, qualities, moves = greedy(logits_for([1, 1, 0, 1, 2, 2, 0, 0, 4]))
    assert sequence == "AACT"
    assert moves.tolist() == [1, 0, 0, 1, 1, 0, 0, 0, 1]
    assert qualities.dtype == np.uint8 and len(qualities) == 4


def test_qualities_follow_the_posterior():
    confident = logits_for([1, 0, 2], strength=9.0)
    unsure = logits_for([1, 0, 2], strength=1.5)
    assert greedy(confident)[1].min() > greedy(unsure)[1].max()
    assert greedy(confident)[1].max() <= 50 and greedy(unsure)[1].min() >= 1


def test_beam_width_one_is_greedy_and_beam_agrees_on_clear_input():
    rng = np.random.default_rng(0)
    path = rng.integers(0, 5, size=300)
    logits = logits_for(path) + rng.normal(0, 0.3, size=(300, 5)).astype(np.float32)
    seq, q, mv = greedy(logits)
    seq1, q1, mv1 = beam_search(logits, width=1)
    assert seq1 == seq and np.array_equal(q1, q) and np.array_equal(mv1, mv)
    seq5, q5, mv5 = beam_search(logits, width=5)
    assert seq5 == seq and mv5.sum() == len(seq5) and len(q5) == len(seq5)


def test_beam_finds_the_likelier_labelling_than_the_best_path():
    # two frames, blank 0.6 / A 0.4 each: best path is blank-blank (""), but P("A") = 0.64
    probs = np.array([[0.6, 0.4, 0, 0, 0], [0.6, 0.4, 0, 0, 0]], dtype=np.float32) + 1e-9
    logits = np.log(probs)
    assert greedy(logits)[0] == ""
    sequence, _, moves = beam_search(logits, width=5)
    assert sequence == "A" and moves.sum() == 1


def test_log_softmax_normalises():
    x = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float32) * 10
    np.testing.assert_allclose(np.exp(log_softmax(x)).sum(axis=1), 1.0, rtol=1e-5)
