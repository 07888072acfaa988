"""Real training steps: a tiny model trained on simulated reads for five epochs calls unseen
simulated reads far better than chance; training resumes from its checkpoint."""

import csv

import numpy as np
import pytest

from nanoseq.basecaller.crf import CRFHead
from nanoseq.basecaller.ctc import CTCHead
from nanoseq.basecaller.pipeline import basecall
from nanoseq.basecaller.train import train_basecaller
from nanoseq.io import read_fasta
from nanoseq.metrics import chunk_accuracy
from nanoseq.signal.labels import make_chunks
from nanoseq.signal.readers import read_signal
from nanoseq.signal.simulate import labelled, load_pore_model, simulate_reads, write_reads
from nanoseq.training import TrainingRun

TINY = dict(
    filters=(4, 16, 48), kernels=(5, 5, 19), strides=(1, 1, 6), units=48, layers=1, upsample=2
)


@pytest.fixture(scope="module")
def lam(sample_dir):
    return read_fasta(sample_dir / "reads/lambda.fasta")


@pytest.fixture(scope="module")
def trained(lam, tmp_path_factory):
    pore = load_pore_model()
    reads = simulate_reads(lam, pore, 60, 1500, seed=3, region=(0, 30_000))
    data = make_chunks((labelled(r) for r in reads), size=1200, step=600)
    folder = tmp_path_factory.mktemp("tiny")
    model, history = train_basecaller(
        data,
        TrainingRun(folder, epochs=5),
        batch_size=16,
        learning_rate=2.5e-2,
        valid_fraction=0.1,
        **TINY,
    )
    return model, history, folder


@pytest.mark.slow
def test_tiny_model_calls_unseen_reads(trained, lam, tmp_path):
    model, history, folder = trained
    accuracies = history.history["val_accuracy"]
    assert accuracies[-1] > accuracies[0] + 0.1  # it learned
    # unseen reads from a region the model never saw, written and read back as pod5
    write_reads(
        simulate_reads(lam, load_pore_model(), 8, 1500, seed=11, region=(38_000, 48_502)),
        tmp_path / "test.pod5",
        tmp_path / "truth.fasta",
    )
    calls = list(basecall(read_signal([tmp_path / "test.pod5"]), model, batch_size=16))
    truth = read_fasta(tmp_path / "truth.fasta")
    called = np.median([chunk_accuracy(truth[r.read_id], c.sequence) for r, c in calls])
    # chance: random sequences of the same lengths score about 0.5 against the truth
    rng = np.random.default_rng(0)
    random = np.median(
        [
            chunk_accuracy(truth[r.read_id], "".join(rng.choice(list("ACGT"), len(c.sequence))))
            for r, c in calls
        ]
    )
    assert random < 0.55
    assert called > random + 0.15
    assert all(0.8 < len(c.sequence) / len(truth[r.read_id]) < 1.2 for r, c in calls)


@pytest.mark.slow
def test_training_resumes_from_checkpoint(trained, lam):
    _, _, folder = trained
    with open(folder / "training.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 and {"loss", "val_loss", "val_accuracy", "val_blank_share"} <= set(
        rows[0]
    )
    data = make_chunks(
        (labelled(r) for r in simulate_reads(lam, load_pore_model(), 6, 1500)), size=1200, step=600
    )
    run = TrainingRun(folder, epochs=6, resume=True)
    train_basecaller(data, run, batch_size=16, valid_fraction=0.2, **TINY)
    with open(folder / "training.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == list(range(6))


def test_feasible_counts_repeats():
    refs = np.array([[1, 1, 1, 0], [1, 2, 3, 4], [2, 2, 0, 0]])
    lengths = np.array([3, 4, 2])
    assert CTCHead().feasible(refs, lengths, frames=4).tolist() == [False, True, True]
    assert CTCHead().feasible(refs, lengths, frames=5).tolist() == [True, True, True]
    # a CRF starts in the state of three labels and moves once a frame for the rest
    assert CRFHead().feasible(refs, lengths, frames=0).tolist() == [True, False, False]
    assert CRFHead().feasible(refs, lengths, frames=1).tolist() == [True, True, False]


def test_the_chunks_settings_travel_into_the_model_and_its_calls(lam, tmp_path):
    """Chunks prepared with quantile normalisation make a model that normalises reads so; sets
    prepared differently are not mixed."""
    from nanoseq.basecaller.model import Basecaller
    from nanoseq.basecaller.pipeline import Windows, prepare
    from nanoseq.errors import InputError
    from nanoseq.signal.normalize import Normalisation, quantile
    from nanoseq.signal.simulate import as_read

    reads = list(simulate_reads(lam, load_pore_model(), 4, 1500, seed=7))
    by_quantile = make_chunks(
        (labelled(r, Normalisation("quantile")) for r in reads), size=1200, step=600
    )
    train_basecaller(by_quantile, TrainingRun(tmp_path, epochs=1), batch_size=8, **TINY)
    model = Basecaller.from_preset(str(tmp_path / "model.keras"))
    assert model.settings == by_quantile.settings
    assert model.metadata["normalisation"] == {"method": "quantile"}
    assert model.metadata["chunk_size"] == 1200 and model.metadata["sample_rate"] == 4000
    read = as_read(reads[0], 1, 0)
    item = prepare(read, model, Windows.of(model), trim=False)
    assert (item.shift, item.scale) == pytest.approx(quantile(read.pa))
    by_median = make_chunks((labelled(r) for r in reads), size=1200, step=600)
    with pytest.raises(InputError, match="prepared differently: normalisation"):
        train_basecaller([by_quantile, by_median], TrainingRun(tmp_path / "mixed"), **TINY)
