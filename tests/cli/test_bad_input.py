"""Bad input across every command: each bad option value is a usage error (one line, exit 2),
each bad file, read or value one line naming it (exit 1), never a traceback; bad reads inside a
good file are warnings; files with their bytes flipped are read or refused, never crash."""

import os
import random
import shlex
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from nanoseq.cli import main
from nanoseq.io import CallsWriter
from nanoseq.signal.labels import ChunkSet
from nanoseq.signal.readers import Read, read_signal
from nanoseq.signal.writers import write_signal

from . import invoke


def failure(*args, input=None):
    """Runs the CLI; checks an empty stdout and one stderr line; returns (status, line)."""
    result = invoke(*args, input=input)
    lines = result.stderr.strip().splitlines()
    assert result.stdout == "" and len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in lines[0], lines[0]
    return result.exit_code, lines[0]


@pytest.fixture(scope="module")
def files(sample_dir, tmp_path_factory):
    """Bad files of each kind (by name, dots as underscores), and a few good ones."""
    folder = tmp_path_factory.mktemp("bad")
    (folder / "binary").write_bytes(bytes(range(256)) * 4)
    (folder / "empty.fasta").write_text("")
    noise = random.Random(0)
    (folder / "random.fastq").write_bytes(bytes(noise.randrange(256) for _ in range(999)))
    (folder / "random.bam").write_bytes((folder / "random.fastq").read_bytes())
    (folder / "one.txt").write_text("a")
    (folder / "truncated.pod5").write_bytes((sample_dir / "reads/lambda.pod5").read_bytes()[:5000])
    os.mkfifo(folder / "fifo.pod5")
    nan = folder / "nan_chunks"
    labels = np.ones((2, 3), np.uint8), np.full(2, 3)
    ChunkSet(np.full((2, 600), np.nan, np.float32), *labels).save(nan)
    ChunkSet(np.ones((2, 600), np.float32), *labels).save(folder / "ok_chunks")
    return {
        "reads": sample_dir / "reads/lambda.pod5",
        "fasta": sample_dir / "reads/lambda.fasta",
        "tmp": folder,
        **{path.name.replace(".", "_"): path for path in folder.iterdir()},
        "fifo": folder / "fifo.pod5",
    }


USAGE = [  # bad option values: refused before any work, exit 2
    ("basecall {reads} --threads -1", "--threads"),
    ("basecall {reads} --threads 0", "--threads"),
    ("basecall {reads} --max-reads -1", "--max-reads"),
    ("basecall {reads} --min-qscore nan", "--min-qscore"),
    ("basecall {reads} --chunk-size 0", "--chunk-size"),
    ("basecall {reads} --beam-width 0", "--beam-width"),
    ("basecall {reads} --workers 0", "--workers"),
    ("lm generate --temperature nan", "--temperature"),
    ("lm generate --temperature -1", "--temperature"),
    ("lm generate --top-p 2", "--top-p"),
    ("lm generate --top-k -3", "--top-k"),
    ("lm generate -n -5", "--length"),
    ("lm generate --beam-width -2", "--beam-width"),
    ("lm train {one_txt} --valid {one_txt} -o {tmp}/lm --units 0", "--units"),
    ("lm train {one_txt} --valid {one_txt} -o {tmp}/lm --epochs 0", "--epochs"),
    ("lm train {one_txt} --valid {one_txt} -o {tmp}/lm --dropout 1", "--dropout"),
    ("seq2seq translate -m x.keras --batch-size 0", "--batch-size"),
    ("seq2seq translate -m x.keras --max-length 0", "--max-length"),
    ("seq2seq train --pairs x.tsv --valid-pairs x.tsv -o {tmp}/s2s --lr 0", "--lr"),
    ("train basecaller {tmp} -o {tmp}/run --valid-fraction 1", "--valid-fraction"),
    ("train basecaller {tmp} -o {tmp}/run --max-minutes -1", "--max-minutes"),
    ("prepare {reads} -o {tmp}/chunks --chunk-size 0", "--chunk-size"),
    ("prepare {reads} -o {tmp}/chunks --pa-sd inf", "--pa-sd"),
    ("simulate --random-genome 1000 -o {tmp}/sim.pod5 --length 0", "--length"),
    ("simulate --random-genome 1000 -o {tmp}/sim.pod5 -n -5", "--reads"),
    ("simulate --random-genome 0 -o {tmp}/sim.pod5", "--random-genome"),
    ("basecal {reads}", "No such command"),
    ("train basecaller {tmp} -o {tmp}/run --max-minutes nan", "--max-minutes"),
    ("simulate --random-genome 1000 -o {tmp}/sim.pod5 --seed -1", "--seed"),
    ("lm generate --seed -1", "--seed"),
    ("basecall {reads} --max-reads 100000000000000000000000", "--max-reads"),
]

ERRORS = [  # bad files and values found at work: exit 1, the file named
    ("basecall {reads} -o {tmp}/missing/calls.fastq", "missing: no such folder"),
    ("basecall {reads} -o {tmp}", "is a folder"),
    ("basecall {reads} -o {tmp}/calls.txt", "unknown output format"),
    ("basecall {reads} --chunk-size 6 --overlap 0", "windows of 6 samples are too short"),
    ("basecall {reads} --overlap 3000", "an overlap of 3000 samples"),
    ("basecall {reads} --read-ids {binary}", "binary: not a text file of read ids"),
    ("basecall {reads} --reference {binary}", "binary: not a FASTA file"),
    ("basecall {reads} --reference {empty_fasta}", "empty.fasta: not a FASTA file"),
    ("basecall {reads} -m char_tinyshakespeare", "is a language model; this needs a basecaller"),
    ("basecall {reads} -m {binary}", "binary: cannot load model"),
    ("basecall {reads} -o {random_fastq} --resume", "random.fastq: cannot resume from it"),
    ("basecall {reads} -o {random_bam} --resume", "random.bam: cannot resume from it"),
    ("basecall {truncated_pod5}", "truncated.pod5: cannot read pod5 file"),
    ("basecall {tmp}/nothing.pod5", "nothing.pod5: no such file or folder"),
    ("lm generate -m dna_r941_lambda", "is a basecaller; this needs a language model"),
    ("lm evaluate --text {one_txt}", "one.txt: too short to score"),
    ("seq2seq translate -m char_tinyshakespeare {one_txt}", "is a language model"),
    ("evaluate {tmp} -r {fasta}", "is a folder; give a file of calls"),
    ("evaluate {reads} -r {fasta}", "lambda.pod5: not a file of calls"),
    ("evaluate {fasta} -r {binary}", "binary: not a FASTA file"),
    ("evaluate {fasta} -r {fasta} --plot {tmp}/c.jpg", "c.jpg: pictures are .png or .svg"),
    (
        "evaluate {fasta} -r {fasta} -o {tmp}/m.json --per-read {tmp}/m.tsv --plot {tmp}/c.png",
        "no base qualities to draw",
    ),
    ("inspect {truncated_pod5}", "truncated.pod5: cannot read pod5 file"),
    ("simulate -r {fasta} -o {tmp}/sim.pod5 --region 60000-70000", "holds fewer than 7 bases"),
    ("simulate --random-genome 1000 -o {tmp}/missing/sim.pod5", "missing: no such folder"),
    ("train basecaller {tmp} -o {tmp}/run", "missing chunks.npy"),
    ("train basecaller {nan_chunks} -o {tmp}/run", "chunks.npy holds NaN or infinite signal"),
    ("train basecaller {ok_chunks} -o {tmp}/run --init char_tinyshakespeare", "language model"),
    ("train basecaller {ok_chunks} -o {tmp}/xla --xla", "XLA: TensorFlow's CTC and CRF losses"),
    ("train basecaller {tmp} -o {binary}", "is a file; -o names the run's folder"),
    (
        "seq2seq train --pairs {one_txt} --source {one_txt} --valid-pairs x -o {tmp}/s",
        "one --pairs",
    ),
    ("evaluate {fasta} -r {fasta} -o {fasta}", "an output would overwrite an input"),
    ("simulate --random-genome 1000 -o {tmp}/s.pod5 --truth {tmp}/s.pod5", "would overwrite"),
    ("inspect {fifo}", "not a regular file"),
    ("inspect ''", "an empty path"),
]


@pytest.mark.parametrize("command, fragment", USAGE, ids=[c for c, _ in USAGE])
def test_a_bad_option_value_is_a_one_line_usage_error(files, command, fragment):
    status, line = failure(*shlex.split(command.format(**files)))
    assert status == 2 and fragment in line and "usage error" in line


@pytest.mark.parametrize("command, fragment", ERRORS, ids=[c for c, _ in ERRORS])
def test_a_bad_file_or_value_is_one_line_naming_it(files, command, fragment):
    status, line = failure(*shlex.split(command.format(**files)))
    assert status == 1 and line.startswith("nanoseq: error: ") and fragment in line


def test_a_closed_stdout_is_one_line_not_silence():
    command = [sys.executable, "-m", "nanoseq", "lm", "generate", "-n", "5"]
    closed = subprocess.run(
        command,
        capture_output=False,
        stderr=subprocess.PIPE,
        text=True,
        stdout=subprocess.DEVNULL,
        preexec_fn=lambda: os.close(1),
    )
    assert closed.returncode == 1
    assert closed.stderr.strip() == "nanoseq: error: stdout is closed: nowhere to write (give -o)"


def test_no_command_is_the_help():
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 0 and "Commands:" in result.stdout


def test_translating_a_closed_stdin_is_one_line():
    import os

    command = [sys.executable, "-m", "nanoseq", "seq2seq", "translate", "-m", "x.keras"]
    closed = subprocess.run(command, capture_output=True, text=True, preexec_fn=lambda: os.close(0))
    assert closed.returncode == 1 and closed.stdout == ""
    assert closed.stderr.strip() == (
        "nanoseq: error: nothing to translate: stdin is closed (give INPUT_FILE)"
    )


def test_bad_reads_inside_a_good_file_are_skipped_with_a_warning(sample_dir, tmp_path, caplog):
    """A read with a calibration of NaN or zero, a sample rate of 0 or a current no pore makes
    is named in a warning; the others are called."""
    good = list(read_signal([sample_dir / "reads/lambda.pod5"]))[:3]
    bad = [
        Read("nan-offset", good[0].signal, float("nan"), 1.0, 1.0, 4000.0),
        Read("zero-digitisation", good[0].signal, 0.0, 1.0, 0.0, 4000.0),
        Read("zero-rate", good[0].signal, good[0].offset, good[0].range, 8192.0, 0.0),
        Read("too-high", good[0].signal, 5000.0, good[0].range, good[0].digitisation, 4000.0),
    ]
    path = tmp_path / "mixed.blow5"
    write_signal([good[0], *bad, *good[1:]], path)
    with caplog.at_level("WARNING"):
        kept = [read.read_id for read in read_signal([path])]
    assert kept == [read.read_id for read in good]
    for read in bad:
        assert f"read {read.read_id} has" in caplog.text


def test_the_same_file_or_read_twice_is_called_once(sample_dir, tmp_path, caplog):
    from nanoseq.io import read_calls

    reads = sample_dir / "reads/lambda.pod5"
    copy = tmp_path / "copy.pod5"
    copy.write_bytes(reads.read_bytes())
    out = tmp_path / "calls.fastq"
    args = ["basecall", reads, reads, copy, "-o", out, "--max-reads", 8, "--beam-width", 1]
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    ids = [call.read_id for call in read_calls(out)]
    assert len(ids) == len(set(ids)) == 6
    assert "1 files were given more than once" in caplog.text
    assert "was met before; called once" in caplog.text  # the copy holds the same reads


def test_a_selection_of_no_reads_is_warned(sample_dir, tmp_path, caplog):
    ids = tmp_path / "ids.txt"
    ids.write_text("not-a-read\n")
    reads = sample_dir / "reads/lambda.pod5"
    args = ["basecall", reads, "--read-ids", ids, "-o", tmp_path / "c.fq"]
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0 and "no reads that --read-ids lists" in caplog.text


def test_an_output_in_use_is_refused_and_a_stale_lock_taken_over(tmp_path, caplog):
    import os

    from nanoseq.errors import InputError

    path = tmp_path / "calls.fastq"
    with CallsWriter(path), pytest.raises(InputError, match="in use by process"):
        with CallsWriter(path):
            pass
    assert not (tmp_path / "calls.fastq.lock").exists()  # released by its run
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / "calls.fastq.lock").write_text(f"{gone.pid} {os.uname().nodename}\n")
    with CallsWriter(path):
        pass
    assert "taking over the lock" in caplog.text and path.exists()


FUZZED = ["reads/lambda.pod5", "formats/multi_vbz.fast5", "formats/r1041_4khz.blow5"]


@pytest.mark.slow
@pytest.mark.parametrize("name", FUZZED)
def test_flipped_bytes_are_read_or_refused_never_a_crash(sample_dir, tmp_path, name):
    """Bytes flipped anywhere past the header: `inspect` (the readers basecall uses) lists the
    reads it can read and skips the implausible ones, or stops with one line; never a traceback
    or a native abort."""
    data = (sample_dir / name).read_bytes()
    rng = random.Random(name)
    outcomes = set()
    for trial in range(8):
        broken = bytearray(data)
        for _ in range(1 + trial):
            at = rng.randrange(64, len(broken))
            broken[at] ^= 1 << rng.randrange(8)
        path = tmp_path / f"flipped{trial}{(sample_dir / name).suffix}"
        path.write_bytes(bytes(broken))
        command = [sys.executable, "-m", "nanoseq", "inspect", str(path)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode in (0, 1), result.stderr[-2000:]
        assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
        if result.returncode == 1:
            assert result.stdout == "" and str(path) in result.stderr.strip().splitlines()[-1]
        else:
            rows = result.stdout.splitlines()[1:]
            assert all(np.isfinite(float(row.split("\t")[10])) for row in rows)
        outcomes.add(result.returncode)
    assert outcomes  # (most flips land in signal: read, or skipped as implausible)
