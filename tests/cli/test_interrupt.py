"""Interrupted basecalling runs, as a scheduler or a crash ends them: SIGTERM and kill -9 in the
middle of a run, then --resume. The records on disk at the signal are kept (every one after
SIGTERM; after kill -9, all but at most the one being written), and the final output is the
uninterrupted run's. The runs share a compile cache: those after the first load the programs it
compiled, and call the same."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from nanoseq.io import complete_records, read_calls

FORMATS = ["calls.fastq", "calls.fastq.gz", "calls.bam"]
OWN_CACHE_SETTINGS = ("TF_XLA_FLAGS", "JAX_COMPILATION_CACHE_DIR")


@pytest.fixture(scope="module")
def run_inputs(sample_dir, tmp_path_factory):
    """60 simulated reads and a small untrained model: a run of a few seconds."""
    import keras

    from nanoseq.basecaller.backbone import SignalBackbone
    from nanoseq.basecaller.model import Basecaller
    from nanoseq.io import read_fasta
    from nanoseq.signal.simulate import load_pore_model, simulate_reads, write_reads

    folder = tmp_path_factory.mktemp("interrupt")
    reads = simulate_reads(read_fasta(sample_dir / "reads/lambda.fasta"), load_pore_model(), 60)
    write_reads(reads, folder / "reads.pod5", folder / "truth.fasta")
    keras.utils.set_random_seed(0)
    Basecaller(SignalBackbone((4, 8, 16), units=8, layers=1)).save(folder / "model.keras")
    return folder


def command(folder, output, *extra):
    reads, model = folder / "reads.pod5", folder / "model.keras"
    args = ["basecall", reads, "-m", model, "-o", output, "--batch-size", 2, *extra]
    return [sys.executable, "-m", "nanoseq", *map(str, args)]


def environment(folder):
    """This module's compile cache; not the settings an in-process command left to the suite."""
    inherited = {k: v for k, v in os.environ.items() if k not in OWN_CACHE_SETTINGS}
    return {**inherited, "NANOSEQ_CACHE": str(folder / "cache")}


def records(path):
    """(read id, sequence, qualities) of each read in a finished output."""
    return [(c.read_id, c.sequence, list(c.qualities)) for c in read_calls(path)]


def written(path, name):
    """The read ids of the whole records in the partial output of ``name``."""
    kind = "bam" if name.endswith(".bam") else "fastq"
    return [read_id for read_id, _ in complete_records(path, kind)]


def summary_rows(path):
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


@pytest.mark.slow
@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "kill-9"])
def test_resume_after_a_signal_keeps_the_records_and_ends_as_an_uninterrupted_run(
    run_inputs, tmp_path, name, how
):
    expected = run_inputs / f"expected-{name}"  # the uninterrupted run, once per format
    if not expected.exists():
        first = subprocess.run(command(run_inputs, expected), env=environment(run_inputs))
        assert first.returncode == 0
        backend = json.loads(expected.with_name(f"{expected.name}.metrics.json").read_text())
        cached = {"jax": "jax/jit_pure-*", "tensorflow": "tf/xla_compile_cache_*"}
        assert any(run_inputs.glob(f"cache/{cached[backend['backend']]}")), "nothing cached"
    output = tmp_path / name
    rows = tmp_path / f"{name}.summary.tsv.partial"
    process = subprocess.Popen(
        command(run_inputs, output), stderr=subprocess.PIPE, text=True, env=environment(run_inputs)
    )
    deadline = time.monotonic() + 120
    while summary_rows(rows) < 10 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(how)
    _, stderr = process.communicate(timeout=60)
    if how == signal.SIGTERM:
        assert process.returncode == 128 + signal.SIGTERM and "Traceback" not in stderr, stderr
        assert stderr.strip().splitlines()[-1] == (
            "nanoseq: terminated (SIGTERM); --resume continues the run"
        )
    else:
        assert process.returncode == -signal.SIGKILL
    on_disk = written(tmp_path / f"{name}.partial", name)
    assert not output.exists() and len(on_disk) >= 10

    resumed = subprocess.run(
        command(run_inputs, output, "--resume"), capture_output=True, env=environment(run_inputs)
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    kept = json.loads((tmp_path / f"{name}.metrics.json").read_text())["resumed_reads"]
    assert kept >= (len(on_disk) if how == signal.SIGTERM else len(on_disk) - 1)
    assert records(output) == records(expected)
    summary = (tmp_path / f"{name}.summary.tsv").read_text().splitlines()
    assert len(summary) == 61 and len({line.split("\t")[1] for line in summary}) == 61
