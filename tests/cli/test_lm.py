"""`nanoseq lm train | evaluate | generate` end to end on a small real text."""

import csv
import json

import pytest
from click.testing import CliRunner

from nanoseq.cli import main

from . import invoke
from .test_inspect import one_line_error

SONNET = """From fairest creatures we desire increase,
That thereby beauty's rose might never die,
But as the riper should by time decease,
His tender heir might bear his memory:
But thou contracted to thine own bright eyes,
Feed'st thy light's flame with self-substantial fuel,
Making a famine where abundance lies,
Thy self thy foe, to thy sweet self too cruel:
"""


def train_small(folder, *options):
    """A small model on the folder's train.txt / valid.txt, into folder/run."""
    args = [
        "lm",
        "train",
        folder / "train.txt",
        "--valid",
        folder / "valid.txt",
        "-o",
        folder / "run",
        "--units",
        48,
        "--embedding-dim",
        16,
        "--layers",
        1,
        "--batch-size",
        4,
        "--steps",
        40,
        *options,
    ]
    return invoke(*args)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm")
    (folder / "train.txt").write_text(SONNET * 6)
    (folder / "valid.txt").write_text(SONNET[:200])
    result = train_small(folder, "--epochs", "3", "--lr", "1e-2")
    assert result.exit_code == 0, result.output
    return folder


def test_train_writes_log_checkpoint_and_model(trained):
    run_dir = trained / "run"
    assert {"model.keras", "checkpoint.keras", "training.csv"} <= {
        p.name for p in run_dir.iterdir()
    }
    with open(run_dir / "training.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    losses = [float(r["val_nats_per_token"]) for r in rows]
    assert losses[-1] < losses[0]


def test_resume_continues_the_log(trained):
    words = train_small(trained, "--epochs", "4", "--resume", "--level", "word")
    assert words.exit_code == 1 and "its vocabularies are not this run's" in words.stderr
    result = train_small(trained, "--epochs", "4", "--resume")
    assert result.exit_code == 0
    with open(trained / "run" / "training.csv") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1, 2, 3]


def test_evaluate_prints_one_json_line(trained, tmp_path):
    out = tmp_path / "m.json"
    result = CliRunner().invoke(
        main,
        [
            "lm",
            "evaluate",
            "-m",
            str(trained / "run/model.keras"),
            "--text",
            str(trained / "valid.txt"),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0
    metrics = json.loads(result.stdout)
    assert metrics == json.loads(out.read_text())
    assert metrics["tokens"] == len(SONNET[:200]) - 1
    assert metrics["bits_per_char"] == pytest.approx(metrics["nats_per_token"] / 0.693147, 1e-4)
    assert 1 < metrics["perplexity"] < 40


def test_generate_is_seeded(trained):
    args = ["lm", "generate", "-m", str(trained / "run/model.keras"), "-p", "From", "-n", "30"]
    a = CliRunner().invoke(main, [*args, "--seed", "3"]).stdout
    b = CliRunner().invoke(main, [*args, "--seed", "3"]).stdout
    assert a == b and a.startswith("From") and len(a.strip()) == 34
    greedy = CliRunner().invoke(main, [*args, "--temperature", "0"]).stdout
    beam = CliRunner().invoke(main, [*args, "--beam-width", "1"]).stdout
    assert greedy == beam


def test_bad_input_is_one_line(tmp_path):
    line = one_line_error("lm", "evaluate", "-m", tmp_path / "none.keras", "--text", tmp_path / "x")
    assert "none.keras" in line
    (tmp_path / "empty.txt").write_text("")
    empty = tmp_path / "empty.txt"
    line = one_line_error("lm", "train", empty, "--valid", empty, "-o", tmp_path / "run", real=True)
    assert "empty text" in line


def test_a_basecaller_is_refused_in_one_line(tmp_path):
    (tmp_path / "text.txt").write_text(SONNET)
    commands = [
        ("lm", "generate", "-m", "dna_r941_lambda", "-p", "From"),
        ("lm", "evaluate", "-m", "dna_r941_lambda", "--text", tmp_path / "text.txt"),
    ]
    for args, real in zip(commands, [True, False], strict=True):
        line = one_line_error(*args, real=real)
        assert line.startswith("nanoseq: error: dna_r941_lambda: is a basecaller;")
        assert "needs a language model" in line and "Traceback" not in line


def test_bundled_model_generates_out_of_the_box():
    result = CliRunner().invoke(
        main, ["lm", "generate", "--prompt", "ROMEO:", "-n", "80", "--seed", "1"]
    )
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("ROMEO:") and text.endswith("\n") and len(text) == 6 + 80 + 1
    words = [w for w in text[6:].split() if w.isalpha()]
    assert len(words) >= 5  # it writes words, not noise


@pytest.mark.parametrize(
    "flags, expected", [([], "None"), (["--xla"], "True"), (["--no-xla"], "False")]
)
def test_xla_can_be_forced_either_way(tmp_path, flags, expected):
    """Language models default to XLA on CPUs: --no-xla turns it off, --xla on for any family."""
    import click

    from nanoseq.cli.options import training_run

    @click.command()
    @training_run
    def command(run):
        click.echo(repr(run.xla))

    result = CliRunner().invoke(command, ["-o", str(tmp_path), *flags])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == expected
