"""``nanoseq train``: train a model of one of the families."""

from __future__ import annotations

import click

from nanoseq.cli import options


@click.group()
def train():
    """Train a model."""


@train.command()
@click.argument("data", nargs=-1, required=True, type=click.Path())
@options.training_run
@click.option("--batch-size", default=32, show_default=True, type=options.POSITIVE)
@options.optimizer(clip=2.0)
@click.option(
    "--valid",
    "validation",
    type=click.Path(),
    help="Chunks (a `prepare` folder) to validate on; all of DATA then trains.",
)
@click.option(
    "--valid-fraction",
    default=0.05,
    show_default=True,
    type=options.Finite(0, 1, min_open=True, max_open=True),
    help="Without --valid: the last share of the first DATA's chunks (in read order).",
)
@click.option(
    "--init",
    help="Train this model further (a bundled name or .keras path; "
    "--rnn/--units/--layers then do not apply).",
)
@click.option("--rnn", default="lstm", type=click.Choice(["lstm", "gru"]), show_default=True)
@click.option(
    "--units", default=96, show_default=True, type=options.POSITIVE, help="Units per RNN direction."
)
@click.option(
    "--layers",
    default=3,
    show_default=True,
    type=click.IntRange(0, 8),
    help="Bidirectional RNN layers (0: convolutions alone).",
)
@click.option(
    "--upsample",
    type=options.POSITIVE,
    help="Output frames per RNN step (output stride = convolution stride / this) "
    "[default: 1, or --init's].",
)
@click.option(
    "--head",
    type=click.Choice(["ctc", "crf"]),
    help="CTC, or a CRF over the last three bases (bonito's CTC-CRF); with --init, another "
    "than its own trains a new head on its backbone [default: ctc, or --init's].",
)
def basecaller(data, run, validation, **options):
    """Train a basecaller on chunks from `nanoseq prepare` or `nanoseq simulate --chunks`
    (folders DATA, joined; they must have been prepared alike)."""
    from nanoseq.basecaller.train import train_basecaller
    from nanoseq.signal.labels import ChunkSet

    train_basecaller(
        [ChunkSet.load(folder) for folder in data],
        run,
        validation=ChunkSet.load(validation) if validation else None,
        **options,
    )
