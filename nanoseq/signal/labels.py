"""Labelled training chunks from Tombo-resquiggled fast5 or from reads + a BAM with move tables.

Output is bonito's layout: ``chunks`` (n, size) float32 normalised signal, ``references``
(n, max_len) uint8 with A=1, C=2, G=3, T=4 and 0 padding, ``reference_lengths`` (n,).
A base belongs to the chunk its first signal sample falls in. A reference-coordinate
``keep`` window (and an optional ``drop`` window) decides which bases may be used: a chunk is
kept only if every one of its bases maps inside ``keep`` and outside ``drop``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError
from nanoseq.sequence import reverse_complement
from nanoseq.signal.normalize import normalise
from nanoseq.signal.readers import find_signal_files, read_signal

log = logging.getLogger(__name__)

BASE_CODE = np.zeros(256, dtype=np.uint8)
for _code, _base in enumerate(b"ACGT", start=1):
    BASE_CODE[_base] = _code


@dataclass
class LabelledRead:
    """A read's normalised signal and, per base, its code, first sample and reference position."""

    read_id: str
    signal: np.ndarray
    bases: np.ndarray  # uint8 codes 1..4
    starts: np.ndarray  # first signal sample of each base
    positions: np.ndarray  # reference position of each base, -1 where unknown


@dataclass
class Region:
    """Reference coordinates a training base may come from: inside ``keep``, outside ``drop``."""

    keep: tuple[int, int] | None = None
    drop: tuple[int, int] | None = None

    def allows(self, positions: np.ndarray) -> np.ndarray:
        ok = positions >= 0
        if self.keep:
            ok &= (positions >= self.keep[0]) & (positions < self.keep[1])
        if self.drop:
            ok &= ~((positions >= self.drop[0]) & (positions < self.drop[1]))
        return ok


def parse_region(text: str | None) -> tuple[int, int] | None:
    """'START-END' (0-based, end exclusive) -> (start, end)."""
    if not text:
        return None
    try:
        start, end = (int(v.replace(",", "").replace("_", "")) for v in text.split("-"))
    except ValueError:
        raise InputError(f"region must look like START-END, got {text!r}") from None
    if not 0 <= start < end:
        raise InputError(f"region start must be >= 0 and below its end, got {text!r}")
    return start, end


def tombo_reads(paths: Iterable[str], norm: str = "med_mad") -> Iterator[LabelledRead]:
    """Labelled reads from Tombo-resquiggled fast5 (``RawGenomeCorrected_000`` events)."""
    import h5py

    for path in find_signal_files(paths):
        if path.suffix != ".fast5":
            raise InputError("Tombo labels need fast5 files", path)
        with h5py.File(path, "r") as handle:
            group = handle.get("Analyses/RawGenomeCorrected_000/BaseCalled_template")
            if group is None or "Events" not in group:
                log.warning("%s: no Tombo events (not resquiggled); skipped", path)
                continue
            events = group["Events"][()]
            first = int(group["Events"].attrs["read_start_rel_to_raw"])
            align = group["Alignment"].attrs
            strand, start, end = align["mapped_strand"], align["mapped_start"], align["mapped_end"]
        (read,) = read_signal([path])
        n = len(events)
        positions = start + np.arange(n) if strand == "+" else end - 1 - np.arange(n)
        signal, _, _ = normalise(read.pa, norm)
        yield LabelledRead(
            read_id=read.read_id,
            signal=signal,
            bases=BASE_CODE[np.frombuffer(events["base"].tobytes(), dtype=np.uint8)],
            starts=first + events["start"].astype(np.int64),
            positions=positions.astype(np.int64),
        )


def move_table_reads(
    paths: Iterable[str], bam: str | Path, norm: str = "med_mad"
) -> Iterator[LabelledRead]:
    """Labelled reads from signal files and a BAM whose records carry ``mv`` (and ``ts``) tags.

    The labels are the BAM's called bases, placed by the move table; reference positions come
    from the record's alignment (unaligned bases get -1 and are never used).
    """
    import pysam

    try:
        records = {}
        with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as handle:
            for record in handle:
                if record.is_secondary or record.is_supplementary or not record.has_tag("mv"):
                    continue
                records[record.query_name] = _moves_record(record)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read BAM ({error})", bam) from None
    if not records:
        raise InputError("no primary records with move tables (mv tag)", bam)
    for read in read_signal(paths, read_ids=set(records)):
        sequence, starts, positions = records[read.read_id]
        signal, _, _ = normalise(read.pa, norm)
        yield LabelledRead(read.read_id, signal, BASE_CODE[sequence], starts, positions)


def _moves_record(record):
    """(base bytes in read orientation, first sample of each base, reference position)."""
    mv = np.asarray(record.get_tag("mv"), dtype=np.int64)
    stride, moves = int(mv[0]), mv[1:]
    trimmed = record.get_tag("ts") if record.has_tag("ts") else 0
    starts = trimmed + np.flatnonzero(moves) * stride
    sequence = record.query_sequence
    positions = np.full(len(sequence), -1, dtype=np.int64)
    for query, ref in record.get_aligned_pairs(matches_only=True):
        positions[query] = ref
    if record.is_reverse:  # the BAM stores the reverse complement; go back to read orientation
        sequence, positions = reverse_complement(sequence), positions[::-1]
    sequence = np.frombuffer(sequence.encode(), dtype=np.uint8)
    n = min(len(starts), len(sequence))
    return sequence[:n], starts[:n], positions[:n]


def make_chunks(
    reads: Iterable[LabelledRead],
    size: int = 4000,
    step: int | None = None,
    region: Region | None = None,
    min_bases_per_kilosample: float = 40.0,
    max_bases_per_kilosample: float = 250.0,
) -> dict[str, np.ndarray]:
    """Cut labelled reads into chunks every ``step`` samples and keep those the region allows.

    Chunks whose base density is implausible (a resquiggle failure) are dropped too.
    """
    region = region or Region()
    step = step or size
    chunks, labels = [], []
    for read in reads:
        allowed = region.allows(read.positions)
        first, last = int(read.starts[0]), len(read.signal)
        for lo in range(first, last - size + 1, step):
            inside = slice(*np.searchsorted(read.starts, [lo, lo + size]))
            density = 1000 * (inside.stop - inside.start) / size
            if not min_bases_per_kilosample <= density <= max_bases_per_kilosample:
                continue
            if not allowed[inside].all():
                continue
            chunks.append(read.signal[lo : lo + size])
            labels.append(read.bases[inside])
    if not chunks:
        raise InputError("no training chunks: every chunk was outside the region or implausible")
    lengths = np.array([len(label) for label in labels], dtype=np.int64)
    references = np.zeros((len(labels), lengths.max()), dtype=np.uint8)
    for row, label in zip(references, labels, strict=True):
        row[: len(label)] = label
    return {
        "chunks": np.stack(chunks).astype(np.float32),
        "references": references,
        "reference_lengths": lengths,
    }


def save_chunks(arrays: dict[str, np.ndarray], folder: str | Path) -> None:
    """Write ``chunks.npy``, ``references.npy``, ``reference_lengths.npy`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        tmp = folder / f".{name}.tmp.npy"
        np.save(tmp, array)
        tmp.replace(folder / f"{name}.npy")


def load_chunks(folder: str | Path) -> dict[str, np.ndarray]:
    """Read the three arrays back; a missing or inconsistent set is an InputError."""
    folder = Path(folder)
    arrays = {}
    for name in ("chunks", "references", "reference_lengths"):
        path = folder / f"{name}.npy"
        if not path.is_file():
            raise InputError(f"missing {name}.npy (run `nanoseq prepare` first)", folder)
        arrays[name] = np.load(path)
    if not len(arrays["chunks"]) == len(arrays["references"]) == len(arrays["reference_lengths"]):
        raise InputError("chunks, references and reference_lengths differ in length", folder)
    return arrays


def join_chunks(sets: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Chunk sets of one chunk size as one set (references padded to the widest)."""
    sizes = {s["chunks"].shape[1] for s in sets}
    if len(sizes) > 1:
        raise InputError(f"chunk sets differ in chunk size ({sorted(sizes)})")
    width = max(s["references"].shape[1] for s in sets)
    return {
        "chunks": np.concatenate([s["chunks"] for s in sets]),
        "references": np.concatenate(
            [np.pad(s["references"], ((0, 0), (0, width - s["references"].shape[1]))) for s in sets]
        ),
        "reference_lengths": np.concatenate([s["reference_lengths"] for s in sets]),
    }
