"""Pictures of runs (``nanoseq plot``), drawn with Matplotlib's non-interactive Agg backend and
saved as PNG or SVG by the file's suffix: a training run's curves, a read's squiggle with its
bases placed by the move table, and the calibration of qualities from ``evaluate``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError
from nanoseq.io import atomic_write

FORMATS = (".png", ".svg")


def picture_format(path: str | Path) -> str:
    """``png`` or ``svg``, by the suffix of ``path``; an input error for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"pictures are {' or '.join(FORMATS)}", path)
    return suffix[1:]


def save(figure, path: str | Path) -> None:
    """Write ``figure`` as PNG or SVG (by suffix), through a temporary file."""
    picture = picture_format(path)
    figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format=picture, dpi=100)


def training(folder: str | Path):
    """A run's ``training.csv`` (any family): its losses and validation figures against the
    training time, the learning rate on an axis of its own."""
    from matplotlib.figure import Figure

    path = Path(folder) / "training.csv"
    if not path.is_file():
        raise InputError("no training.csv (not a training run's folder)", folder)
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise InputError("no epochs logged yet", path)
    x_name = "seconds" if rows[0].get("seconds") else "epoch"
    x = np.array([float(row[x_name]) for row in rows]) / (60 if x_name == "seconds" else 1)
    figure = Figure(figsize=(8, 5))
    losses, figures = figure.subplots(2, 1, sharex=True)
    for column in rows[0]:
        values = _numbers(rows, column)
        if values is None or column in ("epoch", "seconds", "learning_rate"):
            continue
        target = losses if column.endswith("loss") else figures
        target.plot(x, values, marker="o", label=column)
    losses.set_ylabel("loss")
    figures.set_ylabel("validation")
    figures.set_xlabel("training minutes" if x_name == "seconds" else "epoch")
    rates = _numbers(rows, "learning_rate")
    if rates is not None:
        axis = losses.twinx()
        axis.plot(x, rates, color="grey", linestyle=":", label="learning rate")
        axis.set_ylabel("learning rate")
    for axes in (losses, figures):
        if axes.lines:
            axes.legend(loc="best", fontsize="small")
    figure.suptitle(f"training: {Path(folder).resolve().name}")
    return figure


def _numbers(rows: list[dict], column: str) -> np.ndarray | None:
    try:
        return np.array([float(row[column]) for row in rows])
    except (TypeError, ValueError):
        return None


def squiggle(reads, read_id: str, calls: str | Path | None = None, samples: int = 2000):
    """The first ``samples`` of a read's signal in pA; with ``calls`` (SAM/BAM with move
    tables), each base at the sample where the move table puts it."""
    from matplotlib.figure import Figure

    from nanoseq.signal.readers import read_signal

    read = next(iter(read_signal(reads, {read_id})), None)
    if read is None:
        raise InputError(f"no read {read_id}", " ".join(map(str, reads)))
    pa = read.pa[:samples]
    figure = Figure(figsize=(12, 4))
    axes = figure.add_subplot()
    axes.plot(np.arange(len(pa)) / read.sample_rate, pa, linewidth=0.6, color="black")
    if calls is not None:
        for base, sample in _placed(calls, read_id):
            if sample < len(pa):
                axes.axvline(sample / read.sample_rate, color="tab:blue", alpha=0.15)
                axes.text(sample / read.sample_rate, pa.max(), base, fontsize=6, ha="left")
    axes.set_xlabel("seconds")
    axes.set_ylabel("current (pA)")
    axes.set_title(f"{read_id} ({read.filename}, {read.chemistry})")
    return figure


def _placed(calls, read_id: str) -> list[tuple[str, int]]:
    """Each called base of the read and its first sample, from its record's move table."""
    import pysam

    from nanoseq.io import quiet_htslib
    from nanoseq.signal.labels import placed_bases

    with quiet_htslib(), pysam.AlignmentFile(str(calls), check_sq=False) as handle:
        for record in handle.fetch(until_eof=True):
            found = record.query_name == read_id and not record.is_supplementary
            if found and record.has_tag("mv"):
                sequence, starts = placed_bases(record)
                return list(zip(sequence, starts.tolist(), strict=True))
    raise InputError(f"no record of read {read_id} with a move table", calls)


def calibration(metrics: str | Path):
    """Predicted against measured quality per Q bin, from ``nanoseq evaluate``'s metrics JSON;
    the diagonal is a calibrated basecaller, each point's size the bases it holds, its bar the
    measured Q's 95 % interval (where the metrics have it)."""
    from matplotlib.figure import Figure

    try:
        bins = json.loads(Path(metrics).read_text())["calibration"]
    except (OSError, ValueError, KeyError):
        raise InputError("not the metrics of nanoseq evaluate", metrics) from None
    if not bins:
        raise InputError("no base qualities to draw: the calls had none", metrics)
    q = np.array([b["q"] for b in bins])
    measured = np.array([b["measured_q"] for b in bins])
    bases = np.array([b["bases"] for b in bins])
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot()
    top = max(q.max(initial=10), measured.max(initial=10)) + 2
    axes.plot([0, top], [0, top], color="grey", linestyle=":", label="calibrated")
    axes.scatter(q, measured, s=10 + 90 * bases / max(bases.max(initial=1), 1), label="bins")
    if bins and all("measured_q_interval" in b for b in bins):
        low, high = np.array([b["measured_q_interval"] for b in bins]).T
        axes.errorbar(q, measured, yerr=[measured - low, high - measured], fmt="none", lw=0.8)
    axes.set_xlabel("predicted Q")
    axes.set_ylabel("measured Q")
    axes.set_title(f"calibration: {int(bases.sum())} bases")
    axes.legend(loc="upper left")
    return figure
