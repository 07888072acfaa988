"""``nanoseq inspect``: a TSV of every read (or every file) found in signal files and folders."""

from __future__ import annotations

import click

from nanoseq.cli.options import PATH

COLUMNS = [
    "read_id",
    "filename",
    "format",
    "channel",
    "mux",
    "read_number",
    "start_time",
    "sample_rate",
    "samples",
    "duration_s",
    "mean_pa",
    "run_id",
    "chemistry",
    "sequencing_kit",
    "flow_cell_product_code",
]
SUMMARY_COLUMNS = [
    "filename",
    "format",
    "reads",
    "samples",
    "duration_s",
    "sample_rate",
    "run_id",
    "chemistry",
    "sequencing_kit",
    "flow_cell_product_code",
]


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--summary", is_flag=True, help="One line per file instead of one per read.")
@click.option(
    "-o", "--output", type=PATH, default="-", help="Write the TSV here (default: stdout)."
)
def inspect(paths, summary, output):
    """List the reads in signal files or folders (pod5, fast5, slow5, blow5) as a TSV."""
    from nanoseq.io import write_tsv
    from nanoseq.signal.readers import find_signal_files
    from nanoseq.signal.summary import file_rows, read_rows

    files = find_signal_files(paths)  # bad paths fail before the header is written
    rows = file_rows(files) if summary else read_rows(files)
    if output == "-":  # a file that fails half-way leaves stdout untouched (a file is atomic)
        rows = list(rows)
    write_tsv(output, rows, SUMMARY_COLUMNS if summary else COLUMNS)
