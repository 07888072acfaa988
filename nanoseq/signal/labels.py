"""Labelled training chunks from Tombo-resquiggled fast5 or from reads + a BAM with move tables.

A :class:`ChunkSet` is bonito's layout: ``chunks`` (n, size) float32 normalised signal,
``references`` (n, max_len) uint8 with A=1, C=2, G=3, T=4 and 0 padding, ``reference_lengths``
(n,); saved as those three ``.npy`` files plus ``settings.json``: the
:class:`~nanoseq.signal.settings.SignalSettings` the signal was made with (compared when sets
are joined, copied into a model trained on them) and where the chunks came from (recorded only).
A base belongs to the chunk its first signal sample falls in. A reference-coordinate ``keep``
window (and an optional ``drop`` window) decides which bases may be used: a chunk is kept only
if every one of its bases maps inside ``keep`` and outside ``drop``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError, one_line
from nanoseq.io import quiet_htslib
from nanoseq.sequence import reverse_complement
from nanoseq.signal.normalize import MED_MAD, Normalisation
from nanoseq.signal.readers import Read, find_signal_files, read_signal
from nanoseq.signal.settings import SignalSettings

log = logging.getLogger(__name__)

ALPHABET = "NACGT"  # label codes: 0 none (padding, CTC's blank), A=1, C=2, G=3, T=4
BASE_CODE = np.zeros(256, dtype=np.uint8)
for _code, _base in enumerate(b"ACGT", start=1):
    BASE_CODE[_base] = _code


@dataclass
class LabelledRead:
    """A read's normalised signal and, per base, its code, first sample and reference position;
    the settings its signal was made with and the file it came from."""

    read_id: str
    signal: np.ndarray
    bases: np.ndarray  # uint8 codes 1..4
    starts: np.ndarray  # first signal sample of each base
    positions: np.ndarray  # reference position of each base, -1 where unknown
    settings: SignalSettings = field(default_factory=SignalSettings)
    source: str = ""


def _read_settings(read: Read, normalisation: Normalisation) -> SignalSettings:
    return SignalSettings(read.chemistry, read.sample_rate, normalisation)


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
    """'START-END' (0-based, end exclusive) -> (start, end); None -> None."""
    if text is None:
        return None
    try:
        start, end = (int(v.replace(",", "").replace("_", "")) for v in text.split("-"))
    except ValueError:
        raise InputError(f"region must look like START-END, got {text!r}") from None
    if not 0 <= start < end:
        raise InputError(f"region start must be >= 0 and below its end, got {text!r}")
    return start, end


def tombo_reads(
    paths: Iterable[str], normalisation: Normalisation = MED_MAD
) -> Iterator[LabelledRead]:
    """Labelled reads from Tombo-resquiggled fast5 (``RawGenomeCorrected_000`` events)."""
    import h5py

    for path in find_signal_files(paths):
        if path.suffix != ".fast5":
            raise InputError("Tombo labels need fast5 files", path)
        try:
            handle = h5py.File(path, "r")
        except OSError as error:
            raise InputError(f"not a readable fast5 file ({one_line(error)})", path) from None
        with handle:
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
        signal, _, _ = normalisation(read.pa)
        yield LabelledRead(
            read_id=read.read_id,
            signal=signal,
            bases=BASE_CODE[np.frombuffer(events["base"].tobytes(), dtype=np.uint8)],
            starts=first + events["start"].astype(np.int64),
            positions=positions.astype(np.int64),
            settings=_read_settings(read, normalisation),
            source=path.name,
        )


def move_table_reads(
    paths: Iterable[str], bam: str | Path, normalisation: Normalisation = MED_MAD
) -> Iterator[LabelledRead]:
    """Labelled reads from signal files and a BAM whose records carry ``mv`` (and ``ts``) tags.

    The labels are the BAM's called bases, placed by the move table; reference positions come
    from the record's alignment (unaligned bases get -1 and are never used).
    """
    import pysam

    try:
        records = {}
        with quiet_htslib(), pysam.AlignmentFile(str(bam), "rb", check_sq=False) as handle:
            for record in handle:
                if record.is_secondary or record.is_supplementary or not record.has_tag("mv"):
                    continue
                if not record.query_sequence:  # a read called to nothing
                    continue
                records[record.query_name] = _moves_record(record)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read BAM ({error})", bam) from None
    if not records:
        raise InputError("no primary records with move tables (mv tag)", bam)
    for read in read_signal(paths, read_ids=set(records)):
        sequence, starts, positions = records[read.read_id]
        signal, _, _ = normalisation(read.pa)
        settings = _read_settings(read, normalisation)
        yield LabelledRead(
            read.read_id, signal, BASE_CODE[sequence], starts, positions, settings, read.filename
        )


def placed_bases(record) -> tuple[str, np.ndarray]:
    """A SAM/BAM record's bases in read orientation and the first sample of each in the read's
    signal, from its move table (``mv``) and trimmed samples (``ts``), as dorado writes them."""
    mv = np.asarray(record.get_tag("mv"), dtype=np.int64)
    stride, moves = int(mv[0]), mv[1:]
    trimmed = record.get_tag("ts") if record.has_tag("ts") else 0
    starts = trimmed + np.flatnonzero(moves) * stride
    sequence = record.query_sequence or ""
    if record.is_reverse:  # the BAM stores the reverse complement; go back to read orientation
        sequence = reverse_complement(sequence)
    n = min(len(starts), len(sequence))
    return sequence[:n], starts[:n]


def _moves_record(record):
    """(base bytes in read orientation, first sample of each base, reference position: that of
    the aligned base at or before it, so an inserted base counts where its neighbours lie;
    -1 for the clipped ends and an unaligned read)."""
    sequence, starts = placed_bases(record)
    stored = len(record.query_sequence or "")
    positions = np.full(stored, -1, dtype=np.int64)
    pairs = np.array(record.get_aligned_pairs(matches_only=True), dtype=np.int64).reshape(-1, 2)
    if len(pairs):
        first, last = pairs[0, 0], pairs[-1, 0]
        placed = np.full(stored, -1, dtype=np.int64)
        placed[pairs[:, 0]] = pairs[:, 1]
        filled = np.maximum.accumulate(np.where(placed >= 0, np.arange(stored), 0))
        positions[first : last + 1] = placed[filled[first : last + 1]]
    if record.is_reverse:
        positions = positions[::-1]
    return np.frombuffer(sequence.encode(), dtype=np.uint8), starts, positions[: len(sequence)]


@dataclass
class ChunkSet:
    """Training chunks (bonito's three arrays), the :class:`SignalSettings` of their signal, and
    ``source``: where they came from (files, step, region; recorded, never compared)."""

    chunks: np.ndarray
    references: np.ndarray
    reference_lengths: np.ndarray
    settings: SignalSettings = field(default_factory=SignalSettings)
    source: dict = field(default_factory=dict)

    ARRAYS = ("chunks", "references", "reference_lengths")

    def __post_init__(self):
        if not len(self.chunks) == len(self.references) == len(self.reference_lengths):
            raise InputError("chunks, references and reference_lengths differ in length")

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def chunk_size(self) -> int:
        return int(self.chunks.shape[1])

    def rows(self, index) -> ChunkSet:
        """The chunks at ``index`` (a slice or mask), same settings."""
        arrays = (getattr(self, name)[index] for name in self.ARRAYS)
        return ChunkSet(*arrays, self.settings, self.source)

    def save(self, folder: str | Path) -> None:
        """Write the three ``.npy`` files and ``settings.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.ARRAYS:
            temporary = folder / f".{name}.tmp.npy"
            np.save(temporary, getattr(self, name))
            temporary.replace(folder / f"{name}.npy")
        record = {**self.settings.to_metadata(), "chunk_size": self.chunk_size, **self.source}
        temporary = folder / ".settings.json.tmp"
        temporary.write_text(json.dumps(record, indent=2) + "\n")
        temporary.replace(folder / "settings.json")

    @classmethod
    def load(cls, folder: str | Path) -> ChunkSet:
        """Read a saved set back. A set without ``settings.json`` (an older nanoseq's, or
        another tool's) is taken as R9.4.1 at 4 kHz, med/MAD-normalised, with a warning."""
        folder = Path(folder)
        arrays = []
        for name in cls.ARRAYS:
            path = folder / f"{name}.npy"
            if not path.is_file():
                raise InputError(f"missing {name}.npy (run `nanoseq prepare` first)", folder)
            try:
                arrays.append(np.load(path))
            except (OSError, ValueError) as error:
                raise InputError(f"cannot read {name}.npy ({one_line(error)})", folder) from None
        path = folder / "settings.json"
        if path.is_file():
            try:
                record = json.loads(path.read_text())
                settings = SignalSettings.from_metadata(record)
            except (ValueError, TypeError) as error:
                raise InputError(f"bad settings.json ({one_line(error)})", folder) from None
        else:
            record, settings = {}, SignalSettings()
            log.warning("%s: no settings.json; taking the chunks as %s", folder, settings)
        known = set(settings.to_metadata()) | {"chunk_size"}
        source = {k: v for k, v in record.items() if k not in known} | {"folder": str(folder)}
        if not np.isfinite(arrays[0]).all():
            raise InputError("chunks.npy holds NaN or infinite signal", folder)
        try:
            return cls(*arrays, settings, source)
        except InputError as error:
            raise InputError(error.problem, folder) from None

    @staticmethod
    def join(sets: list[ChunkSet]) -> ChunkSet:
        """Sets of one chunk size and the same settings as one set (references padded to the
        widest); sets that differ are refused, naming what differs."""
        first = sets[0]
        same_settings(sets)
        width = max(s.references.shape[1] for s in sets)
        references = [
            np.pad(s.references, ((0, 0), (0, width - s.references.shape[1]))) for s in sets
        ]
        return ChunkSet(
            np.concatenate([s.chunks for s in sets]),
            np.concatenate(references),
            np.concatenate([s.reference_lengths for s in sets]),
            first.settings,
            {"sets": [s.source for s in sets]} if len(sets) > 1 else first.source,
        )


def same_settings(sets: list[ChunkSet]) -> SignalSettings:
    """The settings that ``sets`` share; sets prepared differently (or of other chunk sizes)
    are refused, naming the sets and what differs."""
    first = sets[0]
    for other in sets[1:]:
        differ = first.settings.differences(other.settings)
        if other.chunk_size != first.chunk_size:
            differ.append(f"chunk_size {first.chunk_size} vs {other.chunk_size}")
        if differ:
            names = f"{_name(first)} and {_name(other)}"
            raise InputError(f"chunk sets {names} were prepared differently: {'; '.join(differ)}")
    return first.settings


def _name(chunk_set: ChunkSet) -> str:
    return chunk_set.source.get("folder", "(in memory)")


def make_chunks(
    reads: Iterable[LabelledRead],
    size: int = 4000,
    step: int | None = None,
    region: Region | None = None,
    min_bases_per_kilosample: float = 40.0,
    max_bases_per_kilosample: float = 250.0,
) -> dict[str, np.ndarray]:
    """Cut labelled reads into chunks every ``step`` samples and keep those the region allows.

    Chunks whose base density is implausible (a resquiggle failure) are dropped too. The reads
    must share their settings (chemistry, sample rate, normalisation).
    """
    region = region or Region()
    step = step or size
    chunks, labels, settings, sources = [], [], None, set()
    for read in reads:
        if settings is None:
            settings = read.settings
        elif read.settings != settings:
            differ = "; ".join(settings.differences(read.settings))
            raise InputError(f"reads of different settings in one chunk set: {differ}", read.source)
        sources.add(read.source)
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
    source = {"files": sorted(sources), "step": step, "keep": region.keep, "drop": region.drop}
    return ChunkSet(np.stack(chunks).astype(np.float32), references, lengths, settings, source)
