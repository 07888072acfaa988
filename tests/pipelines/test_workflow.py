"""The Snakemake workflow, run for real on sample files: per-file jobs, the gather step, a
rerun that does nothing, a bad file that fails only its own job, and --lint."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(workdir, *args):
    command = [
        *SNAKEMAKE,
        "--snakefile",
        str(PIPELINES / "workflow/Snakefile"),
        "--profile",
        str(PIPELINES / "profiles/local"),
        "--directory",
        str(workdir),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture(scope="module")
def run(sample_dir, tmp_path_factory):
    pytest.importorskip("snakemake")
    work = tmp_path_factory.mktemp("workflow")
    reads = work / "reads"
    (reads / "more").mkdir(parents=True)
    shutil.copy(sample_dir / "reads/lambda.pod5", reads)
    shutil.copy(sample_dir / "formats/multi_vbz.fast5", reads / "more")
    config = [
        "--config",
        f"reads={reads}",
        "format=fastq",
        f"reference={sample_dir / 'reads/lambda.fasta'}",
    ]
    first = snakemake(work, *config)
    again = snakemake(work, *config)
    return work, first, again, config


def test_each_file_is_a_job_and_the_run_is_gathered(run):
    work, first, _, _ = run
    assert first.returncode == 0, first.stderr[-3000:]
    results = work / "results"
    assert (results / "calls/lambda.fastq").exists() and (
        results / "calls/multi_vbz.fastq"
    ).exists()
    with open(results / "run.summary.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == 6 + 4 and "alignment_identity" in rows[0]
    metrics = json.loads((results / "run.metrics.json").read_text())
    assert metrics["jobs"] == 2 and metrics["reads"] == 10
    # the lambda reads map (0.86-0.91 each with the bundled model); the R10.1 reads of another
    # genome do not, and count 0: the run's median is the mean of the two lowest lambda reads
    lambda_rows = [float(r["alignment_identity"]) for r in rows if r["filename"] == "lambda.pod5"]
    assert len(lambda_rows) == 6 and min(lambda_rows) > 0.8
    assert metrics["alignment"]["median_identity"] > 0.8
    assert metrics["alignment"]["mapped_fraction"] == pytest.approx(0.6)
    assert all((results / f"logs/basecall/{name}.log").exists() for name in ("lambda", "multi_vbz"))


def test_rerun_does_nothing(run):
    _, _, again, _ = run
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_bad_file_fails_its_own_job_with_the_reason_in_its_log(run, sample_dir):
    work, _, _, config = run
    bad = work / "reads/broken.pod5"
    bad.write_bytes((sample_dir / "reads/lambda.pod5").read_bytes()[:5000])
    try:
        result = snakemake(work, *config)
        assert result.returncode != 0
        log = (work / "results/logs/basecall/broken.log").read_text()
        assert "nanoseq: error:" in log and "broken.pod5" in log
        assert (work / "results/calls/lambda.fastq").exists()  # the good files are untouched
    finally:
        bad.unlink()


def test_lint_is_clean(run):
    work, _, _, config = run
    result = snakemake(work, "--lint", *config)
    assert result.returncode == 0, result.stdout + result.stderr
