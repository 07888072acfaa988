"""Decoding on a known Markov chain: greedy, sampling limits, beam search."""

import numpy as np

from nanoseq.text.generate import (
    beam_search,
    beam_search_batch,
    filter_logits,
    greedy,
    greedy_batch,
    sample,
)

EOS = 0


def chain(matrix):
    """A step function over a first-order Markov chain (state = nothing)."""
    logp = np.log(np.asarray(matrix, dtype=np.float64) + 1e-12)

    def step(tokens, states):
        return logp[tokens], states

    return step, logp


# token 1 leads to 2 (0.6) or 3 (0.4); 2 spreads over many tokens, 3 goes to EOS surely.
TRAP = np.array(
    [
        [1, 0, 0, 0, 0, 0],
        [0, 0, 0.6, 0.4, 0, 0],
        [0.25, 0, 0, 0, 0.375, 0.375],
        [1.0, 0, 0, 0, 0, 0],
        [1.0, 0, 0, 0, 0, 0],
        [1.0, 0, 0, 0, 0, 0],
    ]
)


def test_greedy_follows_the_best_next_token():
    step, logp = chain(TRAP)
    assert greedy(step, [], logp[1], 10, eos_id=EOS) == [2, 4, 0]


def test_beam_finds_the_likelier_sequence():
    step, logp = chain(TRAP)
    # P(2,4,eos) = 0.6*0.375 = 0.225 < P(3,eos) = 0.4: greedy misses it, beam does not
    assert beam_search(step, [], logp[1], 10, width=3, eos_id=EOS) == [3, 0]


def test_beam_width_one_and_cold_sampling_are_greedy():
    rng = np.random.default_rng(0)
    matrix = rng.dirichlet(np.ones(12) * 0.3, size=12)
    step, logp = chain(matrix)
    expected = greedy(step, [], logp[5], 30, eos_id=EOS)
    assert beam_search(step, [], logp[5], 30, width=1, eos_id=EOS) == expected
    assert sample(step, [], logp[5], 30, temperature=1e-6, seed=1, eos_id=EOS) == expected
    assert sample(step, [], logp[5], 30, top_k=1, seed=2, eos_id=EOS) == expected
    assert sample(step, [], logp[5], 30, top_p=1e-9, seed=3, eos_id=EOS) == expected


def test_beam_width_one_passes_by_an_ending_greedy_passes_by():
    # P(2, eos) = 0.18 beats greedy's P(2, 4, 5, eos) = 0.12, but EOS is never the best token
    matrix = np.array(
        [
            [1, 0, 0, 0, 0, 0],
            [0, 0, 0.6, 0.4, 0, 0],
            [0.3, 0, 0, 0, 0.5, 0.2],
            [1.0, 0, 0, 0, 0, 0],
            [0.3, 0, 0, 0.3, 0, 0.4],
            [1.0, 0, 0, 0, 0, 0],
        ]
    )
    step, logp = chain(matrix)
    assert greedy(step, [], logp[1], 10, eos_id=EOS) == [2, 4, 5, 0]
    assert beam_search(step, [], logp[1], 10, width=1, eos_id=EOS) == [2, 4, 5, 0]
    assert beam_search(step, [], logp[1], 10, width=2, eos_id=EOS) == [3, 0]  # P = 0.4


def test_sampling_is_seeded_and_follows_the_distribution():
    step, logp = chain(np.full((4, 4), 0.25))
    a = sample(step, [], logp[1], 200, seed=7)
    assert a == sample(step, [], logp[1], 200, seed=7)
    counts = np.bincount(a, minlength=4) / 200
    assert np.all(np.abs(counts - 0.25) < 0.1)


def test_filters():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    assert np.isinf(filter_logits(logits, 1.0, top_k=2)[2:]).all()
    kept = np.exp(filter_logits(logits, 1.0, top_p=0.7))
    assert kept[2] == 0 and kept[:2].sum() == 1.0 or abs(kept[:2].sum() - 1) < 1e-9
    hot = np.exp(filter_logits(logits, 10.0))
    assert hot.max() - hot.min() < 0.1


def test_batch_greedy_equals_greedy_row_by_row():
    rng = np.random.default_rng(1)
    step, logp = chain(rng.dirichlet(np.ones(12) * 0.3, size=12))
    starts = [5, 7, 9, 11]
    rows = greedy_batch(step, [], logp[starts], 30, eos_id=EOS)
    assert rows == [greedy(step, [], logp[s], 30, eos_id=EOS) for s in starts]
    assert len({len(r) for r in rows}) > 1  # rows stop at their own <eos>


def test_batch_beam_search_equals_beam_search_row_by_row():
    rng = np.random.default_rng(2)
    logp = np.log(rng.dirichlet(np.ones(12) * 0.3, size=12))

    def step(tokens, states):  # the state is a hash of the history: beams must carry theirs
        (history,) = states
        history = (history * 7 + tokens) % 12
        return logp[history], [history]

    starts, limits = np.array([1, 5, 7, 9, 11]), [30, 30, 4, 30, 2]
    for penalty in (0.0, 1.0):
        rows = beam_search_batch(step, [starts], logp[starts], limits, 3, penalty, EOS)
        singly = [
            beam_search(step, [starts[i : i + 1]], logp[s], n, 3, penalty, EOS)
            for i, (s, n) in enumerate(zip(starts, limits, strict=True))
        ]
        assert rows == singly
        assert len(rows[4]) <= 2 and len({len(r) for r in rows}) > 2  # rows end on their own
