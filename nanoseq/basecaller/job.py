"""A basecalling job: signal files in; calls, a sequencing summary and run metrics out.

Outputs for ``-o calls.bam``: ``calls.bam``, ``calls.bam.summary.tsv`` and
``calls.bam.metrics.json``; with stdout output only the FASTQ is written (logs go to stderr).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from nanoseq.basecaller.choice import AUTO
from nanoseq.basecaller.model import Basecaller
from nanoseq.basecaller.pipeline import basecall
from nanoseq.errors import InputError
from nanoseq.io import CallsWriter, write_metrics
from nanoseq.metrics import Aligner, summarise
from nanoseq.models import DEFAULT_BEAM_WIDTH
from nanoseq.progress import Progress
from nanoseq.runtime import asked_backend, set_threads
from nanoseq.signal.readers import Read, count_reads, find_signal_files, read_signal, runs

log = logging.getLogger(__name__)

ALIGNMENT_COLUMNS = [
    "alignment_genome",
    "alignment_genome_start",
    "alignment_genome_end",
    "alignment_strand",
    "alignment_identity",
]


def read_id_file(path: str | None) -> set[str] | None:
    """The read ids a file lists, one a line (the first word of each)."""
    if path is None:
        return None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError("not a text file of read ids", path) from None
    ids = {line.split()[0] for line in lines if line.strip()}
    if not ids:
        raise InputError("no read ids in file", path)
    return ids


def once(reads: Iterable[Read]) -> Iterator[Read]:
    """``reads``, each read id once: one met again (the same read in two files) is skipped
    with a warning."""
    seen: set[str] = set()
    for read in reads:
        if read.read_id in seen:
            log.warning("%s: read %s was met before; called once", read.filename, read.read_id)
            continue
        seen.add(read.read_id)
        yield read


def basecall_files(
    reads,
    model: str = AUTO,
    output: str = "-",
    emit: str | None = None,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    overlap: int | None = None,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    threads: int | None = None,
    max_reads: int | None = None,
    read_ids: str | None = None,
    min_qscore: float = 0.0,
    resume: bool = False,
    reference: str | None = None,
    trim: bool = True,
    workers: int = 1,
    any_chemistry: bool = False,
) -> dict:
    """Basecall ``reads`` (files or folders) with ``model`` (``auto``: per read, the bundled
    model for its chemistry), write the outputs, return metrics."""
    files = find_signal_files(reads)  # fail on bad input before loading the model
    wanted = read_id_file(read_ids)
    aligner = Aligner(reference) if reference else None
    to_file = output not in (None, "-")
    summary = f"{output}.summary.tsv" if to_file else None
    groups = {run: start for path in files for run, start in runs(path).items()}
    writer = CallsWriter(
        output,
        resume=resume,
        reference_header=aligner.header() if aligner else None,
        summary=summary,
        summary_columns=ALIGNMENT_COLUMNS if aligner else (),
        emit=emit,
        read_groups=groups,
        model=model,
    )
    set_threads(threads)
    net = model if model == AUTO else Basecaller.from_preset(model)  # a bad one fails now

    counts = {"reads": 0, "bases": 0, "samples": 0, "below_min_qscore": 0}
    chemistries: dict[str, int] = {}
    rows = []
    timing: dict = {}
    start = time.monotonic()
    with writer, Progress("basecalling", _expected(files, wanted, writer, max_reads)) as bar:
        done = set(writer.done_ids)
        stream = once(r for r in read_signal(files, wanted) if r.read_id not in done)
        if max_reads is not None:
            stream = itertools.islice(stream, max(0, max_reads - len(writer.done_ids)))
        calls = basecall(
            stream,
            net,
            beam_width=beam_width,
            batch_size=batch_size,
            chunk_size=chunk_size,
            overlap=overlap,
            trim=trim,
            workers=workers,
            timing=timing,
            any_chemistry=any_chemistry,
        )
        for read, call in calls:
            counts["reads"] += 1
            chemistries[read.chemistry] = chemistries.get(read.chemistry, 0) + 1
            counts["samples"] += read.num_samples
            rate = counts["samples"] / max(time.monotonic() - start, 1e-9)
            bar.update(samples_per_s=f"{rate:.3g}")
            if call.mean_qscore < min_qscore:
                counts["below_min_qscore"] += 1
                continue
            counts["bases"] += len(call.sequence)
            extra, hits = None, ()
            if aligner:
                hits = aligner.hits(call.sequence)
                row = aligner.align(call.sequence, call.qualities, hits, call.mean_qscore)
                rows.append(row)
                extra = _alignment_columns(row)
            writer.write(read, call, extra, hits)
    seconds = time.monotonic() - start
    if not counts["reads"] and not writer.done_ids:
        which = "that --read-ids lists" if wanted else "that could be called"
        log.warning("no reads %s in %s", which, ", ".join(map(str, reads)))
    metrics = {
        "model": model,
        "backend": asked_backend(),
        "chemistries": chemistries,
        "beam_width": beam_width,
        **counts,
        "resumed_reads": len(writer.done_ids),
        "seconds": round(seconds, 3),
        "samples_per_second": counts["samples"] / seconds if seconds else None,
        "bases_per_second": counts["bases"] / seconds if seconds else None,
        "workers": workers,
        "model_seconds": round(timing.get("model_seconds", 0.0), 3),
        "model_busy_share": timing.get("model_seconds", 0.0) / seconds if seconds else None,
    }
    if aligner:
        metrics["alignment"] = summarise(rows)
    if to_file:
        write_metrics(f"{output}.metrics.json", metrics)
    log.info(
        "%d reads, %d bases, %.0f samples/s%s",
        counts["reads"],
        counts["bases"],
        metrics["samples_per_second"] or 0,
        f", median identity {metrics['alignment']['median_identity']:.4f}" if aligner else "",
    )
    return metrics


def _expected(files, wanted, writer, max_reads) -> int | None:
    """The reads this run will call, where the files' indexes say (for its progress)."""
    counts = [count_reads(path) for path in files]
    if wanted is not None or None in counts:
        return max_reads
    left = sum(counts) - len(writer.done_ids)
    return max(0, min(left, max_reads) if max_reads else left)


def _alignment_columns(row: dict) -> dict:
    return {
        "alignment_genome": row.get("genome", "*"),
        "alignment_genome_start": row.get("genome_start", -1),
        "alignment_genome_end": row.get("genome_end", -1),
        "alignment_strand": row.get("strand", "*"),
        "alignment_identity": row["identity"],
    }
