"""What a lab used to dorado expects: an aligned, sorted and indexed BAM with --reference that
`prepare --bam` takes back, `nanoseq summary` of a BAM, options anywhere, progress in a log."""

import csv
import io

import numpy as np
import pysam
import pytest

from . import invoke


def succeeded(*args):
    """The CLI on ``args``, which must succeed."""
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def aligned(sample_dir, tmp_path_factory):
    """The sample lambda reads and four R10.1 reads of another genome (unmapped), called into
    an aligned BAM, -q after the command as dorado's users write it."""
    folder = tmp_path_factory.mktemp("aligned")
    reads = [sample_dir / "reads/lambda.pod5", sample_dir / "formats/multi_vbz.fast5"]
    args = ["-o", folder / "calls.bam", "--reference", sample_dir / "reads/lambda.fasta"]
    succeeded("basecall", *reads, *args, "--beam-width", 1, "-q", "--any-chemistry")
    return folder


def test_reference_makes_an_aligned_sorted_indexed_bam(aligned, sample_dir):
    bam = aligned / "calls.bam"
    assert (aligned / "calls.bam.bai").exists()
    with pysam.AlignmentFile(str(bam)) as handle:
        header = handle.header.to_dict()
        records = list(handle.fetch(until_eof=True))
        assert handle.count("Lambda_NEB") >= 6  # the index answers a region query
    assert header["HD"]["SO"] == "coordinate" and header["SQ"] == [
        {"SN": "Lambda_NEB", "LN": 48502}
    ]
    mapped = [r for r in records if not r.is_unmapped and not r.is_supplementary]
    assert len(mapped) == 6 and len([r for r in records if r.is_unmapped]) == 4
    starts = [r.reference_start for r in records if not r.is_unmapped]
    assert starts == sorted(starts)
    for record in mapped:
        assert record.mapping_quality == 60 and record.has_tag("mv") and record.has_tag("MD")
        assert record.infer_query_length() == record.query_length  # CIGAR spans the read
        assert 0 < record.get_tag("NM") < 0.2 * record.query_length


def test_summary_of_a_bam_is_the_runs_summary(aligned):
    result = succeeded("summary", aligned / "calls.bam")
    mine = {
        row["read_id"]: row for row in csv.DictReader(io.StringIO(result.stdout), delimiter="\t")
    }
    with open(aligned / "calls.bam.summary.tsv") as handle:
        theirs = {row["read_id"]: row for row in csv.DictReader(handle, delimiter="\t")}
    assert mine.keys() == theirs.keys() and len(mine) == 10
    for read_id, row in theirs.items():
        for column in (
            "filename",
            "channel",
            "mux",
            "sequence_length_template",
            "alignment_genome",
        ):
            assert mine[read_id][column] == row[column]
        for column in (
            "duration",
            "template_duration",
            "mean_qscore_template",
            "alignment_identity",
        ):
            assert float(mine[read_id][column]) == pytest.approx(float(row[column]), abs=2e-3)
        assert float(mine[read_id]["start_time"]) == pytest.approx(
            float(row["start_time"]), abs=2e-3
        )


@pytest.mark.slow
def test_prepare_takes_the_aligned_bam_back_and_trains(aligned, sample_dir, tmp_path):
    chunks = tmp_path / "chunks"
    succeeded(
        "prepare", sample_dir / "reads/lambda.pod5", "--bam", aligned / "calls.bam", "-o", chunks
    )
    references = np.load(chunks / "references.npy")
    assert len(references) >= 20 and set(np.unique(references)) <= {0, 1, 2, 3, 4}
    run = ["-o", tmp_path / "run", "--epochs", 1, "--units", 8, "--layers", 1, "--batch-size", 8]
    succeeded("train", "basecaller", chunks, *run)
    assert (tmp_path / "run/model.keras").exists()


def test_verbosity_anywhere_and_a_status_line_off_a_terminal(caplog, monkeypatch):
    import logging

    from nanoseq import progress
    from nanoseq.cli import verbosity_first

    assert verbosity_first(["basecall", "r.pod5", "-v", "-o", "c.bam", "-q"]) == [
        "-v", "-q", "basecall", "r.pod5", "-o", "c.bam",
    ]  # fmt: skip
    assert verbosity_first(["lm", "generate", "--", "-v"]) == ["lm", "generate", "--", "-v"]
    monkeypatch.setattr(progress, "EVERY", 0.0)
    with caplog.at_level(logging.INFO, "nanoseq"), progress.Progress("basecalling", 4) as bar:
        bar.update(samples_per_s="3e+05")
    assert (
        "basecalling: 1 of 4 reads, samples_per_s 3e+05" in caplog.text
        and "min left" in caplog.text
    )


def test_device_reaches_the_backend_before_it_starts(monkeypatch):
    import os

    from nanoseq.errors import InputError
    from nanoseq.runtime import use_device

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    use_device("cuda:1")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    use_device("cpu")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
    with pytest.raises(InputError, match="cpu, cuda:N or auto"):
        use_device("gpu")
