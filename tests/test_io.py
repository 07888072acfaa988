"""Output files: atomic writes, basecalls (FASTQ, SAM, BAM), crash and resume, summaries."""

import gzip
import json

import numpy as np
import pysam
import pytest

from nanoseq.errors import InputError
from nanoseq.io import (
    SUMMARY_COLUMNS,
    Call,
    CallsWriter,
    atomic_write,
    mean_qscore,
    read_calls,
    read_fasta,
    write_metrics,
    write_tsv,
)
from nanoseq.signal.readers import Read

FORMATS = ["calls.fastq", "calls.fq.gz", "calls.sam", "calls.bam"]


def make_calls(n=6, length=40, seed=0):
    """``n`` pairs of a read (its signal 4,000 samples a second) and its call."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        read = Read(
            read_id=f"read-{i:04d}",
            signal=np.zeros(2000 * (1 + 2 * i), np.int16),  # 0.5 s + i s
            offset=0.0,
            range=1.0,
            digitisation=1.0,
            sample_rate=4000.0,
            channel=i + 1,
            mux=i % 4 + 1,
            read_number=i,
            start_sample=40_000 * i,  # 10 s apart
            run_id="run1",
            filename="reads.pod5",
            metadata={"exp_start_time": "2024-01-01T00:00:00Z"},
        )
        call = Call(
            sequence="".join(rng.choice(list("ACGT"), length)),
            qualities=rng.integers(2, 40, length).astype(np.uint8),
            moves=rng.integers(0, 2, length * 3).astype(np.uint8),
            stride=5,
            trimmed_samples=100,
            shift=80.25,
            scale=12.5,
        )
        pairs.append((read, call))
    return pairs


def ids(calls):
    return [read.read_id for read, _ in calls]


def read_back(path):
    """Each record as (name, sequence, qualities, tags) with tags as a dict."""
    if ".fastq" in path.name or ".fq" in path.name:
        with pysam.FastxFile(str(path)) as f:
            return [
                (
                    r.name,
                    r.sequence,
                    list(r.get_quality_array()),
                    dict(t.split(":", 1) for t in r.comment.split("\t")),
                )
                for r in f
            ]
    with pysam.AlignmentFile(str(path), check_sq=False) as f:
        return [
            (r.query_name, r.query_sequence, list(r.query_qualities), dict(r.get_tags()))
            for r in f.fetch(until_eof=True)  # pysam cannot iterate a SAM without @SQ
        ]


def write_calls(path, calls, **options):
    with CallsWriter(path, **options) as writer:
        for read, call in calls:
            writer.write(read, call)


# --- small files ---


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "metrics.txt"
    target.write_text("old")
    with atomic_write(target) as f:
        f.write("new")
    assert target.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write("half")
        raise RuntimeError("crash")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.txt"]


def test_atomic_write_leaves_nothing_for_a_new_file_on_error(tmp_path):
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "out.bin", "wb") as f:
        f.write(b"half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_dash_is_stdout(capsys):
    with atomic_write("-") as f:
        f.write("hello\n")
    assert capsys.readouterr().out == "hello\n"


def test_write_metrics_converts_numpy(tmp_path):
    path = tmp_path / "m.json"
    write_metrics(path, {"b": np.float32(0.5), "a": np.int64(3), "c": np.arange(2)})
    text = path.read_text()
    assert json.loads(text) == {"a": 3, "b": 0.5, "c": [0, 1]}
    assert text.index('"a"') < text.index('"b"') and '\n  "a": 3' in text


def test_write_tsv(tmp_path):
    path = tmp_path / "t.tsv"
    write_tsv(path, [{"x": 1 / 3, "y": None, "z": "s"}, {"x": np.float32(2.0), "y": 7}], ["x", "y"])
    assert path.read_text() == "x\ty\n0.333333\t\n2\t7\n"


def test_mean_qscore_in_error_space():
    assert mean_qscore([10, 30]) == pytest.approx(12.967, abs=1e-3)
    assert mean_qscore(np.array([20, 20], np.uint8)) == pytest.approx(20)
    assert mean_qscore([]) == 0.0
    assert Call("AC", np.array([10, 30], np.uint8)).mean_qscore == pytest.approx(12.967, 1e-3)
    assert mean_qscore([20, 20], error_scale=2.0) == pytest.approx(20 - 10 * np.log10(2))
    assert mean_qscore([0, 20], error_scale=4.0) == pytest.approx(-10 * np.log10(1.04 / 2))


def test_missing_bases_count_as_wrong_in_the_mean_qscore():
    assert mean_qscore([20, 20], at_least=1) == pytest.approx(20.0)
    assert mean_qscore([20, 20], at_least=4) == pytest.approx(-10 * np.log10((0.02 + 2) / 4))
    assert mean_qscore([], at_least=3) == 0.0
    # 29 sure bases over 40,000 samples (a flat signal's call): far below a real read
    moves = np.zeros(10_000, np.uint8)
    moves[::345] = 1
    call = Call("A" * 29, np.full(29, 30), moves, stride=4)
    assert call.mean_qscore < 1


def test_a_records_qs_tag_is_read_with_it(tmp_path):
    fastq = tmp_path / "calls.fastq"
    fastq.write_text("@r1\tqs:f:7.5\tns:i:40\nACGT\n+\n5555\n@r2\nAC\n+\n55\n")
    first, second = read_calls(fastq)
    assert first.mean_qscore == 7.5 and first.qualities.tolist() == [20] * 4
    assert second.mean_qscore is None


def test_call_rejects_mismatched_qualities():
    with pytest.raises(ValueError, match="3 qualities for 2 bases"):
        Call("AC", np.array([1, 2, 3], np.uint8))


# --- basecalls ---


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip(tmp_path, name):
    calls = make_calls()
    path = tmp_path / name
    write_calls(path, calls)
    assert not (tmp_path / (name + ".partial")).exists()
    records = read_back(path)
    assert [r[0] for r in records] == [read.read_id for read, _ in calls]
    for (_, sequence, qualities, tags), (read, call) in zip(records, calls, strict=True):
        assert sequence == call.sequence
        assert qualities == call.qualities.tolist()
        start = f"2024-01-01T00:00:{10 * read.read_number:02d}.000+00:00"
        if name.endswith((".sam", ".bam")):
            assert list(tags.pop("mv")) == [5, *call.moves.tolist()]
            assert tags.pop("qs") == pytest.approx(call.mean_qscore, rel=1e-5)  # SAM: %g
            assert tags.pop("du") == pytest.approx(read.duration)
            assert tags.pop("sm") == pytest.approx(80.25)
            assert tags.pop("sd") == pytest.approx(12.5)
            want = dict(ns=read.num_samples, ts=100, ch=read.channel, mx=read.mux)
            want |= dict(rn=read.read_number, st=start, fn="reads.pod5")
        else:
            assert float(tags.pop("qs").removeprefix("f:")) == pytest.approx(
                call.mean_qscore, rel=1e-5
            )
            want = {"ns": f"i:{read.num_samples}", "ts": "i:100", "ch": f"i:{read.channel}"}
            want |= {"mx": f"i:{read.mux}", "rn": f"i:{read.read_number}"}
            want |= {"st": f"Z:{start}", "du": f"f:{read.duration:g}"}
            want |= {"fn": "Z:reads.pod5", "sm": "f:80.25", "sd": "f:12.5"}
        assert tags == want


def test_sam_header_and_unaligned_flag(tmp_path):
    path = tmp_path / "calls.sam"
    write_calls(path, make_calls(1), reference_header={"SQ": [{"SN": "chr1", "LN": 100}]})
    with pysam.AlignmentFile(str(path), check_sq=False) as f:
        header = f.header.to_dict()
        (record,) = list(f)
    assert header["HD"] == {"VN": "1.6", "SO": "unknown"}
    assert header["PG"][0]["ID"] == "nanoseq" and header["PG"][0]["PN"] == "nanoseq"
    assert header["SQ"] == [{"SN": "chr1", "LN": 100}]
    assert record.is_unmapped and record.flag == 4


def test_fastq_tags_leave_out_what_is_not_known(tmp_path):
    path = tmp_path / "c.fastq"
    read = Read("r1", np.zeros(800, np.int16), 0.0, 1.0, 1.0, 4000.0, channel=7)
    write_calls(path, [(read, Call("ACGT", np.array([20, 20, 20, 20], np.uint8)))])
    tags = "qs:f:20\tns:i:800\tts:i:0\tch:i:7\tmx:i:0\trn:i:0\tdu:f:0.2"
    assert path.read_text() == f"@r1\t{tags}\nACGT\n+\n5555\n"  # no st, fn, sm, sd


def test_stdout_takes_fastq_sam_or_bam_but_no_bam_on_a_terminal(
    capsysbinary, tmp_path, monkeypatch
):
    write_calls("-", make_calls(2), emit="fastq")
    out = capsysbinary.readouterr().out.decode()
    assert out.startswith("@read-0000\tqs:f:") and out.count("\n+\n") == 2
    write_calls("-", make_calls(2), emit="sam")
    assert capsysbinary.readouterr().out.decode().startswith("@HD\tVN:1.6")
    write_calls("-", make_calls(2))  # BAM by default, as dorado
    (tmp_path / "piped.bam").write_bytes(capsysbinary.readouterr().out)
    assert [r[0] for r in read_back(tmp_path / "piped.bam")] == ids(make_calls(2))
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    with pytest.raises(InputError, match="stdout is a terminal"):
        CallsWriter("-")
    with pytest.raises(InputError, match="--emit-sam does not go with bam"):
        CallsWriter(tmp_path / "calls.bam", emit="sam")


def test_read_groups_in_the_header_and_on_each_record(tmp_path):
    path = tmp_path / "calls.bam"
    groups = {"run1": "2024-01-01T00:00:00+00:00"}
    write_calls(path, make_calls(2), read_groups=groups, model="dna_r941_lambda")
    with pysam.AlignmentFile(str(path), check_sq=False) as f:
        (group,) = f.header.to_dict()["RG"]
        tags = [dict(r.get_tags()) for r in f.fetch(until_eof=True)]
    assert group == {
        "ID": "run1",
        "PL": "ONT",
        "DS": "runid=run1 basecall_model=dna_r941_lambda",
        "DT": "2024-01-01T00:00:00+00:00",
    }
    assert [t["RG"] for t in tags] == ["run1", "run1"]


def test_unknown_extension_is_an_input_error(tmp_path):
    for name in ["calls.txt", "calls.bam.gz", "calls"]:
        with pytest.raises(InputError, match=name):
            CallsWriter(tmp_path / name)


def test_resume_to_stdout_is_an_input_error():
    with pytest.raises(InputError):
        CallsWriter("-", resume=True)


@pytest.mark.parametrize("name", FORMATS)
def test_crash_then_resume_equals_an_uninterrupted_run(tmp_path, name):
    calls = make_calls(8)
    expected = tmp_path / ("expected-" + name)
    write_calls(expected, calls)

    path = tmp_path / name
    partial = tmp_path / (name + ".partial")
    with pytest.raises(KeyboardInterrupt), CallsWriter(path) as writer:
        for read, call in calls[:5]:
            writer.write(read, call)
        raise KeyboardInterrupt
    assert not path.exists() and partial.exists()
    assert [r[0] for r in read_back(partial)] == ids(calls[:5])

    written = []
    with CallsWriter(path, resume=True) as writer:
        assert writer.done_ids == set(ids(calls[:5]))
        for read, call in calls:
            if read.read_id not in writer.done_ids:
                writer.write(read, call)
                written.append(read.read_id)
    assert written == ids(calls[5:])
    assert not partial.exists()
    assert read_back(path) == read_back(expected)


def test_resume_from_a_finished_file_adds_only_new_reads(tmp_path):
    calls = make_calls(6)
    path = tmp_path / "calls.bam"
    write_calls(path, calls[:4])
    with CallsWriter(path, resume=True) as writer:
        assert writer.done_ids == set(ids(calls[:4]))
        for read, call in calls[4:]:
            writer.write(read, call)
    assert [r[0] for r in read_back(path)] == ids(calls)


def test_without_resume_an_existing_output_is_replaced_at_the_end(tmp_path):
    path = tmp_path / "calls.fastq"
    write_calls(path, make_calls(3))
    with CallsWriter(path) as writer:
        assert writer.done_ids == set()
        writer.write(*make_calls(1, seed=9)[0])
        assert len(read_back(path)) == 3
    assert len(read_back(path)) == 1


@pytest.mark.parametrize("where", ["header", "sequence", "plus", "quality", "last newline"])
def test_resume_drops_a_truncated_fastq_record(tmp_path, where):
    calls = make_calls(4)
    path = tmp_path / "calls.fastq"
    write_calls(path, calls)
    text = path.read_text()
    path.unlink()
    last = text.index("@read-0003")
    header, sequence, _, _, _ = text[last:].split("\n")
    cut = {
        "header": 20,
        "sequence": len(header) + 10,
        "plus": len(header) + len(sequence) + 3,
        "quality": len(header) + len(sequence) + 14,
        "last newline": len(text) - last - 1,
    }[where]
    partial = tmp_path / "calls.fastq.partial"
    partial.write_text(text[: last + cut])

    with CallsWriter(path, resume=True) as writer:
        assert writer.done_ids == set(ids(calls[:3]))
        writer.write(*calls[3])
    assert path.read_text() == text


def test_resume_keeps_what_pysam_can_read_of_a_truncated_bam(tmp_path):
    calls = make_calls(400, length=300)
    path = tmp_path / "calls.bam"
    write_calls(path, calls)
    expected = read_back(path)
    data = path.read_bytes()
    path.unlink()
    (tmp_path / "calls.bam.partial").write_bytes(data[: len(data) // 2])

    with CallsWriter(path, resume=True) as writer:
        done = writer.done_ids
        assert 0 < len(done) < len(calls)
        for read, call in calls:
            if read.read_id not in done:
                writer.write(read, call)
    assert read_back(path) == expected


def test_resume_drops_a_sam_line_cut_short(tmp_path):
    calls = make_calls(3)
    path = tmp_path / "calls.sam"
    write_calls(path, calls)
    text = path.read_text()
    path.unlink()
    (tmp_path / "calls.sam.partial").write_text(text[:-5])  # inside the last record's tags
    with CallsWriter(path, resume=True) as writer:
        assert writer.done_ids == set(ids(calls[:2]))
        writer.write(*calls[2])
    assert path.read_text() == text


# --- sequencing summary ---


def test_summary_columns_rows_and_extras(tmp_path):
    calls = make_calls(3)
    summary = tmp_path / "calls.bam.summary.tsv"
    with CallsWriter(tmp_path / "calls.bam", summary=summary, summary_columns=["acc"]) as w:
        for i, (read, call) in enumerate(calls):
            w.write(read, call, {"acc": 0.9 + i / 100})
    lines = summary.read_text().splitlines()
    assert lines[0].split("\t") == [*SUMMARY_COLUMNS, "acc"]
    assert SUMMARY_COLUMNS == [
        "filename",
        "read_id",
        "run_id",
        "channel",
        "mux",
        "start_time",
        "duration",
        "template_start",
        "template_duration",
        "sequence_length_template",
        "mean_qscore_template",
    ]
    rows = [dict(zip(lines[0].split("\t"), line.split("\t"), strict=True)) for line in lines[1:]]
    assert [r["read_id"] for r in rows] == ids(calls)
    row = rows[1]
    assert row["filename"] == "reads.pod5" and row["run_id"] == "run1"
    assert (row["channel"], row["mux"]) == ("2", "2")
    assert float(row["start_time"]) == 10.0 and float(row["duration"]) == 1.5
    assert float(row["template_start"]) == pytest.approx(10.025)  # 100 samples at 4 kHz
    assert float(row["template_duration"]) == pytest.approx(1.475)
    assert row["sequence_length_template"] == "40"
    assert float(row["mean_qscore_template"]) == pytest.approx(calls[1][1].mean_qscore, rel=1e-5)
    assert row["acc"] == "0.91"


def test_summary_resumes_with_the_calls(tmp_path):
    calls = make_calls(6)
    path, summary = tmp_path / "calls.fastq", tmp_path / "summary.tsv"
    write_calls(tmp_path / "expected.fastq", calls, summary=tmp_path / "expected.tsv")
    with pytest.raises(RuntimeError), CallsWriter(path, summary=summary) as writer:
        for read, call in calls[:4]:
            writer.write(read, call)
        raise RuntimeError
    assert not summary.exists() and (tmp_path / "summary.tsv.partial").exists()
    # The summary row of read 3 was lost: that read is done again.
    partial = tmp_path / "summary.tsv.partial"
    partial.write_text("".join(partial.read_text().splitlines(True)[:4]))

    with CallsWriter(path, resume=True, summary=summary) as writer:
        assert writer.done_ids == set(ids(calls[:3]))
        for read, call in calls:
            if read.read_id not in writer.done_ids:
                writer.write(read, call)
    assert summary.read_text() == (tmp_path / "expected.tsv").read_text()
    assert path.read_text() == (tmp_path / "expected.fastq").read_text()


# --- FASTA ---


def test_read_fasta_plain_and_gzip(tmp_path):
    text = ">chr1 first\nACGT\nAC\n\n>chr2\nGG\n"
    (tmp_path / "ref.fa").write_text(text)
    with gzip.open(tmp_path / "ref.fa.gz", "wt") as f:
        f.write(text)
    for name in ["ref.fa", "ref.fa.gz"]:
        assert read_fasta(tmp_path / name) == {"chr1": "ACGTAC", "chr2": "GG"}


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "no such file"),
        ("", "no sequences"),
        ("ACGT\n", "not a FASTA"),
        (b"\xff\x00", "not a readable"),
    ],
)
def test_read_fasta_errors(tmp_path, content, problem):
    path = tmp_path / "ref.fa"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as error:
        read_fasta(path)
    assert str(error.value).startswith(str(path))
