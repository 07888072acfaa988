"""The JAX path (as on a GPU machine without TensorFlow): a smoke test of the three families
and of an imported ONT model, in a process where TensorFlow cannot be imported."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
sys.modules["tensorflow"] = None  # blocked: the JAX path must not need it
import json, keras, numpy as np
import nanoseq
from nanoseq.basecaller.ont.importer import import_ont_model
from nanoseq.cli import main

found = {"backend": keras.backend.backend()}
first = next(iter(nanoseq.read_signal([sys.argv[1]])))
calls = list(nanoseq.basecall([first], beam_width=1, batch_size=8))
found["bases"] = [len(call.sequence) for _, call in calls]
ont = import_ont_model(sys.argv[2])
reference = np.load(sys.argv[2] + "/reference.npz")
moves = keras.ops.convert_to_numpy(ont.head.moves(ont(reference["x"][:, :, None])))
error = moves.reshape(reference["scores"].shape) - reference["scores"]
found["ont_error"] = float(np.abs(error).max())
print(json.dumps(found))
for command in (["lm", "generate", "-p", "ROMEO:", "-n", "40", "--seed", "1"],
                ["seq2seq", "translate", "--help"]):
    try:
        main(command)
    except SystemExit as end:
        assert not end.code, command
"""


def test_the_three_families_run_under_jax_without_tensorflow(sample_dir, tmp_path):
    v5 = ROOT / "tests/data/ont/dna_r10.4.1_e8.2_400bps_sup@v5.0.0"
    reads = sample_dir / "reads/lambda.pod5"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(reads), str(v5)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.splitlines()[0])
    assert found["backend"] == "jax"
    assert len(found["bases"]) == 1 and found["bases"][0] > 1000
    assert found["ont_error"] < 1e-5
    assert run.stdout.splitlines()[1].startswith("ROMEO:")
