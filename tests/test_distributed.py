"""Two local workers on CPU train one model under MultiWorkerMirroredStrategy (TF_CONFIG)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from nanoseq.models import load_model

WORKER = """
import sys
from nanoseq.text.data import read_pairs
from nanoseq.text.seq2seq_train import train_seq2seq

sources, targets = read_pairs(pairs=sys.argv[1])
train_seq2seq(
    (sources, targets), (sources[:10], targets[:10]), sys.argv[2], lowercase=True, units=16,
    embedding_dim=8, batch_size=10, epochs=3, learning_rate=1e-2, strategy="multiworker",
)
"""


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_end_with_the_same_weights_and_a_lower_loss(tmp_path, sample_dir):
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        pairs = sample_dir / "text/multi30k_de_en.tsv"
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(pairs), str(tmp_path / "run")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for worker in workers:
        output, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0, output[-3000:]
    chief, other = tmp_path / "run", tmp_path / "run" / "worker-1"
    a = load_model(chief / "checkpoint.keras").get_weights()
    b = load_model(other / "checkpoint.keras").get_weights()
    assert len(a) == len(b) > 10
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    rows = (chief / "training.csv").read_text().splitlines()
    losses = [float(row.split(",")[1]) for row in rows[1:]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert (chief / "training.csv").read_text() == (other / "training.csv").read_text()
