"""`nanoseq seq2seq train | translate | evaluate` end to end on 100 real Multi30k pairs."""

import csv
import json

import pytest

from . import invoke
from .test_inspect import one_line_error


def train_small(pairs, output, *options):
    return invoke(
        "seq2seq",
        "train",
        "--pairs",
        pairs,
        "--valid-pairs",
        pairs,
        "-o",
        output,
        "--lowercase",
        "--tokenize",
        "--units",
        32,
        "--embedding-dim",
        16,
        "--batch-size",
        25,
        *options,
    )


@pytest.fixture(scope="module")
def pairs(sample_dir):
    return sample_dir / "text/multi30k_de_en.tsv"


TRAINED = ("--attention", "luong", "--cell", "lstm", "--subwords", 300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, pairs):
    output = tmp_path_factory.mktemp("seq2seq") / "run"
    result = train_small(pairs, output, "--epochs", 2, *TRAINED)
    assert result.exit_code == 0, result.output
    return output


def test_train_writes_log_checkpoint_and_model(trained):
    assert {"model.keras", "checkpoint.keras", "training.csv"} <= {
        p.name for p in trained.iterdir()
    }
    with open(trained / "training.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert {"loss", "val_loss", "val_bleu", "val_chrf"} <= set(rows[0])
    assert float(rows[1]["val_loss"]) < float(rows[0]["val_loss"])


def test_resume_continues_the_log(tmp_path, trained, pairs):
    output = tmp_path / "run"
    output.mkdir()
    for name in ("checkpoint.keras", "training.csv"):
        (output / name).write_bytes((trained / name).read_bytes())
    words = train_small(pairs, output, "--epochs", 3, "--resume")  # no --subwords
    assert words.exit_code == 1 and "its vocabularies are not this run's" in words.stderr
    result = train_small(pairs, output, "--epochs", 3, "--resume", *TRAINED)
    assert result.exit_code == 0, result.output
    with open(output / "training.csv") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1, 2]


def test_translate_keeps_the_order_of_stdin(trained, tmp_path):
    lines = "Ein Hund rennt.\nZwei Männer.\n\nEin kleines Mädchen klettert in ein Spielhaus.\n"
    model = trained / "model.keras"
    result = invoke("seq2seq", "translate", "-m", model, input=lines)
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 4
    out = tmp_path / "out.txt"
    assert invoke("seq2seq", "translate", "-m", model, "-o", out, input=lines).exit_code == 0
    assert out.read_text() == result.stdout
    metrics = json.loads((tmp_path / "out.txt.metrics.json").read_text())
    assert metrics["sentences"] == 4 and metrics["beam_width"] == 1


def test_evaluate_writes_metrics_translations_and_attention_map(trained, pairs, tmp_path):
    out, hyps, png = tmp_path / "m.json", tmp_path / "hyps.txt", tmp_path / "attention.png"
    result = invoke(
        "seq2seq",
        "evaluate",
        "-m",
        trained / "model.keras",
        "--pairs",
        pairs,
        "-o",
        out,
        "--translations",
        hyps,
        "--attention-map",
        png,
        "--sentence",
        3,
        "--beam-width",
        3,
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics == json.loads(out.read_text())
    assert 0 <= metrics["bleu"] <= 100 and metrics["sentences"] == 100
    assert "tok:13a" in metrics["bleu_signature"]
    translations = hyps.read_text()
    assert len(translations.splitlines()) == 100 and "@@" not in translations  # words again
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_one_line(tmp_path, pairs):
    (tmp_path / "bad.tsv").write_text("no tab\n")
    cases = [
        (
            "seq2seq",
            "train",
            "--pairs",
            tmp_path / "bad.tsv",
            "--valid-pairs",
            pairs,
            "-o",
            tmp_path,
        ),
        ("seq2seq", "train", "--source", pairs, "--valid-pairs", pairs, "-o", tmp_path),
        ("seq2seq", "translate", "-m", "char_tinyshakespeare", pairs),
        ("seq2seq", "translate", "-m", "dna_r941_lambda", pairs),
        ("seq2seq", "evaluate", "-m", tmp_path / "none.keras", "--pairs", pairs),
    ]
    problems = [
        "no tab-separated second column",
        "--source and --target",
        "char_tinyshakespeare: is a language model; this needs a seq2seq model",
        "dna_r941_lambda: is a basecaller; this needs a seq2seq model",
        "no such",
    ]
    for args, problem in zip(cases, problems, strict=True):
        line = one_line_error(*args, real="needs a seq2seq" in problem)
        assert problem in line and "Traceback" not in line
