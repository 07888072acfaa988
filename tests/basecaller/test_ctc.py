"""The CTC head: its loss, greedy and beam decoding, qualities and move tables."""

import keras
import numpy as np
import pytest

from nanoseq.basecaller.ctc import CTCHead, beam_search, greedy
from nanoseq.probability import log_softmax


def logits_for(path, strength=6.0):
    """Frame logits that make ``path`` (label per frame, 0 = blank) the most likely one."""
    out = np.zeros((len(path), 5), dtype=np.float32)
    out[np.arange(len(path)), path] = strength
    return out


def test_loss_prefers_the_right_labels():
    labels = np.array([[1, 2, 3, 0], [4, 4, 0, 0]], dtype="int32")
    frames = np.full((2, 12, 5), -4.0, dtype="float32")
    path = [[1, 1, 0, 2, 2, 0, 3, 3, 0, 0, 0, 0], [4, 4, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]]
    for row, seq in enumerate(path):
        frames[row, np.arange(12), seq] = 4.0
    head = CTCHead()
    good = keras.ops.convert_to_numpy(head.call(labels, frames))
    wrong = keras.ops.convert_to_numpy(head.call(labels[::-1], frames))
    assert good.shape == (2,) and (good < 1.0).all() and (wrong > 10.0).all()
    assert float(head(labels, frames)) == np.float32(good.mean())  # Keras's loss: the mean


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


def test_a_base_is_as_sure_as_its_label_over_its_frames():
    """Its quality is its label's highest posterior from its frame to the next base's."""
    probs = np.array(
        [[0.1, 0.9, 0, 0, 0], [0.5, 0.2, 0, 0.3, 0], [0.3, 0, 0.7, 0, 0], [0.4, 0, 0.6, 0, 0]]
    )
    for decode in (greedy, beam_search):
        sequence, qualities, moves = decode(np.log(probs.astype(np.float32) + 1e-9))
        assert sequence == "AC" and moves.tolist() == [1, 0, 1, 0]
        assert qualities.tolist() == [10, 5]  # 0.9 and 0.7: -10 log10(0.1), -10 log10(0.3)


def test_width_one_is_greedy_and_beam_agrees_on_clear_input():
    rng = np.random.default_rng(0)
    path = rng.integers(0, 5, size=300)
    logits = logits_for(path) + rng.normal(0, 0.3, size=(300, 5)).astype(np.float32)
    head = CTCHead()
    seq, q, mv = greedy(logits)
    seq1, q1, mv1 = head.decode((logits,), 1)
    assert seq1 == seq and np.array_equal(q1, q) and np.array_equal(mv1, mv)
    seq5, q5, mv5 = head.decode((logits,), 5)
    assert seq5 == seq and mv5.sum() == len(seq5) and len(q5) == len(seq5)
    assert head.compiled_width(5) == 1  # the beam runs on the host: one compiled program


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


def chunks_at(raw_q, rng, missed: int = 0, wrong=None) -> tuple[np.ndarray, str]:
    """A chunk's CTC scores, its 100 bases at posterior quality ``raw_q`` (one or a base each)
    and each wrong with probability ``wrong`` (by default 10 ** (-2 raw_q / 10): right at twice
    ``raw_q``), and its truth, which also holds ``missed`` bases the call lacks."""
    raw_q = np.broadcast_to(np.asarray(raw_q, dtype=np.float64), (100,))
    wrong = 10 ** (-2 * raw_q / 10) if wrong is None else wrong
    p = np.repeat(1 - 10 ** (-raw_q / 10), 2)[:, None]  # a base's frame and the blank after it
    bases = rng.integers(1, 5, 100)
    path = np.zeros(200, np.int64)
    path[::2] = bases  # a blank between bases
    logits = np.repeat(np.log((1 - p) / 4), 5, axis=1).astype(np.float32)
    logits[np.arange(200), path] = np.log(p[:, 0])
    logits[1::2, 0] = 10.0  # blanks sure
    truth = bases.copy()
    flips = rng.random(100) < wrong
    truth[flips] = truth[flips] % 4 + 1
    for _ in range(missed):
        truth = np.insert(truth, rng.integers(1, len(truth)), rng.integers(1, 5))
    return logits, "".join("NACGT"[c] for c in truth)


def test_qualities_are_fitted_to_the_errors_they_predict():
    """Chunks whose bases have a posterior quality of 5 are wrong one time in 10 (Q10), those at
    10 one time in 100 (Q20): the fitted table reports them so."""
    from nanoseq.metrics import aligned

    # the bases the table counts as wrong: mismatched or inserted
    assert (~aligned("ACGTT", "ACCTT").read_ok).tolist() == [False, False, True, False, False]
    assert (~aligned("ACGGT", "ACGT").read_ok).sum() == 1  # one inserted base
    rng = np.random.default_rng(0)
    scores, truths = zip(
        *(chunks_at(5 if chunk % 2 else 10, rng) for chunk in range(400)), strict=True
    )
    head = CTCHead().with_fitted_qualities(np.stack(scores), truths)
    table = head.qscore_table
    assert len(table) == 51 and table == sorted(table)  # monotone
    assert 8 <= table[5] <= 12 and 17 <= table[10] <= 23
    assert CTCHead.from_config(head.get_config()).qscore_table == table
    _, qualities, _ = head.decode((scores[0],), 1)  # a chunk at raw Q10: reported about Q20
    assert len(set(qualities.tolist())) == 1 and 17 <= qualities[0] <= 23


def test_a_base_in_a_clean_stretch_is_reported_above_one_in_a_noisy_stretch():
    """Bases of posterior Q10 between bases of Q30 are wrong one time in 100, between bases of
    Q3 one time in 10 (the neighbours as often as their posteriors say): the posterior alone
    (and so the table) cannot tell them apart; the context's regression reports them about Q20
    and Q10."""
    rng = np.random.default_rng(3)
    scores, truths = [], []
    for chunk in range(400):
        clean = chunk % 2 == 0
        neighbour = 30 if clean else 3
        raw_q = np.where(np.arange(100) % 2, neighbour, 10)
        wrong = np.where(np.arange(100) % 2, 10 ** (-neighbour / 10), 0.01 if clean else 0.1)
        logits, truth = chunks_at(raw_q, rng, wrong=wrong)
        scores.append(logits)
        truths.append(truth)
    head = CTCHead().with_fitted_qualities(np.stack(scores), truths)
    assert head.qscore_context is not None
    assert CTCHead.from_config(head.get_config()).qscore_context == head.qscore_context
    clean_q = head.decode((scores[0],), 1)[1][::2]
    noisy_q = head.decode((scores[1],), 1)[1][::2]
    table_q = head.qscore_table[10]
    assert 8 <= np.median(noisy_q) <= 12 < 17 <= np.median(clean_q) <= 23
    assert 11 <= table_q <= 15  # the table alone: the two stretches' errors pooled


def test_the_best_path_reports_its_bases_through_its_own_fit():
    """A beam calls uncertain bases the best path skips, so each is fitted apart; a head whose
    best path has no fit of its own (an imported one) reports both through the beam's."""
    logits, _ = chunks_at(10, np.random.default_rng(4))
    head = CTCHead(qscore_table=[30] * 51, best_path_qscores={"table": [12] * 51, "context": None})
    assert set(head.decode((logits,), 1).qualities.tolist()) == {12}
    assert set(head.decode((logits,), 5).qualities.tolist()) == {30}
    assert CTCHead.from_config(head.get_config()).best_path_qscores == head.best_path_qscores
    assert set(head.copy(best_path_qscores=None).decode((logits,), 1).qualities.tolist()) == {30}


def test_a_read_counts_the_bases_it_misses_in_its_mean_qscore():
    """Calls that lack one base in a hundred besides a wrong one (about Q17 in identity, where
    their qualities say Q20): the fitted read error scale doubles their errors, and a read's
    mean qscore then meets its identity."""
    from nanoseq.io import Call
    from nanoseq.metrics import aligned, phred

    assert aligned("ACGT", "ACGGT").identity == pytest.approx(0.8)  # 4 matches, 5 columns
    assert aligned("", "ACG").identity == 0.0 and aligned("AC", "").identity == 0.0
    rng = np.random.default_rng(1)
    scores, truths = zip(*(chunks_at(10, rng, missed=1) for _ in range(300)), strict=True)
    head = CTCHead().with_fitted_qualities(np.stack(scores), truths)
    assert 1.6 < head.read_error_scale < 2.5
    assert CTCHead.from_config(head.get_config()).read_error_scale == head.read_error_scale
    gaps = []
    for logits, truth in zip(scores, truths, strict=True):
        sequence, qualities, _ = head.decode((logits,), 1)
        call = Call(sequence, qualities, error_scale=head.read_error_scale)
        gaps.append(call.mean_qscore - phred(1 - aligned(sequence, truth).identity))
    assert abs(np.median(gaps)) < 0.1
    assert CTCHead().read_error_scale == 1.0  # an unfitted head: the bases' errors alone


def test_the_blank_penalty_is_chosen_on_validation_chunks():
    """Bases whose frames give the blank 0.52 (so the best path drops them) among frames of a
    spurious base at 0.3: penalties 0.5 and 0.75 call the truth with either search, 1.0 also
    the spurious bases, so calibration takes 0.5; the penalty is saved with the head. (No base
    repeats its neighbour: the beam rightly merges uncertain homopolymers.)"""
    rng = np.random.default_rng(2)
    scores, truths = [], []
    for _ in range(20):
        bases = np.cumsum(rng.integers(1, 4, 31)) % 4 + 1  # neighbours differ
        spurious = [min({1, 2, 3, 4} - {a, b}) for a, b in zip(bases[:-1], bases[1:], strict=True)]
        bases = bases[:-1]
        probs = np.full((120, 5), 1e-6, np.float32)
        probs[1::2, 0] = 1.0  # sure blanks between
        at = np.arange(0, 120, 4)
        probs[at, 0], probs[at, bases] = 0.52, 0.48  # the truth's bases
        probs[at + 2, 0], probs[at + 2, spurious] = 0.7, 0.3  # spurious ones
        scores.append(np.log(probs))
        truths.append("".join("NACGT"[c] for c in bases))
    scores = np.stack(scores)
    head = CTCHead()
    assert head.decode((scores[0],), 1)[0] == ""
    calibrated = head.calibrated(scores, truths, batch_size=8)
    assert calibrated.blank_penalty == 0.5
    for width in (1, 5):
        assert calibrated.decode((scores[0],), width)[0] == truths[0]
    assert len(head.copy(blank_penalty=1.0).decode((scores[0],), 1)[0]) == 60
    assert CTCHead.from_config(calibrated.get_config()).blank_penalty == 0.5
