"""A run basecalled in many jobs (the Snakemake workflow): merge the per-job summaries into one
run summary and the per-job metrics into run metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError
from nanoseq.io import write_metrics, write_tsv

COUNTS = ("reads", "bases", "samples", "below_min_qscore", "resumed_reads")


def merge_runs(summaries, metrics, summary_out, metrics_out) -> dict:
    """Concatenate the summary TSVs (one header) and add up the jobs' metrics."""
    rows, columns = [], None
    for path in summaries:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            if columns is None:
                columns = reader.fieldnames
            elif reader.fieldnames != columns:
                raise InputError("summary columns differ from the first file's", path)
            rows.extend(reader)
    if columns is None:
        raise InputError("no summaries to merge")
    jobs = [json.loads(Path(path).read_text()) for path in metrics]
    run = {"jobs": len(jobs), **{key: sum(job.get(key, 0) for job in jobs) for key in COUNTS}}
    run["job_seconds"] = round(sum(job.get("seconds", 0.0) for job in jobs), 3)
    if "alignment_identity" in columns:
        identity = np.array([float(row["alignment_identity"]) for row in rows] or [0.0])
        run["alignment"] = {
            "mapped_fraction": float(np.mean([row["alignment_genome"] != "*" for row in rows]))
            if rows
            else 0.0,
            "median_identity": float(np.median(identity)),
            "mean_identity": float(np.mean(identity)),
        }
    write_tsv(summary_out, rows, columns)
    write_metrics(metrics_out, run)
    return run
