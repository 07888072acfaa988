"""``nanoseq train``: train a model of one of the families."""

from __future__ import annotations

import click

from nanoseq.cli import options


@click.group()
def train():
    """Train a model."""


@train.command()
@click.argument("data", type=click.Path())
@click.option("-o", "--output", required=True, help="Folder for checkpoints, log and model.")
@click.option("--epochs", default=10, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--lr", "learning_rate", default=2e-3, show_default=True, help="Peak learning rate.")
@click.option("--clip", "clipnorm", default=2.0, show_default=True, help="Gradient norm clip.")
@click.option(
    "--valid-fraction",
    default=0.05,
    show_default=True,
    help="Last share of chunks (in read order) kept for validation.",
)
@click.option("--rnn", default="lstm", type=click.Choice(["lstm", "gru"]), show_default=True)
@click.option("--units", default=96, show_default=True, help="Units per RNN direction.")
@click.option("--layers", default=3, show_default=True, help="Bidirectional RNN layers.")
@click.option("--max-minutes", type=float, help="Stop after this much wall time.")
@click.option("--resume", is_flag=True, help="Continue from OUTPUT/checkpoint.keras.")
@options.strategy
@click.option("--mixed-precision", is_flag=True, help="float16 compute on GPU.")
@click.option("--seed", default=1, show_default=True)
def basecaller(data, output, **options):
    """Train a basecaller on chunks from `nanoseq prepare` (folder DATA)."""
    from nanoseq.basecaller.train import train_basecaller
    from nanoseq.signal.labels import load_chunks

    train_basecaller(load_chunks(data), output, **options)
