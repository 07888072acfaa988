"""The CRF head against brute force: its partition function, label score, best path and
posteriors equal sums and maxima over every path of a few frames; decoding its output; real
training steps and the calibration of its decoding."""

import itertools

import keras
import numpy as np
import pytest
from scipy.special import logsumexp

from nanoseq.basecaller import crf
from nanoseq.basecaller.crf import STAYS, CRFHead
from nanoseq.basecaller.model import Basecaller
from nanoseq.basecaller.train import train_basecaller
from nanoseq.io import read_fasta
from nanoseq.signal.labels import make_chunks
from nanoseq.signal.simulate import labelled, load_pore_model, simulate_reads
from nanoseq.training import TrainingRun

FRAMES = 3
TINY = dict(
    filters=(4, 16, 48), kernels=(5, 5, 19), strides=(1, 1, 6), units=48, layers=1, upsample=2
)


HEADS = {  # nanoseq's own, and ONT-like heads of longer states (no tanh, another blank, clamped)
    3: CRFHead(),
    4: CRFHead(state_len=4, scale=1.0, tanh=False, blank=1.0, clamp=0.8),
    5: CRFHead(state_len=5, scale=2.0, tanh=True, blank=0.5),
}


@pytest.fixture(scope="module", params=sorted(HEADS))
def paths(request):
    """A head, random outputs of two rows, their move scores and every path through their
    frames: (row, start state, actions (0 stay, b a move emitting base b), score)."""
    head = HEADS[request.param]
    states = 4**head.state_len
    scores = np.random.default_rng(0).normal(size=(2, FRAMES, head.classes)).astype("float32")
    moves = keras.ops.convert_to_numpy(head.moves(scores))
    found = []
    for row in range(2):
        for start in range(states):
            for actions in itertools.product(range(5), repeat=FRAMES):
                state, score = start, 0.0
                for t, action in enumerate(actions):
                    if action == 0:
                        score += head.blank
                    else:  # the oldest base leaves, the emitted one enters
                        new = (state * 4 + action - 1) % states
                        score += moves[row, t, new, state // (states // 4)]
                        state = new
                found.append((row, start, actions, score))
    return head, scores, moves, found


def test_partition_and_label_score_sum_every_path(paths):
    head, scores, moves, found = paths
    # labels A G G C T T T: the path starts in the state of the first state_len labels and
    # must emit the rest; the second row's labels T T T T T T
    labels = np.array([[1, 3, 3, 2, 4, 4, 4], [4, 4, 4, 4, 4, 4, 0]])[:, : head.state_len + 2]
    for row in range(2):
        codes = [c - 1 for c in labels[row] if c]
        start = int("".join(map(str, codes[: head.state_len])), 4)
        emitted = tuple(c + 1 for c in codes[head.state_len :])
        every = [s for r, _, _, s in found if r == row]
        target = [
            s
            for r, first, actions, s in found
            if r == row and first == start and tuple(a for a in actions if a) == emitted
        ]
        log_z = keras.ops.convert_to_numpy(crf.log_partition(moves, head.blank))[row]
        label = crf.log_label_score(moves, labels, head.state_len, head.blank)
        label = keras.ops.convert_to_numpy(label)[row]
        assert log_z == pytest.approx(logsumexp(every), abs=1e-4)
        assert label == pytest.approx(logsumexp(target), abs=1e-4)
        loss = keras.ops.convert_to_numpy(head.call(labels, scores))[row]
        assert loss == pytest.approx(log_z - label, abs=1e-4) and loss > 0


def test_best_path_and_posteriors_are_those_of_every_path(paths):
    head, scores, _, found = paths
    path, posteriors = (keras.ops.convert_to_numpy(a) for a in head.frames(scores))
    assert path.shape == (2, FRAMES) and posteriors.shape == (2, FRAMES, 4)
    for row in range(2):
        mine = [(s, actions) for r, _, actions, s in found if r == row]
        assert tuple(path[row].astype(int)) == max(mine)[1]
        log_z = logsumexp([s for s, _ in mine])
        expected = np.zeros((FRAMES, 4))
        for score, actions in mine:
            for t, action in enumerate(actions):
                if action:
                    expected[t, action - 1] += np.exp(score - log_z)
        np.testing.assert_allclose(posteriors[row], expected, atol=1e-5)


def test_beam_search_finds_the_most_probable_sequence():
    """Against every path of four frames: with weak moves (staying competes), the sequence whose
    paths sum highest, of those ending where the best path ends, is not always the best path's;
    a beam wide enough to hold every sequence finds it, and calls its likeliest path."""
    frames, rows = 4, 4
    head = np.random.default_rng(2).normal(size=(rows, frames, 256)) * 0.3 + 0.3
    moves = keras.ops.convert_to_numpy(crf.move_scores(head.astype("float32")))
    viterbi = keras.ops.convert_to_numpy(crf.path_and_posteriors(moves)[0])
    called = keras.ops.convert_to_numpy(crf.path_and_posteriors(moves, width=400)[0])
    differ = 0
    for row in range(rows):
        paths = []  # score, actions, end state, bases (the start state's three, then each move's)
        for start in range(64):
            for actions in itertools.product(range(5), repeat=frames):
                state, score, bases = start, 0.0, [start // 16, start // 4 % 4, start % 4]
                for t, action in enumerate(actions):
                    if action == 0:
                        score += crf.STAY
                    else:
                        new = (state * 4 + action - 1) % 64
                        score, state = score + moves[row, t, new, state // 16], new
                        bases.append(action)
                paths.append((score, actions, state, tuple(bases)))
        best = max(paths)
        assert tuple(viterbi[row]) == best[1]
        sequences: dict = {}
        for score, actions, end, bases in paths:
            if end == best[2]:
                sequences.setdefault(bases, []).append((score, actions))
        likeliest = max(sequences.values(), key=lambda p: logsumexp([s for s, _ in p]))
        assert tuple(called[row]) == max(likeliest)[1]
        differ += max(likeliest)[1] != best[1]
    assert differ > 0  # (2 of the 4 rows here)


def test_a_lower_stay_score_moves_more():
    head = np.random.default_rng(1).normal(size=(4, 200, 256)).astype("float32")
    count = [
        (keras.ops.convert_to_numpy(CRFHead(stay).frames(head)[0]) > 0).sum() for stay in (2.0, 1.0)
    ]
    assert count[1] > count[0]


def test_decoding_the_path_emits_a_base_at_each_move():
    codes = np.array([0, 1, 0, 3, 3, 0, 0, 4], dtype=np.int8)  # A, then G G (no blank), then T
    posteriors = np.zeros((8, 4), dtype=np.float32)
    posteriors[1, 0] = 0.999  # A sure where it is
    posteriors[3, 2] = posteriors[4, 2] = 0.5  # the two Gs: half sure each of its own frame
    posteriors[6, 3], posteriors[7, 3] = 0.45, 0.45  # T: its timing uncertain, sure it is there
    sequence, qualities, moves = CRFHead().decode((codes, posteriors))
    assert sequence == "AGGT"
    assert moves.tolist() == [0, 1, 0, 1, 1, 0, 0, 1]
    assert qualities[0] == 30 and qualities[1] == qualities[2] == 3
    assert qualities[3] == 10  # 0.9 gathered from the frames nearer it than its neighbours
    assert CRFHead().decode((codes, posteriors), 5)[0] == sequence  # the beam ran in the graph
    assert CRFHead().decode((np.zeros(4, np.int8), np.zeros((4, 4))))[0] == ""
    assert CRFHead().truth(np.array([1, 2, 3, 4, 4, 0])) == "TT"  # the first state is not called


@pytest.mark.slow
def test_crf_head_trains_and_its_decoding_is_calibrated(sample_dir, tmp_path):
    lam = read_fasta(sample_dir / "reads/lambda.fasta")
    reads = simulate_reads(lam, load_pore_model(), 10, 1500, seed=5, region=(0, 30_000))
    data = make_chunks((labelled(r) for r in reads), size=1200, step=600)
    model, history = train_basecaller(
        data, TrainingRun(tmp_path, epochs=4), head="crf", batch_size=16, learning_rate=5e-3, **TINY
    )
    losses, valid = history.history["loss"], history.history["val_loss"]
    assert isinstance(model.head, CRFHead)
    # from scratch a CRF learns slowly at first: about 12 % off the loss in these few steps
    assert all(np.diff(losses) < 0) and losses[-1] < 0.93 * losses[0] and valid[-1] < valid[0]
    saved = Basecaller.from_preset(str(tmp_path / "model.keras"))
    assert isinstance(saved.head, CRFHead) and saved.head.stay - saved.head.blank in STAYS
