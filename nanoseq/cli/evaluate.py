"""``nanoseq evaluate``: basecalls against a reference: per-read TSV, a metrics JSON and, if
asked, the calibration of qualities drawn."""

from __future__ import annotations

import json

import click

from nanoseq.cli.options import PATH


@click.command()
@click.argument("calls", type=click.Path())
@click.option(
    "-r", "--reference", required=True, type=click.Path(), help="FASTA the reads come from."
)
@click.option("-o", "--output", type=PATH, help="Metrics JSON (default: CALLS.eval.json).")
@click.option("--per-read", help="Per-read TSV (default: CALLS.eval.tsv).")
@click.option(
    "--plot",
    "picture",
    type=PATH,
    help="Also draw the calibration of qualities (as `nanoseq plot calibration`): .png or .svg.",
)
def evaluate(calls, reference, output, per_read, picture):
    """Align calls (FASTQ, FASTA, SAM, BAM) with minimap2 and report identity and errors."""
    from nanoseq import plots
    from nanoseq.basecaller.evaluate import evaluate_calls

    if picture is not None:
        plots.picture_format(picture)  # a wrong suffix fails before the work
    metrics_path = output or f"{calls}.eval.json"
    metrics = evaluate_calls(calls, reference, metrics_path, per_read or f"{calls}.eval.tsv")
    if picture is not None:
        plots.save(plots.calibration(metrics_path), picture)
    click.echo(json.dumps(metrics))
