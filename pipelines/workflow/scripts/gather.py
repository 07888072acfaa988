"""Merge per-job sequencing summaries into one run summary and write run metrics."""

import sys

from nanoseq.basecaller.runs import merge_runs

with open(snakemake.log[0], "w") as log:  # noqa: F821 (snakemake injects it)
    sys.stderr = log
    merge_runs(
        snakemake.input.summaries,  # noqa: F821
        snakemake.input.metrics,  # noqa: F821
        snakemake.output.summary,  # noqa: F821
        snakemake.output.metrics,  # noqa: F821
    )
