"""``nanoseq lm``: train, evaluate and sample character/word language models."""

from __future__ import annotations

import json

import click

from nanoseq.cli import options as shared
from nanoseq.models import DEFAULT_LANGUAGE_MODEL


@click.group()
def lm():
    """Language models (character or word RNN/GRU/LSTM)."""


@lm.command()
@click.argument("train_files", nargs=-1, required=True, type=click.Path())
@click.option(
    "--valid",
    "valid_files",
    multiple=True,
    required=True,
    type=click.Path(),
    help="Validation text (repeat for several files).",
)
@shared.training_run
@click.option("--level", default="char", type=click.Choice(["char", "word"]), show_default=True)
@click.option(
    "--cell", default="lstm", type=click.Choice(["rnn", "gru", "lstm"]), show_default=True
)
@click.option("--layers", default=2, show_default=True, type=click.IntRange(1, 4))
@shared.text_model
@click.option("--layer-norm", is_flag=True)
@click.option(
    "--batch-size",
    default=32,
    show_default=True,
    type=shared.POSITIVE,
    help="Rows read in parallel.",
)
@click.option(
    "--steps", default=100, show_default=True, type=shared.POSITIVE, help="BPTT window length."
)
@click.option("--optimizer", default="adam", type=click.Choice(["adam", "sgd"]), show_default=True)
@shared.optimizer(clip=5.0)
@click.option(
    "--decay", default=0.5, show_default=True, type=shared.RATE, help="Factor for --decay-from."
)
@click.option(
    "--decay-from",
    type=shared.POSITIVE,
    help="Multiply the lr by --decay every epoch from this.",
)
def train(train_files, valid_files, run, **options):
    """Train a language model on TRAIN_FILES (plain or gzipped text)."""
    from nanoseq.text.lm_train import train_language_model

    shared.check_text_model(options)
    train_language_model(list(train_files), list(valid_files), run, **options)


@lm.command()
@click.option("-m", "--model", default=DEFAULT_LANGUAGE_MODEL, show_default=True)
@click.option("--text", "text_file", required=True, type=click.Path(), help="Held-out text.")
@click.option("-o", "--output", type=shared.PATH, help="Also write the metrics JSON here.")
def evaluate(model, text_file, output):
    """Cross-entropy of a whole text, state carried across it: one JSON line."""
    from nanoseq.io import write_metrics
    from nanoseq.text.lm_evaluate import evaluate_text

    metrics = evaluate_text(model, text_file)
    if output:
        write_metrics(output, metrics)
    click.echo(json.dumps(metrics))


@lm.command()
@click.option("-m", "--model", default=DEFAULT_LANGUAGE_MODEL, show_default=True)
@click.option("-p", "--prompt", default="", help="Text to continue.")
@click.option(
    "-n",
    "--length",
    default=300,
    show_default=True,
    type=shared.POSITIVE,
    help="Tokens to generate.",
)
@click.option(
    "--temperature", default=1.0, show_default=True, type=shared.Finite(0), help="0 = greedy."
)
@click.option("--top-k", type=shared.POSITIVE, help="Sample from the k likeliest tokens.")
@click.option(
    "--top-p",
    type=shared.Finite(0, 1, min_open=True),
    help="Sample from the likeliest tokens that hold this much probability.",
)
@click.option("--beam-width", type=shared.POSITIVE, help="Beam search instead of sampling.")
@click.option("--length-penalty", default=0.0, show_default=True, type=shared.Finite())
@click.option("--seed", type=shared.SEED)
def generate(model, prompt, length, temperature, top_k, top_p, beam_width, length_penalty, seed):
    """Continue PROMPT with the model; the prompt and its continuation go to stdout."""
    from nanoseq.text.generate import generate_text

    click.echo(
        generate_text(
            model, prompt, length, temperature, top_k, top_p, beam_width, length_penalty, seed
        )
    )
