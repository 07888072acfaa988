"""The JAX path (as on a GPU machine without TensorFlow): a smoke test of the three families
and of an imported ONT model, in a process where TensorFlow cannot be imported."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
sys.modules["tensorflow"] = None  # blocked: the JAX path must not need it
from nanoseq.runtime import persist_compilations
persist_compilations()  # as the command line does first
import json, keras, numpy as np
import nanoseq
from nanoseq.basecaller.ont.importer import import_ont_model
from nanoseq.cli import main

found = {"backend": keras.backend.backend()}
first = next(iter(nanoseq.read_signal([sys.argv[1]])))
calls = list(nanoseq.basecall([first], beam_width=1, batch_size=8))
found["bases"] = [len(call.sequence) for _, call in calls]

# the jitted runner against the model called eagerly
from nanoseq.basecaller.pipeline import Runner
model = nanoseq.Basecaller.from_preset("dna_r941_lambda")
windows = np.random.default_rng(0).normal(size=(4, 600)).astype("float32")
jitted = Runner(model, 4, 600)(windows)
eager = model.frames(windows[:, :, None], 1)
found["jit_error"] = max(
    float(np.abs(keras.ops.convert_to_numpy(e) - j).max()) for e, j in zip(eager, jitted)
)

# nanoseq's LSTM and GRU scans against Keras's loops: outputs and gradients, both directions
import jax
from nanoseq.recurrent import GRU, LSTM, Bidirectional

def outputs_and_gradients(layer, x):
    def loss(values):
        with keras.StatelessScope(state_mapping=list(zip(layer.trainable_variables, values))):
            out = layer(x)
        return (out * np.arange(6)).sum(), out

    values = [v.value for v in layer.trainable_variables]
    (_, out), grads = jax.value_and_grad(loss, has_aux=True)(values)
    return [out, *grads]

# the largest difference of outputs and gradients relative to each array's scale: the
# gradients reach about 60, where float32's spacing is 4e-6, so an absolute bound would test
# the summation order rather than the arithmetic
def error(ours, theirs):
    pairs = zip(outputs_and_gradients(ours, x), outputs_and_gradients(theirs, x))
    return max(float(np.abs(a - b).max() / max(1.0, np.abs(b).max())) for a, b in pairs)

x = np.random.default_rng(1).normal(size=(3, 7, 5)).astype("float32")
keras.utils.set_random_seed(0)
for name, Ours, Theirs in (("lstm", LSTM, keras.layers.LSTM), ("gru", GRU, keras.layers.GRU)):
    found[f"{name}_error"] = 0.0
    for backwards in (False, True):
        ours = Ours(6, return_sequences=True, go_backwards=backwards)
        theirs = Theirs(6, return_sequences=True, go_backwards=backwards)
        ours.build(x.shape), theirs.build(x.shape)
        theirs.set_weights(ours.get_weights())
        found[f"{name}_error"] = max(found[f"{name}_error"], error(ours, theirs))
ours = Bidirectional(LSTM(3, return_sequences=True))  # both directions in one scan
theirs = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True))
ours.build(x.shape), theirs.build(x.shape)
theirs.set_weights(ours.get_weights())
found["bidirectional_error"] = error(ours, theirs)
ont = import_ont_model(sys.argv[2])
reference = np.load(sys.argv[2] + "/reference.npz")
moves = keras.ops.convert_to_numpy(ont.head.moves(ont(reference["x"][:, :, None])))
error = moves.reshape(reference["scores"].shape) - reference["scores"]
found["ont_error"] = float(np.abs(error).max())
print(json.dumps(found))
text = "\\n".join(line.split("\\t")[1] for line in open(sys.argv[3]).read().splitlines())
open("text.txt", "w").write(text)
small = ["--units", "16", "--embedding-dim", "8", "--batch-size", "4", "--steps", "20"]
small += ["--epochs", "2"]
for command in (["lm", "generate", "-p", "ROMEO:", "-n", "40", "--seed", "1"],
                ["lm", "train", "text.txt", "--valid", "text.txt", "-o", "lm", *small],
                ["seq2seq", "translate", "--help"]):
    try:
        main(command)
    except SystemExit as end:
        assert not end.code, command
"""


def test_the_three_families_run_under_jax_without_tensorflow(sample_dir, tmp_path):
    v5 = ROOT / "tests/data/ont/dna_r10.4.1_e8.2_400bps_sup@v5.0.0"
    reads = sample_dir / "reads/lambda.pod5"
    text = "text/multi30k_de_en.tsv"
    inherited = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env = {**inherited, "KERAS_BACKEND": "jax", "NANOSEQ_CACHE": str(tmp_path / "cache")}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(reads), str(v5), str(sample_dir / text)],
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
    assert found["jit_error"] < 1e-4
    assert found["lstm_error"] < 1e-5
    assert found["gru_error"] < 1e-5
    assert found["bidirectional_error"] < 1e-5
    assert any((tmp_path / "cache/jax").glob("jit_pure-*")), "compiled programs not cached"
    assert found["ont_error"] < 1e-5
    assert run.stdout.splitlines()[1].startswith("ROMEO:")
    with open(tmp_path / "lm/training.csv") as log:  # trained, validated each epoch
        scores = [float(row["val_nats_per_token"]) for row in csv.DictReader(log)]
    assert len(scores) == 2 and scores[1] < scores[0]
