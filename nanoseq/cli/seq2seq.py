"""``nanoseq seq2seq``: train, translate with and evaluate encoder-decoder models."""

from __future__ import annotations

import json
import sys

import click

from nanoseq.cli import options
from nanoseq.cli.options import PATH, stacked


def pair_options(prefix: str = ""):
    """``--{prefix}source``/``--{prefix}target`` files, or one ``--{prefix}pairs`` file."""
    dest = prefix.replace("-", "_")
    return stacked(
        click.option(
            f"--{prefix}source",
            f"{dest}source",
            type=click.Path(),
            help="Source sentences, one per line (plain or gzipped).",
        ),
        click.option(
            f"--{prefix}target",
            f"{dest}target",
            type=click.Path(),
            help="Target sentences, line by line with the source.",
        ),
        click.option(
            f"--{prefix}pairs",
            f"{dest}pairs",
            type=click.Path(),
            help="Or one tab-separated file: source, target (more columns are ignored).",
        ),
    )


def read(source, target, pairs, what: str):
    from nanoseq.errors import InputError
    from nanoseq.text.data import read_pairs

    if bool(pairs) == bool(source or target) or not (pairs or (source and target)):
        raise InputError(f"give {what} as --source and --target files, or one --pairs file")
    return read_pairs(source, target, pairs)


decoding_options = stacked(
    click.option(
        "--beam-width", default=1, show_default=True, type=options.POSITIVE, help="1 = greedy."
    ),
    click.option(
        "--length-penalty",
        default=1.0,
        show_default=True,
        type=options.Finite(),
        help="Beam ranking: log probability / length ** this.",
    ),
    click.option(
        "--max-length",
        type=options.POSITIVE,
        help="Longest translation (default 2n+10 tokens).",
    ),
    click.option(
        "--batch-size",
        default=64,
        show_default=True,
        type=options.POSITIVE,
        help="Greedy batch size.",
    ),
)


@click.group()
def seq2seq():
    """Sequence to sequence: encoder-decoder GRU/LSTM with attention."""


@seq2seq.command()
@pair_options()
@pair_options("valid-")
@options.training_run
@click.option("--lowercase", is_flag=True, help="Lower-case both sides.")
@click.option("--tokenize", is_flag=True, help="Split punctuation off words.")
@options.text_model
@click.option(
    "--subwords",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Byte-pair merges learned on each side's training text; words are cut into those "
    "subwords (0: whole words).",
)
@click.option(
    "--max-length",
    default=50,
    show_default=True,
    type=options.POSITIVE,
    help="Drop longer training pairs.",
)
@click.option("--cell", default="gru", type=click.Choice(["gru", "lstm"]), show_default=True)
@click.option("--layers", default=1, show_default=True, type=click.IntRange(1, 4))
@click.option("--bidirectional/--unidirectional", default=True, show_default=True)
@click.option(
    "--attention",
    default="bahdanau",
    type=click.Choice(["bahdanau", "luong", "none"]),
    show_default=True,
)
@click.option("--label-smoothing", default=0.0, show_default=True, type=options.FRACTION)
@click.option("--batch-size", default=64, show_default=True, type=options.POSITIVE)
@options.optimizer(clip=1.0)
@click.option(
    "--patience",
    type=options.POSITIVE,
    help="Stop after this many epochs without a better BLEU.",
)
def train(source, target, pairs, valid_source, valid_target, valid_pairs, run, **kwargs):
    """Train on sentence pairs; validation BLEU picks OUTPUT/model.keras."""
    from nanoseq.text.seq2seq_train import train_seq2seq

    options.check_text_model(kwargs)
    train_seq2seq(
        read(source, target, pairs, "training pairs"),
        read(valid_source, valid_target, valid_pairs, "validation pairs"),
        run,
        **kwargs,
    )


@seq2seq.command()
@click.option("-m", "--model", required=True, help="A seq2seq .keras file.")
@click.argument("input_file", default="-", type=click.Path(allow_dash=True))
@click.option("-o", "--output", type=PATH, help="Translations file (default: stdout).")
@decoding_options
def translate(model, input_file, output, **options):
    """Translate INPUT_FILE (default stdin), one sentence per line, in order."""
    from tqdm import tqdm

    from nanoseq.errors import InputError
    from nanoseq.text.data import read_lines
    from nanoseq.text.translate import translate_file

    if input_file == "-" and sys.stdin is None:
        raise InputError("nothing to translate: stdin is closed (give INPUT_FILE)")
    lines = sys.stdin.read().splitlines() if input_file == "-" else read_lines(input_file)
    if not lines:
        raise InputError("nothing to translate: the input is empty", input_file)
    with tqdm(total=len(lines), unit="sentence", file=sys.stderr, disable=None) as bar:
        translations, _ = translate_file(model, lines, output, progress=bar, **options)
    if output is None:
        click.echo("".join(f"{t}\n" for t in translations), nl=False)


@seq2seq.command()
@click.option("-m", "--model", required=True, help="A seq2seq .keras file.")
@pair_options()
@click.option("-o", "--output", type=PATH, help="Metrics JSON (also printed as one line).")
@click.option("--translations", help="Also write the translations here.")
@click.option("--attention-map", help="PNG of the attention of one sentence's translation.")
@click.option("--sentence", default=1, type=click.IntRange(1), help="Line for --attention-map.")
@decoding_options
def evaluate(model, source, target, pairs, output, translations, attention_map, sentence, **rest):
    """BLEU and chrF (sacrebleu) of the model's translations against reference translations."""
    from tqdm import tqdm

    from nanoseq.io import write_metrics
    from nanoseq.text.translate import evaluate_translation

    sources, references = read(source, target, pairs, "sentences and references")
    with tqdm(total=len(sources), unit="sentence", file=sys.stderr, disable=None) as bar:
        metrics = evaluate_translation(
            model,
            sources,
            references,
            translations,
            attention_map=attention_map,
            sentence=sentence - 1,
            progress=bar,
            **rest,
        )
    if output:
        write_metrics(output, metrics)
    click.echo(json.dumps(metrics))
