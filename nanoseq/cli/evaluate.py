"""``nanoseq evaluate``: basecalls against a reference: per-read TSV and a metrics JSON."""

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
def evaluate(calls, reference, output, per_read):
    """Align calls (FASTQ, FASTA, SAM, BAM) with minimap2 and report identity and errors."""
    from nanoseq.basecaller.evaluate import evaluate_calls

    metrics = evaluate_calls(
        calls, reference, output or f"{calls}.eval.json", per_read or f"{calls}.eval.tsv"
    )
    click.echo(json.dumps(metrics))
