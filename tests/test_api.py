"""The public API: what `dir` and `help` show, the same defaults as the CLI, one entry per
family that refuses a model of another."""

import inspect
import pydoc

import pytest

import nanoseq
from nanoseq.errors import InputError
from nanoseq.models import DEFAULT_BASECALLER


def test_dir_and_help_show_the_public_api_only():
    names = dir(nanoseq)
    assert "basecall" in names and "load_model" in names and "train_basecaller" in names
    assert not {"importlib", "sys", "KERAS_MODULES", "register_keras_objects"} & set(names)
    text = pydoc.render_doc(nanoseq, renderer=pydoc.plaintext)
    for name in nanoseq.__all__:
        assert name in text
    assert "__getattr__" not in text and "__dir__" not in text
    assert "def decode" in inspect.getsource(nanoseq.Basecaller)  # decode a model's output


def test_the_library_basecalls_as_the_cli_does(sample_dir, tmp_path):
    from click.testing import CliRunner

    from nanoseq.cli import main
    from nanoseq.io import read_calls

    cli = main.get_command(None, "basecall")
    width = next(p for p in cli.params if p.name == "beam_width").default
    assert inspect.signature(nanoseq.basecall).parameters["beam_width"].default == width
    out = tmp_path / "calls.fastq"
    args = ["basecall", str(sample_dir / "reads/lambda.pod5"), "-o", str(out), "--max-reads", "1"]
    assert CliRunner().invoke(main, args).exit_code == 0
    record, *_ = read_calls(out)
    reads = nanoseq.read_signal([sample_dir / "reads/lambda.pod5"])
    read, call = next(nanoseq.basecall(reads))
    assert read.read_id == record.read_id and call.sequence == record.sequence
    assert call.qualities.tolist() == record.qualities.tolist()
    assert call.mean_qscore == pytest.approx(record.mean_qscore, abs=1e-4)  # its qs tag
    # the read's qscore counts what its model misses (the bundled model's fitted scale)
    scale = nanoseq.Basecaller.from_preset(DEFAULT_BASECALLER).head.read_error_scale
    assert call.error_scale == scale > 1


@pytest.mark.parametrize(
    "task, name, found",
    [
        ("Basecaller", "char_tinyshakespeare", "a language model"),
        ("LanguageModel", "dna_r941_lambda", "a basecaller"),
        ("Seq2Seq", "dna_r941_lambda", "a basecaller"),
    ],
)
def test_from_preset_refuses_another_family(task, name, found):
    cls = getattr(nanoseq, task)
    with pytest.raises(InputError) as error:
        cls.from_preset(name)
    assert str(error.value).startswith(f"{name}: is {found}; this needs a {cls.family}")
