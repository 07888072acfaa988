"""`nanoseq basecall`, `evaluate`, `prepare`, `simulate` end to end through the CLI."""

import csv
import json

import numpy as np
import pysam
import pytest
from click.testing import CliRunner

from nanoseq.basecaller.backbone import SignalBackbone
from nanoseq.basecaller.crf import STAYS
from nanoseq.basecaller.model import Basecaller
from nanoseq.cli import main
from nanoseq.io import read_fasta

from . import invoke
from .test_inspect import one_line_error


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """An untrained but complete model file: enough to exercise the plumbing quickly."""
    import keras

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "small.keras"
    Basecaller(SignalBackbone(filters=(4, 8, 16), units=8, layers=1)).save(path)
    return path


def records(path):
    with pysam.AlignmentFile(str(path), check_sq=False) as f:
        return [
            (r.query_name, r.query_sequence, list(r.query_qualities), r.get_tags())
            for r in f.fetch(until_eof=True)
        ]


def test_bundled_model_calls_map_to_lambda(sample_dir, tmp_path):
    out = tmp_path / "calls.fastq"
    result = invoke(
        "basecall",
        sample_dir / "reads/lambda.pod5",
        "-o",
        out,
        "--reference",
        sample_dir / "reads/lambda.fasta",
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "calls.fastq.metrics.json").read_text())
    assert metrics["reads"] == 6
    assert metrics["model"] == "auto" and metrics["beam_width"] == 5  # the defaults
    assert metrics["chemistries"] == {"dna_r9.4.1_e8": 6}
    assert metrics["alignment"]["mapped_fraction"] == 1.0  # the requirement: they map
    # a regression guard under the bundled model's 0.884 (v5, beam 5; its best path 0.869)
    assert metrics["alignment"]["median_identity"] > 0.85
    with open(tmp_path / "calls.fastq.summary.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == 6 and all(r["alignment_genome"] == "Lambda_NEB" for r in rows)
    truth = read_fasta(sample_dir / "reads/lambda_truth.fasta")
    assert {r["read_id"] for r in rows} == set(truth)


@pytest.mark.parametrize("suffix", ["fastq", "bam"])
def test_resume_after_interruption_equals_one_run(
    sample_dir, tmp_path, small_model, suffix, monkeypatch
):
    reads = sample_dir / "reads/lambda.pod5"
    whole = tmp_path / f"whole.{suffix}"
    assert (
        invoke(
            "basecall",
            reads,
            "-m",
            small_model,
            "-o",
            whole,
            "--chunk-size",
            1200,
            "--overlap",
            240,
        ).exit_code
        == 0
    )

    import nanoseq.basecaller.job as job

    real = job.basecall

    def interrupted(*args, **kwargs):
        for i, call in enumerate(real(*args, **kwargs)):
            if i == 3:
                raise KeyboardInterrupt
            yield call

    monkeypatch.setattr(job, "basecall", interrupted)
    cut = tmp_path / f"cut.{suffix}"
    result = CliRunner().invoke(
        main,
        [
            "basecall",
            str(reads),
            "-m",
            str(small_model),
            "-o",
            str(cut),
            "--chunk-size",
            "1200",
            "--overlap",
            "240",
        ],
    )
    assert result.exit_code == 130
    assert not cut.exists() and (tmp_path / f"cut.{suffix}.partial").exists()
    monkeypatch.setattr(job, "basecall", real)
    result = invoke(
        "basecall",
        reads,
        "-m",
        small_model,
        "-o",
        cut,
        "--resume",
        "--chunk-size",
        1200,
        "--overlap",
        240,
    )
    assert result.exit_code == 0
    assert not (tmp_path / f"cut.{suffix}.partial").exists()
    metrics = json.loads((tmp_path / f"cut.{suffix}.metrics.json").read_text())
    assert metrics["resumed_reads"] == 3 and metrics["reads"] == 3
    if suffix == "fastq":
        assert cut.read_text() == whole.read_text()
    else:
        assert records(cut) == records(whole)
    summary = (tmp_path / f"cut.{suffix}.summary.tsv").read_text().splitlines()
    assert sorted(summary) == sorted(
        (tmp_path / f"whole.{suffix}.summary.tsv").read_text().splitlines()
    )


def test_options_filter_reads(sample_dir, tmp_path, small_model):
    truth = list(read_fasta(sample_dir / "reads/lambda_truth.fasta"))
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{truth[4]}\n{truth[1]}\n")

    def basecalled(out, *options):
        """``nanoseq basecall`` of the sample reads with the small model into ``out``."""
        return invoke("basecall", sample_dir / "reads", "-m", small_model, "-o", out, *options)

    out = tmp_path / "some.sam"
    assert basecalled(out, "--read-ids", ids, "--beam-width", 3).exit_code == 0
    assert sorted(r[0] for r in records(out)) == sorted([truth[1], truth[4]])
    tags = dict(records(out)[0][3])
    assert {"qs", "ns", "ts", "ch", "mx", "rn", "st", "du", "sm", "sd", "mv"} <= set(tags)
    assert tags["mv"][0] == 6  # stride first
    assert basecalled(tmp_path / "two.fastq", "--max-reads", 2).exit_code == 0
    assert (tmp_path / "two.fastq").read_text().count("\n+\n") == 2
    assert basecalled(tmp_path / "none.fastq", "--min-qscore", 60).exit_code == 0
    assert (tmp_path / "none.fastq").read_text() == ""


def test_fastq_on_stdout(sample_dir, small_model):
    result = CliRunner().invoke(
        main,
        [
            "basecall",
            str(sample_dir / "reads/lambda.pod5"),
            "-m",
            str(small_model),
            "--max-reads",
            "1",
            "--emit-fastq",
        ],
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("@") and result.stdout.count("\n") == 4


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing.pod5"], "no such file or folder"),
        (["{reads}", "-m", "nope.keras"], "no such model file"),
        (["{reads}", "-m", "{truth}"], "cannot load model"),
        (["{reads}", "-m", "char_tinyshakespeare"], "is a language model; this needs a basecaller"),
        (["{reads}", "-o", "calls.txt"], "calls.txt"),
    ],
)
def test_basecall_bad_input_is_one_line(sample_dir, tmp_path, args, message):
    fill = {
        "reads": sample_dir / "reads/lambda.pod5",
        "truth": sample_dir / "reads/lambda_truth.fasta",
    }
    args = [
        a.format(**fill)
        if "{" in a
        else str(tmp_path / a)
        if "." in a and "/" not in a and not a.startswith("-") and a != "nope.keras"
        else a
        for a in args
    ]
    assert message in one_line_error("basecall", *args, real=message == "cannot load model")


def test_evaluate_scores_truth_as_perfect(sample_dir, tmp_path):
    calls = tmp_path / "truth.fasta"
    calls.write_text((sample_dir / "reads/lambda_truth.fasta").read_text())
    result = invoke("evaluate", calls, "--reference", sample_dir / "reads/lambda.fasta")
    assert result.exit_code == 0
    metrics = json.loads(result.stdout)
    assert metrics["reads"] == 6 and metrics["mapped_fraction"] == 1.0
    assert metrics["median_identity"] > 0.999 and metrics["mismatch_rate"] < 0.001
    assert metrics["homopolymer_accuracy"] > 0.99
    assert json.loads((tmp_path / "truth.fasta.eval.json").read_text()) == metrics
    assert len((tmp_path / "truth.fasta.eval.tsv").read_text().splitlines()) == 7


def test_evaluate_sees_errors_and_unmapped(sample_dir, tmp_path):
    truth = read_fasta(sample_dir / "reads/lambda_truth.fasta")
    lines = []
    for i, (name, seq) in enumerate(truth.items()):
        if i == 0:
            seq = "ACGT" * 200  # maps nowhere: identity 0
        elif i == 1:
            seq = "".join(b if j % 25 else {"A": "C"}.get(b, "A") for j, b in enumerate(seq))
        lines.append(f"@{name}\n{seq}\n+\n{'5' * len(seq)}\n")
    calls = tmp_path / "calls.fastq"
    calls.write_text("".join(lines))
    picture = tmp_path / "calibration.png"
    result = invoke("evaluate", calls, "-r", sample_dir / "reads/lambda.fasta", "--plot", picture)
    metrics = json.loads(result.stdout)
    assert picture.read_bytes().startswith(b"\x89PNG") and picture.stat().st_size > 5000
    assert metrics["mapped_fraction"] == pytest.approx(5 / 6)
    assert metrics["mean_identity"] < 0.85 and metrics["mismatch_rate"] > 0.006
    assert metrics["mean_qscore_wrong_bases"] == pytest.approx(20.0)
    (q20,) = metrics["calibration"]  # every base called at Q20: one bin, its errors measured
    assert q20["q"] == 20 and q20["bases"] > 10_000 and 0 < q20["errors"] < q20["bases"] / 20
    assert q20["measured_q"] == pytest.approx(-10 * np.log10(q20["errors"] / q20["bases"]))
    low, high = q20["measured_q_interval"]
    assert low < q20["measured_q"] < high < low + 3  # thousands of bases: a narrow interval
    assert metrics["read_qscore_error"] > 0


def test_evaluate_judges_the_read_qscore_the_basecaller_gave(sample_dir, tmp_path):
    """A record's ``qs`` tag (the read's mean qscore as reported, which its bases' qualities
    alone need not give) is what the per-read calibration is measured on."""
    truth = read_fasta(sample_dir / "reads/lambda_truth.fasta")
    errors = {}
    for tag in ("", "\tqs:f:60"):  # the truth: identity 1, Q60 (capped) as phred(1 - 1)
        calls = tmp_path / f"calls{len(tag)}.fastq"
        calls.write_text("".join(f"@{n}{tag}\n{s}\n+\n{'5' * len(s)}\n" for n, s in truth.items()))
        result = invoke("evaluate", calls, "-r", sample_dir / "reads/lambda.fasta")
        errors[tag] = json.loads(result.stdout)["read_qscore_error"]
    assert errors[""] > 30 and errors["\tqs:f:60"] < 5  # Q20 bases, or the tag's Q60


def test_simulate_then_prepare_cli(sample_dir, tmp_path):
    out = tmp_path / "sim.blow5"
    result = invoke(
        "simulate",
        "-r",
        sample_dir / "reads/lambda.fasta",
        "-o",
        out,
        "-n",
        3,
        "--length",
        800,
        "--region",
        "0-38000",
    )
    assert result.exit_code == 0
    truth = read_fasta(tmp_path / "sim.blow5.truth.fasta")
    assert len(truth) == 3
    result = invoke("inspect", out)
    assert result.stdout.count("\n") == 4
    chunks = tmp_path / "chunks"
    result = invoke(
        "prepare",
        sample_dir / "labelled/tombo_lambda.fast5",
        "-o",
        chunks,
        "--keep",
        "0-38000",
        "--step",
        900,
    )
    assert result.exit_code == 0 and (chunks / "chunks.npy").exists()


def test_simulate_random_genome_chunks_then_train_from_the_bundled_model(sample_dir, tmp_path):
    """Real chunks + simulated ones train together, a separate set validates, and --init starts
    from the bundled model: with a learning rate of ~0 it calls exactly as the bundled model (a
    fresh model would call nothing), and its CRF decoding is calibrated again."""
    import keras

    from nanoseq.models import load_model

    real, sim, out = tmp_path / "real", tmp_path / "sim", tmp_path / "out"
    assert invoke("prepare", sample_dir / "labelled/tombo_lambda.fast5", "-o", real).exit_code == 0
    result = invoke(
        "simulate", "--random-genome", 20_000, "--chunks", "-o", sim, "-n", 4, "--length", 1500
    )
    assert result.exit_code == 0
    assert np.load(sim / "references.npy").max() == 4 and len(np.load(sim / "chunks.npy")) >= 8
    args = ["--init", "dna_r941_lambda", "--lr", 1e-12, "--epochs", 1]
    result = invoke("train", "basecaller", real, sim, "--valid", real, "-o", out, *args)
    assert result.exit_code == 0
    with open(out / "training.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[0]["val_accuracy"]) > 0.6
    trained = keras.saving.load_model(out / "model.keras", compile=False)
    assert (
        trained.stride == 3
        and trained.head.kind == "crf"
        and trained.head.stay - trained.head.blank in STAYS
    )
    x = np.load(real / "chunks.npy")[:4, :, None]
    expected = load_model("dna_r941_lambda").predict(x, verbose=0)
    np.testing.assert_allclose(trained.predict(x, verbose=0), expected, atol=1e-4)


@pytest.mark.slow
def test_signal_that_is_not_dna_scores_below_every_real_read(sample_dir, tmp_path):
    """Flat, constant, noise, square waves, a sine and a drift (in a real read's calibration)
    get a mean qscore below every real read's, in the summary as in the records."""
    import uuid

    from nanoseq.signal.readers import Read, read_signal
    from nanoseq.signal.writers import write_signal

    real = list(read_signal([sample_dir / "reads/lambda.pod5"]))
    first, rng, t = real[0], np.random.default_rng(0), np.arange(20_000)
    shapes = {
        "constant": np.full(len(t), 90.0),
        "flat": 90 + rng.normal(0, 0.5, len(t)),
        "noise": 90 + rng.normal(0, 15, len(t)),
        "square": np.where((t // 20) % 2, 110.0, 80.0),
        "slow square": np.where((t // 400) % 2, 110.0, 80.0),
        "sine": 90 + 20 * np.sin(t / 15),
        "drift": np.linspace(60, 120, len(t)),
    }
    fake = [
        Read(
            str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
            np.round(pa / first.scale - first.offset).astype(np.int16),
            first.offset,
            first.range,
            first.digitisation,
            first.sample_rate,
            metadata=first.metadata,
        )
        for name, pa in shapes.items()
    ]
    write_signal([*real, *fake], tmp_path / "mixed.pod5")
    out = tmp_path / "calls.fastq"
    assert invoke("basecall", tmp_path / "mixed.pod5", "-o", out).exit_code == 0
    with open(tmp_path / "calls.fastq.summary.tsv") as handle:
        rows = {
            r["read_id"]: float(r["mean_qscore_template"])
            for r in csv.DictReader(handle, delimiter="\t")
        }
    lowest_real = min(rows[r.read_id] for r in real)
    for name, read in zip(shapes, fake, strict=True):
        assert rows[read.read_id] < lowest_real, (name, rows[read.read_id], lowest_real)


def test_simulate_from_real_events_keeps_to_their_region(sample_dir, tmp_path):
    tombo = sample_dir / "labelled/tombo_lambda.fast5"
    sim = tmp_path / "sim"
    args = ["--random-genome", 20_000, "--chunks", "-o", sim, "-n", 4, "--length", 1500]
    result = invoke("simulate", *args, "--events", tombo, "--events-region", "0-38000")
    assert result.exit_code == 0
    lengths = np.load(sim / "reference_lengths.npy")
    assert len(lengths) >= 6 and 60 < np.median(lengths) / 3.6 < 140  # bases per 1,000 samples
    # that read has no events before 36,891: nothing to build from
    error = one_line_error("simulate", *args, "--events", tombo, "--events-region", "0-30000")
    assert str(tombo) in error and "no labelled events inside the region" in error
    error = one_line_error("simulate", *args, "--events", sample_dir / "formats/multi_vbz.fast5")
    assert "multi_vbz.fast5" in error and "no labelled events" in error


@pytest.mark.parametrize("args", [[], ["-r", "{fasta}", "--random-genome", "1000"]])
def test_simulate_needs_one_genome(sample_dir, tmp_path, args):
    fasta = str(sample_dir / "reads/lambda.fasta")
    args = [a.format(fasta=fasta) for a in args]
    assert "--random-genome" in one_line_error("simulate", *args, "-o", tmp_path / "x.pod5")
