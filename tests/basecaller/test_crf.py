"""The CRF head against brute force: its partition function, label score, best path and
posteriors equal sums and maxima over every path of a few frames; decoding its output; real
training steps and the calibration of its decoding."""

import itertools

import keras
import numpy as np
import pytest
from scipy.special import logsumexp

from nanoseq.basecaller import crf
from nanoseq.basecaller.decode import crf_path, decode
from nanoseq.basecaller.model import Basecaller
from nanoseq.basecaller.train import STAYS, train_basecaller
from nanoseq.io import read_fasta
from nanoseq.models import load_model
from nanoseq.signal.labels import make_chunks
from nanoseq.signal.simulate import labelled, load_pore_model, simulate_reads

FRAMES = 3
TINY = dict(
    filters=(4, 16, 48), kernels=(5, 5, 19), strides=(1, 1, 6), units=48, layers=1, upsample=2
)


@pytest.fixture(scope="module")
def paths():
    """Random head outputs of two rows and every path through their frames: (row, start
    state, actions (0 stay, b a move emitting base b), score)."""
    head = np.random.default_rng(0).normal(size=(2, FRAMES, crf.SCORES)).astype("float32")
    moves = keras.ops.convert_to_numpy(crf.move_scores(head))
    found = []
    for row in range(2):
        for start in range(crf.N_STATES):
            for actions in itertools.product(range(5), repeat=FRAMES):
                state, score = start, 0.0
                for t, action in enumerate(actions):
                    if action == 0:
                        score += crf.STAY
                    else:  # the oldest base leaves, the emitted one enters
                        new = (state * 4 + action - 1) % crf.N_STATES
                        score += moves[row, t, new, state // 16]
                        state = new
                found.append((row, start, actions, score))
    return head, moves, found


def test_partition_and_label_score_sum_every_path(paths):
    head, moves, found = paths
    # labels A G G C T: the path starts in AGG (0, 2, 2) and must move to GGC, then GCT
    labels = np.array([[1, 3, 3, 2, 4, 0], [4, 4, 4, 4, 0, 0]])
    starts = [0 * 16 + 2 * 4 + 2, 63]
    emitted = [(2, 4), (4,)]
    for row in range(2):
        scores = [s for r, _, _, s in found if r == row]
        target = [
            s
            for r, start, actions, s in found
            if r == row and start == starts[row] and tuple(a for a in actions if a) == emitted[row]
        ]
        log_z = keras.ops.convert_to_numpy(crf.log_partition(moves))[row]
        label = keras.ops.convert_to_numpy(crf.log_label_score(moves, labels))[row]
        assert log_z == pytest.approx(logsumexp(scores), abs=1e-4)
        assert label == pytest.approx(logsumexp(target), abs=1e-4)
        loss = keras.ops.convert_to_numpy(crf.crf_loss(labels, head))[row]
        assert loss == pytest.approx(log_z - label, abs=1e-4) and loss > 0


def test_best_path_and_posteriors_are_those_of_every_path(paths):
    head, _, found = paths
    out = keras.ops.convert_to_numpy(crf.path_and_posteriors(head))
    assert out.shape == (2, FRAMES, 5)
    for row in range(2):
        mine = [(s, actions) for r, _, actions, s in found if r == row]
        assert tuple(out[row, :, 0].astype(int)) == max(mine)[1]
        log_z = logsumexp([s for s, _ in mine])
        expected = np.zeros((FRAMES, 4))
        for score, actions in mine:
            for t, action in enumerate(actions):
                if action:
                    expected[t, action - 1] += np.exp(score - log_z)
        np.testing.assert_allclose(out[row, :, 1:], expected, atol=1e-5)


def test_beam_search_finds_the_most_probable_sequence():
    """Against every path of four frames: with weak moves (staying competes), the sequence whose
    paths sum highest, of those ending where the best path ends, is not always the best path's;
    a beam wide enough to hold every sequence finds it, and calls its likeliest path."""
    frames, rows = 4, 4
    head = np.random.default_rng(2).normal(size=(rows, frames, crf.SCORES)) * 0.3 + 0.3
    moves = keras.ops.convert_to_numpy(crf.move_scores(head.astype("float32")))
    viterbi = keras.ops.convert_to_numpy(crf.path_and_posteriors(head))[..., 0]
    called = keras.ops.convert_to_numpy(crf.path_and_posteriors(head, width=400))[..., 0]
    differ = 0
    for row in range(rows):
        paths = []  # score, actions, end state, bases (the start state's three, then each move's)
        for start in range(crf.N_STATES):
            for actions in itertools.product(range(5), repeat=frames):
                state, score, bases = start, 0.0, [start // 16, start // 4 % 4, start % 4]
                for t, action in enumerate(actions):
                    if action == 0:
                        score += crf.STAY
                    else:
                        new = (state * 4 + action - 1) % crf.N_STATES
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
    head = np.random.default_rng(1).normal(size=(4, 200, crf.SCORES)).astype("float32")
    count = [
        (keras.ops.convert_to_numpy(crf.path_and_posteriors(head, stay))[..., 0] > 0).sum()
        for stay in (2.0, 1.0)
    ]
    assert count[1] > count[0]


def test_decoding_the_path_emits_a_base_at_each_move():
    frames = np.zeros((8, 5), dtype=np.float32)
    frames[:, 0] = [0, 1, 0, 3, 3, 0, 0, 4]  # A, then G G (no blank needed), then T
    frames[1, 1] = 0.999  # A sure where it is
    frames[3, 3] = frames[4, 3] = 0.5  # the two Gs: half sure each of its own frame
    frames[6, 4], frames[7, 4] = 0.45, 0.45  # T: its timing uncertain, sure it is there
    sequence, qualities, moves = crf_path(frames)
    assert sequence == "AGGT"
    assert moves.tolist() == [0, 1, 0, 1, 1, 0, 0, 1]
    assert qualities[0] == 30 and qualities[1] == qualities[2] == 3
    assert qualities[3] == 10  # 0.9 gathered from the frames nearer it than its neighbours
    assert decode(frames, 5, "crf")[0] == sequence  # a CRF's beam search ran in the graph
    assert crf_path(np.zeros((4, 5)))[0] == ""


def test_crf_model_round_trip_and_new_head_on_the_same_layers(tmp_path):
    keras.utils.set_random_seed(0)
    ctc = Basecaller(filters=(4, 8), kernels=(5, 9), strides=(1, 6), units=8, layers=1)
    model = ctc.with_decoder("crf").upsampled(2)
    assert model.decoder == "crf" and model.upsample == 2 and model.stride == 3
    for name in ("conv0", "conv1", "lstm0"):
        kept = zip(
            ctc.get_layer(name).get_weights(), model.get_layer(name).get_weights(), strict=True
        )
        for a, b in kept:
            np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).normal(size=(2, 600, 1)).astype("float32")
    assert model.predict(x, verbose=0).shape == (2, 200, crf.SCORES)
    model.metadata["crf_stay"] = 1.5
    model.save(tmp_path / "crf.keras")
    loaded = keras.saving.load_model(tmp_path / "crf.keras")
    assert loaded.decoder == "crf" and loaded.metadata["crf_stay"] == 1.5
    expected = crf.path_and_posteriors(model.predict(x, verbose=0), 1.5)
    np.testing.assert_allclose(loaded.decoder_input(x), expected, atol=1e-4)
    with pytest.raises(ValueError, match="decoder"):
        Basecaller(decoder="hmm")


@pytest.mark.slow
def test_crf_head_trains_and_its_decoding_is_calibrated(sample_dir, tmp_path):
    lam = read_fasta(sample_dir / "reads/lambda.fasta")
    reads = simulate_reads(lam, load_pore_model(), 10, 1500, seed=5, region=(0, 30_000))
    data = make_chunks((labelled(r) for r in reads), size=1200, step=600)
    model, history = train_basecaller(
        data, tmp_path, decoder="crf", epochs=4, batch_size=16, learning_rate=5e-3, **TINY
    )
    losses, valid = history.history["loss"], history.history["val_loss"]
    assert model.decoder == "crf"
    # from scratch a CRF learns slowly at first: about 12 % off the loss in these few steps
    assert all(np.diff(losses) < 0) and losses[-1] < 0.93 * losses[0] and valid[-1] < valid[0]
    saved = load_model(str(tmp_path / "model.keras"))
    assert saved.decoder == "crf" and saved.metadata["crf_stay"] in STAYS
