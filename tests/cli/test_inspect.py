"""`nanoseq inspect` and the CLI's handling of bad input: one line, non-zero exit, no traceback."""

import csv
import io
import subprocess
import sys

import pytest
from click.testing import CliRunner

from nanoseq.cli import main

from . import invoke


def one_line_error(*args, real=False):
    """The CLI on bad input, in this process or (``real``) as a user runs it: a subprocess, with
    TensorFlow's own start-up noise. Checks exit status 1 and an empty stdout; returns the one
    stderr line."""
    if real:
        command = [sys.executable, "-m", "nanoseq", *map(str, args)]
        result = subprocess.run(command, capture_output=True, text=True)
        status = result.returncode
    else:
        result = invoke(*args)
        status = result.exit_code
    lines = result.stderr.strip().splitlines()
    assert status == 1 and len(lines) == 1 and result.stdout == "", result.stderr
    return lines[0]


def table(text):
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom nanoseq.cli import main\n"
        "r = CliRunner().invoke(main, ['--help'])\nassert r.exit_code == 0, r.output\n"
        "assert 'inspect' in r.output\nassert 'tensorflow' not in sys.modules\n"
        "assert 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_inspect_reads(sample_dir):
    result = CliRunner().invoke(main, ["inspect", str(sample_dir)])
    assert result.exit_code == 0, result.output
    rows = table(result.stdout)
    assert len(rows) == 4 + 1 + 1 + 8 + 2 + 1 + 6 + 1
    for column in (
        "read_id",
        "filename",
        "format",
        "channel",
        "sample_rate",
        "samples",
        "duration_s",
        "run_id",
    ):
        assert column in rows[0]
    lam = [r for r in rows if r["filename"] == "lambda.pod5"]
    assert {r["format"] for r in lam} == {"pod5"} and len(lam) == 6
    assert all(60 < float(r["mean_pa"]) < 120 for r in lam)
    v1 = next(r for r in rows if r["filename"] == "single_read_v1.fast5")
    assert v1["samples"] == "124416" and float(v1["duration_s"]) == pytest.approx(31.104)


def test_inspect_summary_to_file(sample_dir, tmp_path):
    out = tmp_path / "files.tsv"
    result = CliRunner().invoke(main, ["inspect", "--summary", "-o", str(out), str(sample_dir)])
    assert result.exit_code == 0, result.output
    rows = {r["filename"].rsplit("/", 1)[-1]: r for r in table(out.read_text())}
    assert len(rows) == 8
    assert rows["r1041_4khz.blow5"]["reads"] == "8"
    assert rows["single_read_multi_layout.fast5"]["sample_rate"] == "6024.0"
    assert rows["lambda.pod5"]["run_id"] == "lambda-sample"


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: d / "missing.pod5", "no such file or folder"),
        (lambda d: d, "no signal files"),
        (lambda d: (d / "x.pod5").write_text("not signal") and d / "x.pod5", "not a pod5 file"),
    ],
)
def test_bad_input_is_one_line(tmp_path, make, message):
    path = make(tmp_path)
    line = one_line_error("inspect", path, real=True)
    assert message in line and str(path) in line


@pytest.mark.parametrize(
    "name,cut",
    [
        ("reads/lambda.pod5", 2),
        ("formats/multi_vbz.fast5", 2),
        ("formats/r1041_4khz.blow5", 2),
        ("formats/r1041_4khz.blow5", 200),
        ("formats/r1041_two_reads.slow5", 2),
        ("formats/r1041_two_reads.slow5", 400),
    ],
)
def test_truncated_file_is_one_line(sample_dir, tmp_path, name, cut):
    data = (sample_dir / name).read_bytes()
    path = tmp_path / ("cut" + (sample_dir / name).suffix)
    path.write_bytes(data[: len(data) // cut])
    assert str(path) in one_line_error("inspect", "-o", tmp_path / "out.tsv", path)
    assert not (tmp_path / "out.tsv").exists()  # no half-written output


def test_vbz_plugin_missing_is_one_line(sample_dir):
    code = (
        "import sys; sys.modules['vbz_h5py_plugin'] = None\n"
        "from nanoseq.cli import main\n"
        f"main(['inspect', {str(sample_dir / 'formats/multi_vbz.fast5')!r}])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "VBZ" in result.stderr and "multi_vbz.fast5" in result.stderr
