"""``nanoseq plot``: pictures of runs (PNG or SVG by the output's suffix)."""

from __future__ import annotations

import click

from nanoseq.cli.options import PATH

output = click.option("-o", "--output", type=PATH, required=True, help="picture.png or picture.svg")


@click.group()
def plot():
    """Draw a training run, a read's squiggle or the calibration of qualities."""


@plot.command()
@click.argument("run", type=click.Path())
@output
def training(run, output):
    """Loss, validation figures and learning rate of RUN (a `train` folder) against time."""
    from nanoseq import plots

    plots.save(plots.training(run), output)


@plot.command()
@click.argument("reads", nargs=-1, required=True, type=click.Path())
@click.option("--read-id", required=True, help="The read to draw.")
@click.option("--calls", type=click.Path(), help="SAM/BAM with move tables: place the bases.")
@click.option("--samples", default=2000, show_default=True, type=click.IntRange(10))
@output
def squiggle(reads, read_id, calls, samples, output):
    """The signal of one read in pA, its bases placed by the move table of --calls."""
    from nanoseq import plots

    plots.save(plots.squiggle(reads, read_id, calls, samples), output)


@plot.command()
@click.argument("metrics", type=click.Path())
@output
def calibration(metrics, output):
    """Predicted against measured quality, from `nanoseq evaluate`'s metrics JSON."""
    from nanoseq import plots

    plots.save(plots.calibration(metrics), output)
