"""Score a file of basecalls against a reference (``nanoseq evaluate``)."""

from __future__ import annotations

from pathlib import Path

from nanoseq.errors import InputError
from nanoseq.io import read_calls, write_metrics, write_tsv
from nanoseq.metrics import Aligner, summarise

PER_READ_COLUMNS = [
    "read_id",
    "read_length",
    "mapped",
    "identity",
    "genome",
    "genome_start",
    "genome_end",
    "strand",
    "aligned_length",
    "mismatch_rate",
    "insertion_rate",
    "deletion_rate",
    "homopolymers",
    "homopolymers_correct",
]


def evaluate_calls(calls: str, reference: str, metrics_path: str, per_read_path: str) -> dict:
    """Write the per-read TSV and the metrics JSON; return the metrics."""
    for output in (metrics_path, per_read_path):
        if Path(output).resolve() in (Path(calls).resolve(), Path(reference).resolve()):
            raise InputError("an output would overwrite an input", output)
    aligner = Aligner(reference)
    rows = [
        {"read_id": c.read_id, **aligner.align(c.sequence, c.qualities, read_qscore=c.mean_qscore)}
        for c in read_calls(calls)
    ]
    if not rows:
        raise InputError("no reads in file", calls)
    metrics = {"calls": str(calls), "reference": str(reference), **summarise(rows)}
    write_tsv(per_read_path, rows, PER_READ_COLUMNS)
    write_metrics(metrics_path, metrics)
    return metrics
