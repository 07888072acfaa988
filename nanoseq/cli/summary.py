"""``nanoseq summary``: the sequencing summary of a SAM/BAM file of calls."""

from __future__ import annotations

import click

from nanoseq.cli.options import PATH


@click.command()
@click.argument("calls", type=click.Path())
@click.option("-o", "--output", type=PATH, default="-", help="The TSV [default: stdout].")
def summary(calls, output):
    """Write the sequencing summary of CALLS (SAM/BAM, e.g. from `basecall` or dorado)."""
    from nanoseq.basecaller.summary import summary_rows
    from nanoseq.io import write_tsv

    columns, rows = summary_rows(calls)
    write_tsv(output, list(rows) if output == "-" else rows, columns)
