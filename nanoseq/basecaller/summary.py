"""The sequencing summary of a SAM/BAM file of calls (``nanoseq summary``, as ``dorado
summary``), from each primary record's tags: dorado's (``fn ch mx st du ns ts qs``, ``RG``) and,
for an aligned file, the alignment (identity as minimap2 counts it: (block - NM) / block)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from nanoseq.basecaller.job import ALIGNMENT_COLUMNS
from nanoseq.errors import InputError
from nanoseq.io import SUMMARY_COLUMNS, _open_alignments, quiet_htslib

ALIGNED = {0, 1, 2}  # CIGAR M, I, D: the alignment block


def summary_rows(path: str | Path) -> tuple[list[str], Iterator[dict]]:
    """The summary's columns and its rows, one per read."""
    path = Path(path)
    if path.suffix.lower() not in (".sam", ".bam") or not path.is_file():
        raise InputError("not a SAM or BAM file of calls", path)
    try:
        with quiet_htslib():
            handle = _open_alignments(path)
    except (OSError, ValueError):
        raise InputError("not a SAM or BAM file of calls", path) from None
    header = handle.header.to_dict()
    starts = {group["ID"]: group.get("DT", "") for group in header.get("RG", [])}
    aligned = bool(header.get("SQ"))
    columns = [*SUMMARY_COLUMNS, *(ALIGNMENT_COLUMNS if aligned else ())]
    return columns, _rows(handle, starts, aligned)


def _rows(handle, starts: dict, aligned: bool) -> Iterator[dict]:
    with handle:
        for record in handle.fetch(until_eof=True):
            if record.is_secondary or record.is_supplementary:
                continue
            tags = dict(record.get_tags())
            run = tags.get("RG", "")
            start = _seconds(tags.get("st"), starts.get(run))
            duration, samples = tags.get("du"), tags.get("ns")
            trimmed = tags.get("ts", 0) / (samples / duration) if duration and samples else 0.0
            row = {
                "filename": tags.get("fn", ""),
                "read_id": record.query_name,
                "run_id": run,
                "channel": tags.get("ch"),
                "mux": tags.get("mx"),
                "start_time": start,
                "duration": duration,
                "template_start": None if start is None else start + trimmed,
                "template_duration": None if duration is None else duration - trimmed,
                "sequence_length_template": record.query_length,
                "mean_qscore_template": tags.get("qs"),
            }
            if aligned:
                row |= _alignment(record, tags)
            yield row


def _alignment(record, tags: dict) -> dict:
    if record.is_unmapped:
        return dict(zip(ALIGNMENT_COLUMNS, ["*", -1, -1, "*", 0.0], strict=True))
    block = sum(length for op, length in record.cigartuples if op in ALIGNED)
    return {
        "alignment_genome": record.reference_name,
        "alignment_genome_start": record.reference_start,
        "alignment_genome_end": record.reference_end,
        "alignment_strand": "-" if record.is_reverse else "+",
        "alignment_identity": (block - tags.get("NM", 0)) / block if block else 0.0,
    }


def _seconds(at: str | None, run_start: str | None) -> float | None:
    """Seconds from the run's start to ``at`` (both ISO-8601), where both are known."""
    try:
        return (datetime.fromisoformat(at) - datetime.fromisoformat(run_start)).total_seconds()
    except (TypeError, ValueError):
        return None
