"""Distributed training for real, on CPU: two local workers under MultiWorkerMirroredStrategy
(TF_CONFIG) and two replicas of one host under MirroredStrategy train exactly as one device does,
carried language-model state included."""

import csv
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from nanoseq.models import load_model

SEQ2SEQ = """
import sys
from nanoseq.text.data import read_pairs
from nanoseq.text.seq2seq_train import train_seq2seq

sources, targets = read_pairs(pairs=sys.argv[1])
train_seq2seq(
    (sources, targets), (sources[:10], targets[:10]), sys.argv[2], lowercase=True, units=16,
    embedding_dim=8, batch_size=10, epochs=3, learning_rate=1e-2, strategy="multiworker",
)
"""

BASECALLER = """
import sys
from nanoseq.basecaller.train import train_basecaller
from nanoseq.io import read_fasta
from nanoseq.signal.labels import make_chunks
from nanoseq.signal.simulate import labelled, load_pore_model, simulate_reads

reads = simulate_reads(read_fasta(sys.argv[1]), load_pore_model(), 8, 1500, seed=5)
train_basecaller(
    make_chunks((labelled(r) for r in reads), size=1200, step=600), sys.argv[2], epochs=3,
    batch_size=8, learning_rate=5e-3, valid_fraction=0.2, strategy="multiworker",
    filters=(4, 8, 16), kernels=(5, 5, 19), strides=(1, 1, 6), units=16, layers=1,
)
"""

LANGUAGE_MODEL = """
import sys
strategy, text, output = sys.argv[1:]
if strategy == "mirrored":  # two CPU devices, one replica each
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from nanoseq.text.lm_train import train_language_model

train_language_model(
    [text], [text], output, units=16, embedding_dim=8, batch_size=4, steps=10, epochs=2,
    strategy=strategy,
)
"""

TEXT = "the quick brown fox jumps over the lazy dog. pack my box with five dozen liquor jugs. "


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start(script, *args, workers=1):
    """``script`` started in ``workers`` processes (a local TF_CONFIG cluster if more than one)."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(workers)]}
    processes = []
    for index in range(workers):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
        if workers > 1:
            task = {"type": "worker", "index": index}
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": task})
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", script, *map(str, args)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    return processes


def finish(*processes):
    """Waits for every process; each must succeed."""
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output[-3000:]


def losses(folder):
    with open(folder / "training.csv") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def same_run(a, b):
    """Both folders hold the same weights and the same training log."""
    first = load_model(a / "checkpoint.keras").get_weights()
    second = load_model(b / "checkpoint.keras").get_weights()
    assert len(first) == len(second) > 5
    assert all(np.array_equal(x, y) for x, y in zip(first, second, strict=True))
    assert (a / "training.csv").read_text() == (b / "training.csv").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, data",
    [(SEQ2SEQ, "text/multi30k_de_en.tsv"), (BASECALLER, "reads/lambda.fasta")],
    ids=["seq2seq", "basecaller"],
)
def test_two_workers_end_with_the_same_weights_and_a_lower_loss(tmp_path, sample_dir, script, data):
    finish(*start(script, sample_dir / data, tmp_path / "run", workers=2))
    same_run(tmp_path / "run", tmp_path / "run" / "worker-1")
    trained = losses(tmp_path / "run")
    assert len(trained) == 3 and trained[-1] < trained[0]


@pytest.mark.slow
def test_language_model_trains_alike_on_one_device_two_replicas_and_two_workers(tmp_path):
    """Each replica carries the state of its own rows of the global batch, and the replicas'
    gradients add up to the whole batch's: the weights match a one-device run."""
    text = tmp_path / "text.txt"
    text.write_text(TEXT * 30)
    finish(  # independent runs, started together
        *start(LANGUAGE_MODEL, "default", text, tmp_path / "one"),
        *start(LANGUAGE_MODEL, "mirrored", text, tmp_path / "mirrored"),
        *start(LANGUAGE_MODEL, "multiworker", text, tmp_path / "workers", workers=2),
    )
    same_run(tmp_path / "workers", tmp_path / "workers" / "worker-1")
    reference = load_model(tmp_path / "one" / "model.keras").get_weights()
    for folder in ("mirrored", "workers"):
        weights = load_model(tmp_path / folder / "model.keras").get_weights()
        assert len(weights) == len(reference)
        for x, y in zip(weights, reference, strict=True):
            np.testing.assert_allclose(x, y, atol=1e-5)
        np.testing.assert_allclose(losses(tmp_path / folder), losses(tmp_path / "one"), rtol=1e-5)
    trained = losses(tmp_path / "one")
    assert trained[-1] < trained[0]
