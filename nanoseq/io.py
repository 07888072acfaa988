"""Output files shared by every model family: atomic small files, basecalls and summaries.

Small outputs (metrics JSON, TSVs, predictions) go through :func:`atomic_write`, so a
crash never leaves a half-written file under the final name. Basecalls go through
:class:`CallsWriter` (FASTQ, SAM or BAM with dorado-style tags), which writes to
``<path>.partial`` and renames it onto ``<path>`` only when the run finishes; a later
run with ``resume=True`` keeps the complete records of the partial and skips their reads.
"""

from __future__ import annotations

import array
import gzip
import itertools
import json
import logging
import os
import secrets
import socket
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pysam

from nanoseq import __version__, bgzf
from nanoseq.errors import InputError, one_line
from nanoseq.sequence import reverse_complement
from nanoseq.signal.readers import Read

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = (
    "filename read_id run_id channel mux start_time duration template_start template_duration"
    " sequence_length_template mean_qscore_template"
).split()
_FORMATS = {".fastq": "fastq", ".fq": "fastq", ".sam": "sam", ".bam": "bam"}


@contextmanager
def atomic_write(path, mode: str = "w"):
    """Open ``path`` for writing through a temp file that replaces it only on success.

    ``path`` "-" is stdout (no temp file). On an exception the temp file is removed.
    """
    if str(path) == "-":
        yield sys.stdout.buffer if "b" in mode else sys.stdout
        return
    path = Path(path)
    writable(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    encoding = None if "b" in mode else "utf-8"
    f = open(temp, mode.replace("w", "x"), encoding=encoding)
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            temp.unlink()
        raise


def _plain(value):
    """JSON fallback for numpy scalars and arrays, and paths."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_metrics(path, metrics: dict) -> None:
    """Write ``metrics`` as JSON (indent 2, sorted keys), numpy values made plain."""
    with atomic_write(path) as f:
        f.write(json.dumps(metrics, indent=2, sort_keys=True, default=_plain) + "\n")


def _cell(value) -> str:
    """One TSV cell: empty for None, floats to 6 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        return f"{value:.6g}"
    return str(value)


def _tsv_line(row: dict, columns: Sequence[str]) -> str:
    return "\t".join(_cell(row.get(column)) for column in columns) + "\n"


def write_tsv(path, rows: Iterable[dict], columns: Sequence[str]) -> None:
    """Write ``rows`` as a TSV with a header; keys not in ``columns`` are left out.

    The first row is made before anything is written, so an input that fails at once leaves
    even stdout empty."""
    rows = iter(rows)
    first = next(rows, None)
    with atomic_write(path) as f:
        f.write("\t".join(columns) + "\n")
        for row in itertools.chain([first] if first is not None else [], rows):
            f.write(_tsv_line(row, columns))


def mean_qscore(qualities, at_least: int = 0, error_scale: float = 1.0) -> float:
    """Mean phred score taken over error probabilities (0.0 for an empty read), each scaled by
    ``error_scale`` (at most 1); with fewer than ``at_least`` bases, the missing ones count as
    wrong."""
    q = np.asarray(qualities, dtype=np.float64)
    bases = max(q.size, at_least)
    if bases == 0:
        return 0.0
    missing = bases - q.size
    errors = np.minimum(error_scale * 10 ** (-q / 10), 1.0)
    return float(-10 * np.log10((np.sum(errors) + missing) / bases))


SAMPLES_PER_BASE = 100  # DNA passes a pore at 400-450 bases/s: 9-13 samples a base at 4-5 kHz


@dataclass
class Call:
    """A read's basecall: its bases, their phred scores (clipped to 0..93, the FASTQ range), the
    move table of ``stride`` samples a frame, the samples trimmed from the read's start, and the
    normalisation's ``shift`` and ``scale``, and ``error_scale``: its read's errors over the
    sum of its bases' error probabilities (its basecaller's, the bases it misses counted).
    Records and summary rows take the rest from the :class:`~nanoseq.signal.readers.Read`."""

    sequence: str
    qualities: np.ndarray
    moves: np.ndarray | None = None
    stride: int = 1
    trimmed_samples: int = 0
    shift: float | None = None
    scale: float | None = None
    error_scale: float = 1.0

    def __post_init__(self):
        self.qualities = np.clip(np.asarray(self.qualities), 0, 93).astype(np.uint8)
        if len(self.qualities) != len(self.sequence):
            raise ValueError(f"{len(self.qualities)} qualities for {len(self.sequence)} bases")

    @cached_property
    def mean_qscore(self) -> float:
        """The mean of its bases' qscores, counting as wrong the bases it lacks for one base per
        :data:`SAMPLES_PER_BASE` samples (a tenth of DNA's speed): signal that is not DNA
        passing the pore (flat, a slow square wave, a drift) calls few bases, however sure of
        them, and scores below real reads. Computed once (the filter, the record and the
        summary row each ask)."""
        samples = 0 if self.moves is None else len(self.moves) * self.stride
        return mean_qscore(self.qualities, samples // SAMPLES_PER_BASE, self.error_scale)


def record_tags(read: Read, call: Call) -> list[tuple[str, object, str]]:
    """The dorado-style tags whose values are known, as ``(tag, value, type)``."""
    known = [
        ("qs", call.mean_qscore, "f"),
        ("ns", read.num_samples, "i"),
        ("ts", call.trimmed_samples, "i"),
        ("ch", read.channel, "i"),
        ("mx", read.mux, "i"),
        ("rn", read.read_number, "i"),
        ("st", read.start_timestamp, "Z"),
        ("du", read.duration, "f"),
        ("fn", read.filename or None, "Z"),
        ("sm", call.shift, "f"),
        ("sd", call.scale, "f"),
    ]
    return [(tag, value, kind) for tag, value, kind in known if value is not None]


def summary_row(read: Read, call: Call) -> dict:
    """The sequencing-summary row; the template starts after the trimmed samples."""
    trimmed = call.trimmed_samples / read.sample_rate
    return {
        "filename": read.filename,
        "read_id": read.read_id,
        "run_id": read.run_id,
        "channel": read.channel,
        "mux": read.mux,
        "start_time": read.start_time,
        "duration": read.duration,
        "template_start": read.start_time + trimmed,
        "template_duration": read.duration - trimmed,
        "sequence_length_template": len(call.sequence),
        "mean_qscore_template": call.mean_qscore,
    }


def _fastq(read: Read, call: Call) -> str:
    tags = "".join(f"\t{tag}:{kind}:{_cell(value)}" for tag, value, kind in record_tags(read, call))
    quality = (call.qualities + 33).tobytes().decode("ascii")
    return f"@{read.read_id}{tags}\n{call.sequence}\n+\n{quality}\n"


def _read_group(run: str, start: str, model: str) -> dict:
    """The ``RG`` line of a run, as dorado writes it."""
    group = {"ID": run, "PL": "ONT", "DS": f"runid={run} basecall_model={model}".strip()}
    return group | ({"DT": start} if start else {})


def _segments(
    read: Read, call: Call, header: pysam.AlignmentHeader, grouped: bool = False, hits=()
) -> list[pysam.AlignedSegment]:
    """The read's SAM/BAM records: one unmapped, or one for each of its ``hits`` (mappy's; the
    first primary, the rest supplementary), with dorado's tags (moves on the primary)."""
    tags = record_tags(read, call)
    if grouped:
        tags.append(("RG", read.run_id, "Z"))
    if not hits:
        record = _segment(read.read_id, call.sequence, call.qualities, header)
        record.flag = 4
        record.set_tags([*tags, *_moves(call)])
        return [record]
    records = []
    for number, hit in enumerate(hits):
        forward = hit.strand > 0
        sequence = call.sequence if forward else reverse_complement(call.sequence)
        record = _segment(read.read_id, sequence, call.qualities[:: 1 if forward else -1], header)
        record.flag = (0 if forward else 16) | (2048 if number else 0)
        record.reference_id = header.get_tid(hit.ctg)
        record.reference_start = hit.r_st
        record.mapping_quality = hit.mapq
        clips = hit.q_st, len(call.sequence) - hit.q_en
        before, after = clips if forward else clips[::-1]
        record.cigarstring = f"{before}S" * bool(before) + hit.cigar_str + f"{after}S" * bool(after)
        aligned = [("NM", hit.NM, "i"), ("MD", hit.MD, "Z")]
        record.set_tags([*tags, *aligned, *(() if number else _moves(call))])
        records.append(record)
    return records


def _segment(name: str, sequence: str, qualities, header) -> pysam.AlignedSegment:
    record = pysam.AlignedSegment(header)
    record.query_name = name
    record.query_sequence = sequence
    record.query_qualities = array.array("B", np.asarray(qualities, np.uint8).tobytes())
    return record


def _moves(call: Call) -> list:
    if call.moves is None:
        return []
    return [("mv", array.array("b", [call.stride, *np.asarray(call.moves).tolist()]))]


class Encoder:
    """A basecall output's bytes, so that each read's record can reach the disk whole on its
    own (htslib buffers whole blocks, and pysam cannot flush them): the file's ``start``, each
    ``record`` (an AlignedSegment, or FASTQ text) and its ``end``. BAM and ``.gz`` records are
    BGZF blocks of their own: BAM's compressed by htslib in a scratch file beside the output
    (a one-record BAM, less its header blocks and end-of-file block), FASTQ's by
    :mod:`nanoseq.bgzf`."""

    def __init__(self, kind: str, gzipped: bool, header: pysam.AlignmentHeader, scratch: Path):
        self.kind, self.gzipped, self.header, self.scratch = kind, gzipped, header, scratch
        self.start = b""
        if kind == "sam":
            self.start = (str(header).rstrip("\n") + "\n").encode()
        elif kind == "bam":
            self.start = self._bam([])

    def record(self, record) -> bytes:
        if self.kind == "fastq":
            text = record if isinstance(record, bytes) else record.encode("utf-8")
            return bgzf.blocks(text) if self.gzipped else text
        if self.kind == "sam":
            return (record.to_string() + "\n").encode("utf-8")
        return self._bam([record])[len(self.start) :]

    @property
    def end(self) -> bytes:
        return bgzf.EOF if self.kind == "bam" or self.gzipped else b""

    def _bam(self, records) -> bytes:
        """A BAM of ``records`` under the header, less its end-of-file block."""
        with pysam.AlignmentFile(str(self.scratch), "wb", header=self.header) as bam:
            for record in records:
                bam.write(record)
        data = self.scratch.read_bytes()
        self.scratch.unlink()
        return data[: -len(bgzf.EOF)]


GZIP_MAGIC = b"\x1f\x8b"


def _fastq_records(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(read_id, record)`` of each complete record of a FASTQ file (plain, gzip or BGZF),
    stopping at a truncated one; a file that does not start as FASTQ cannot be resumed."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == GZIP_MAGIC
    lines: list[bytes] = []
    with suppress(EOFError, OSError), (gzip.open if gzipped else open)(path, "rb") as f:
        for line in f:
            if not lines and not line.startswith(b"@"):
                if line.strip():
                    raise InputError("cannot resume from it: not a FASTQ file", path)
                return
            lines.append(line)
            if len(lines) == 4:
                head, sequence, plus, quality = lines
                # Both lines end in a newline only when the record is whole.
                whole = len(quality) == len(sequence)
                if not (plus.startswith(b"+") and whole):
                    return
                yield head[1:].split(maxsplit=1)[0].decode("ascii", "replace"), b"".join(lines)
                lines = []


@contextmanager
def quiet_htslib():
    """htslib's own messages (``[E::bgzf_read] ...``) kept off stderr: nanoseq says in one
    line what went wrong."""
    verbosity = pysam.set_verbosity(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        pysam.set_verbosity(verbosity)


def _open_alignments(path: Path) -> pysam.AlignmentFile:
    """A SAM/BAM file for reading, htslib quiet (the partial of a killed run has no BGZF EOF
    marker, which htslib would warn of)."""
    with quiet_htslib():
        return pysam.AlignmentFile(str(path), check_sq=False, ignore_truncation=True)


def _sam_records(path: Path, kind: str) -> Iterator[tuple[str, pysam.AlignedSegment]]:
    """``(read_id, record)`` of each record pysam can read, stopping where it fails; a file that
    is not SAM/BAM at all cannot be resumed.

    A SAM line without its newline was cut short, so it is dropped.
    """
    try:
        alignments = _open_alignments(path)
    except (OSError, ValueError):
        raise InputError(f"cannot resume from it: not a {kind.upper()} file", path) from None
    with suppress(OSError, ValueError), alignments as f:
        if kind == "bam":
            for record in f:
                yield record.query_name, record
            return
        with open(path, encoding="ascii") as text:
            for line in text:
                if not line.endswith("\n"):
                    return
                if not line.startswith("@"):
                    record = pysam.AlignedSegment.fromstring(line[:-1], f.header)
                    yield record.query_name, record


def complete_records(path: Path, kind: str) -> Iterator[tuple[str, object]]:
    """``(read_id, record)`` of each whole record of an output of ``kind`` (``fastq``, ``sam``
    or ``bam``), finished or cut short by a crash: what a resumed run keeps."""
    return _fastq_records(path) if kind == "fastq" else _sam_records(path, kind)


def _summary_rows(path: Path) -> dict[str, dict]:
    """Complete rows of a summary TSV by read id."""
    try:
        with open(path, encoding="utf-8") as f:
            columns = f.readline().rstrip("\n").split("\t")
            rows = [
                dict(zip(columns, line[:-1].split("\t"), strict=False))
                for line in f
                if line.endswith("\n")
            ]
    except UnicodeDecodeError:
        raise InputError("cannot resume from it: not a summary TSV", path) from None
    return {row["read_id"]: row for row in rows if "read_id" in row}


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _existing(path: Path) -> Path | None:
    """What a resumed run starts from: the partial of the latest run, else a finished file."""
    return next((p for p in (_partial(path), path) if p.exists()), None)


class OutputLock:
    """``<path>.lock`` while a run writes ``path``: a second run on the same output is refused;
    the lock of a run that is gone (killed on this host) is taken over."""

    def __init__(self, path: Path):
        self.output, self.path = path, path.with_name(path.name + ".lock")

    def __enter__(self) -> OutputLock:
        while True:
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over()
                continue
            with os.fdopen(handle, "w") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}\n")
            return self

    def _take_over(self) -> None:
        """Remove a stale lock; refuse when its owner may still be running."""
        try:
            pid, host = self.path.read_text().split()
            alive = host != socket.gethostname() or _running(int(pid))
        except (OSError, ValueError):  # half-written, or removed meanwhile: look again
            pid, host, alive = "?", "?", False
        if alive:
            raise InputError(
                f"in use by process {pid} on {host} (remove {self.path.name} if that run is over)",
                self.output,
            )
        log.warning("%s: taking over the lock of process %s, which is gone", self.output, pid)
        self.path.unlink(missing_ok=True)

    def __exit__(self, *_) -> None:
        self.path.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class CallsWriter:
    """Write reads' :class:`Call` records to FASTQ (``.fastq``, ``.fq``; ``.gz``: BGZF, which
    every gzip reader takes), SAM or BAM.

    ``path`` None or "-" is stdout, written as ``emit`` says (``bam``, ``sam`` or ``fastq``;
    a terminal is refused BAM). Otherwise records go to ``<path>.partial``,
    renamed onto ``path`` when the ``with`` block ends without an exception, and left
    for ``resume=True`` when it does not; ``<path>.lock`` keeps a second run off the same
    output meanwhile. On resume the complete records of the latest partial (else of a
    finished ``path``) are kept and their ids are in ``done_ids`` for the caller to skip.
    ``summary`` is an optional sequencing-summary TSV written the same way, with
    ``summary_columns`` after :data:`SUMMARY_COLUMNS`; with a summary, a read is done only
    when both its record and its summary row were kept. Each read's record and row reach the
    disk as it is written (flushed; a killed run loses only the read being written).
    ``reference_header`` (dict or ``pysam.AlignmentHeader``) adds e.g. ``SQ`` lines;
    ``read_groups`` (run id -> the run's start) ``RG`` lines, and each SAM/BAM record of those
    runs its ``RG`` tag, as dorado writes them. A BAM with ``SQ`` lines (aligned) is sorted and
    indexed when it is finished.
    """

    def __init__(
        self,
        path=None,
        resume=False,
        reference_header=None,
        summary=None,
        summary_columns: Sequence[str] = (),
        emit: str | None = None,
        read_groups: dict[str, str] | None = None,
        model: str = "",
    ):
        self.path = None if path in (None, "-") else Path(path)
        for output in (self.path, summary):
            if output is not None:
                writable(output)
        if self.path is None:
            self.kind = emit or "bam"
            if self.kind == "bam" and sys.stdout.isatty():
                raise InputError(
                    "stdout is a terminal: BAM goes to a file or a pipe (-o calls.bam), "
                    "or use --emit-fastq or --emit-sam"
                )
        else:
            self.kind = _format(self.path)
            if emit not in (None, self.kind):
                raise InputError(f"--emit-{emit} does not go with {self.kind} output", path)
        if resume and self.path is None:
            raise InputError("resuming needs an output file, not stdout")
        self.resume = resume
        header = {"HD": {"VN": "1.6", "SO": "unknown"}}
        if isinstance(reference_header, pysam.AlignmentHeader):
            reference_header = reference_header.to_dict()
        header |= reference_header or {}
        self.groups = set(read_groups or ())
        groups = [_read_group(run, start, model) for run, start in (read_groups or {}).items()]
        if groups:
            header["RG"] = groups
        header["PG"] = [
            *header.get("PG", []),
            {"ID": "nanoseq", "PN": "nanoseq", "VN": __version__},
        ]
        self.header = pysam.AlignmentHeader.from_dict(header)
        self.summary = None if summary is None else Path(summary)
        self.summary_columns = [*SUMMARY_COLUMNS, *summary_columns]
        self.done_ids: set[str] = set()
        self._calls = self._rows = self._lock = self._encoder = None
        self._started = False

    def __enter__(self) -> CallsWriter:
        if self.path is None:  # the start goes with the first record: a failure leaves stdout be
            scratch = Path(tempfile.gettempdir()) / f"nanoseq-{os.getpid()}.record.tmp"
            self._encoder = Encoder(self.kind, False, self.header, scratch)
            self._calls = sys.stdout.buffer
            return self
        self._lock = OutputLock(self.path).__enter__()
        try:
            self._start()
        except BaseException:
            self._close()
            raise
        return self

    def _start(self) -> None:
        temp = self.path.with_name(self.path.name + ".partial.tmp")
        scratch = self.path.with_name(f".{self.path.name}.record.tmp")
        self._encoder = Encoder(self.kind, self.path.suffix == ".gz", self.header, scratch)
        self._calls = open(temp, "wb")
        self._calls.write(self._encoder.start)
        if self.summary is not None:
            summary_temp = self.summary.with_name(self.summary.name + ".partial.tmp")
            self._rows = open(summary_temp, "w", encoding="utf-8")
            self._rows.write("\t".join(self.summary_columns) + "\n")
        if self.resume:
            self._keep_done()
        # The copies of kept records replace the old partials only once they are on disk.
        self._calls.flush()
        os.replace(temp, _partial(self.path))
        if self._rows is not None:
            self._rows.flush()
            os.replace(summary_temp, _partial(self.summary))

    def _keep_done(self) -> None:
        """Copy the complete records (and summary rows) of an earlier run into the new partials."""
        rows = None
        if self.summary is not None:
            source = _existing(self.summary)
            rows = {} if source is None else _summary_rows(source)
        source = _existing(self.path)
        if source is None:
            return
        for read_id, record in complete_records(source, self.kind):
            if rows is not None and read_id not in rows:
                continue
            if read_id in self.done_ids and not getattr(record, "is_supplementary", False):
                continue  # a read's records once, its supplementary ones with it
            self.done_ids.add(read_id)
            self._calls.write(self._encoder.record(record))
            if rows is not None:
                self._rows.write(_tsv_line(rows[read_id], self.summary_columns))

    def write(self, read: Read, call: Call, extra: dict | None = None, hits=()) -> None:
        """Write one read's call (aligned where ``hits``, mappy's, say; SAM/BAM), and its
        summary row with the ``extra`` summary columns."""
        if self.kind == "fastq":
            records = [_fastq(read, call)]
        else:
            records = _segments(read, call, self.header, read.run_id in self.groups, hits)
        self._stdout_started()
        self._calls.write(b"".join(self._encoder.record(record) for record in records))
        self._calls.flush()
        if self._rows is not None:
            row = summary_row(read, call) | (extra or {})
            self._rows.write(_tsv_line(row, self.summary_columns))
            self._rows.flush()

    def _close(self) -> None:
        for handle in (self._calls, self._rows):
            if handle is not None:
                handle.close()
        if self._lock is not None:
            self._lock.__exit__()

    def _stdout_started(self) -> None:
        if self.path is None and not self._started:
            self._started = True
            self._calls.write(self._encoder.start)

    def __exit__(self, exc_type, error, traceback) -> None:
        if self.path is None:
            if error is None:
                self._stdout_started()  # an empty output is still a whole file
                self._calls.write(self._encoder.end)
            self._calls.flush()
            return
        try:
            self._calls.write(self._encoder.end)
            self._calls.close()
            if self._rows is not None:
                self._rows.close()
            if error is None:
                if self.kind == "bam" and self.header.references:
                    sort_and_index(_partial(self.path))
                os.replace(_partial(self.path), self.path)
                if self.summary is not None:
                    os.replace(_partial(self.summary), self.summary)
        finally:
            self._lock.__exit__()


def sort_and_index(path: Path) -> None:
    """Sort an aligned BAM by position in place, and index it (``.bai`` beside it, named as
    the finished file will be)."""
    final = path.with_name(path.name.removesuffix(".partial"))
    temporary = path.with_name(f".{final.name}.sorted.tmp")
    pysam.sort("-o", str(temporary), str(path))
    temporary.replace(path)
    pysam.index(str(path), str(final) + ".bai")


def writable(path: Path) -> None:
    """Refuse, in one line, an output path that cannot be written: a folder, a missing or
    read-only folder."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise InputError("is a folder; give a file name", path)
    if not folder.is_dir():
        raise InputError("no such folder", folder)
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError("cannot write here (permission denied)", path)


def _format(path: Path) -> str:
    name = path.name.lower()
    kind = _FORMATS.get(Path(name.removesuffix(".gz")).suffix)
    if kind is None or (name.endswith(".gz") and kind != "fastq"):
        raise InputError("unknown output format: use .fastq, .fq, .fastq.gz, .sam or .bam", path)
    return kind


def read_fasta(path) -> dict[str, str]:
    """Sequences of a FASTA file (plain or gzip) by name (the first word of each header)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    sequences: dict[str, list[str]] = {}
    try:
        with (gzip.open if gzipped else open)(path, "rt", encoding="ascii") as f:
            for line in f:
                if line.startswith(">"):
                    name = (line[1:].split() or [""])[0]
                    if name in sequences:
                        raise InputError(f"sequence {name!r} appears twice", path)
                    sequences[name] = []
                elif line.strip():
                    if not sequences:
                        raise InputError("not a FASTA file (no '>' header first)", path)
                    sequences[name].append(line.strip())
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise InputError(f"not a readable FASTA file ({error})", path) from error
    if not sequences:
        raise InputError("no sequences in FASTA file", path)
    return {name: "".join(parts) for name, parts in sequences.items()}


CALL_SUFFIXES = (".fastq", ".fq", ".fasta", ".fa", ".fna", ".sam", ".bam")


class CallRecord(NamedTuple):
    """A read's record in a file of calls: its phred qualities (None in FASTA) and the mean
    qscore its basecaller gave it (a ``qs`` tag, in a BAM record or a FASTQ header; else None)."""

    read_id: str
    sequence: str
    qualities: np.ndarray | None
    mean_qscore: float | None


def read_calls(path) -> Iterator[CallRecord]:
    """The :class:`CallRecord` of each read in FASTQ/FASTA/SAM/BAM."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder; give a file of calls", path)
    if not path.is_file():
        raise InputError("no such file", path)
    if Path(path.name.lower().removesuffix(".gz")).suffix not in CALL_SUFFIXES:
        raise InputError(f"not a file of calls ({', '.join(CALL_SUFFIXES)})", path)
    try:
        with quiet_htslib():
            yield from _calls(path)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read calls ({one_line(error)})", path) from None


def _calls(path: Path):
    if path.suffix.lower() in (".sam", ".bam"):
        with _open_alignments(path) as f:
            for record in f.fetch(until_eof=True):
                if record.is_secondary or record.is_supplementary:
                    continue
                quals = record.query_qualities
                sequence = record.query_sequence or ""
                if record.is_reverse:  # stored reverse-complemented: back to the read
                    sequence = reverse_complement(sequence)
                    quals = None if quals is None else quals[::-1]
                qs = record.get_tag("qs") if record.has_tag("qs") else None
                yield CallRecord(record.query_name, sequence, _phred(quals), qs)
        return
    with pysam.FastxFile(str(path)) as f:
        for record in f:
            quals = record.get_quality_array() if record.quality else None
            tags = (record.comment or "").split()
            qs = next((float(t[5:]) for t in tags if t.startswith("qs:f:")), None)
            yield CallRecord(record.name, record.sequence or "", _phred(quals), qs)


def _phred(quals) -> np.ndarray | None:
    return None if quals is None else np.asarray(quals, dtype=np.uint8)
