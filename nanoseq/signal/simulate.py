"""Simulated nanopore reads with known truth, from a reference or a random genome.

Two sources of signal:

* :class:`PoreModel`, a k-mer table: ONT's R9.4 6-mer table, or an R10.4.1 9-mer table
  (uncalled4's ``.npz``: normalised levels, pA = level x ``_pa_stdv`` + ``_pa_mean``). Per k-mer a
  dwell of ``2 + round(Gamma(0.95, 8.5))`` samples at 4 kHz (mean 10, sd 8.2 and a long tail, as
  in the Tombo events of the lambda training reads; scaled to the sample rate), the event's level
  jittered by the table's spread of event means (R10 tables), each sample drawn around it.
* :class:`EventLibrary`, real signal: every event of some Tombo-resquiggled reads, filed under
  its k-mer; a read of any sequence is pieced together from real events of its k-mers, so it
  carries real noise and real dwells, on sequence no model has seen.

A source of k-mer size ``k`` labels event ``i`` (k-mer ``seq[i:i+k]``) with the base at its
``offset``, so a fragment of ``L`` bases yields ``L - k + 1`` labelled bases.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError, one_line
from nanoseq.io import atomic_write
from nanoseq.sequence import reverse_complement
from nanoseq.signal.chemistry import R941, R1041
from nanoseq.signal.labels import BASE_CODE, LabelledRead, Region
from nanoseq.signal.normalize import MED_MAD, Normalisation
from nanoseq.signal.readers import Read
from nanoseq.signal.settings import SignalSettings
from nanoseq.signal.writers import write_signal

DEFAULT_PORE_MODEL = Path(__file__).parents[1] / "assets" / "r9.4_450bps_6mer_template.model"
DWELL = (0.95, 8.5)  # gamma shape and scale of the dwell beyond its 2-sample minimum
DIGITISATION, RANGE, OFFSET = 8192.0, 1400.0, 0.0  # calibration of the written reads
SAMPLE_RATE = 4000.0
RUN_INFO = {  # what a simulated read's file says of its run
    R941: {"sequencing_kit": "sqk-lsk109", "flow_cell_product_code": "FLO-MIN106"},
    R1041: {"sequencing_kit": "sqk-lsk114", "flow_cell_product_code": "FLO-PRO114M"},
}
PA_SHIFT, PA_SCALE = 82.0, 15.2  # median and MAD scale of the lambda R9.4.1 reads (pA)


@dataclass
class SimulatedRead:
    read_id: str
    pa: np.ndarray  # float32 signal in pA
    bases: str  # the labelled bases (truth)
    starts: np.ndarray  # first sample of each labelled base
    positions: np.ndarray  # reference position of each labelled base (read orientation)
    chemistry: str = R941
    sample_rate: float = SAMPLE_RATE


def kmer_indices(codes: np.ndarray, k: int) -> np.ndarray:
    """Base-4 index (A=0 C=1 G=2 T=3, first base most significant) of every k-mer of ``codes``."""
    n = len(codes) - k + 1
    index = np.zeros(max(0, n), dtype=np.int64)
    for j in range(k):
        index = index * 4 + codes[j : j + n]
    return index


def _fragment_codes(fragment: str, k: int) -> np.ndarray:
    codes = BASE_CODE[np.frombuffer(fragment.encode(), np.uint8)].astype(np.int64) - 1
    if len(codes) < k or (codes < 0).any():
        raise ValueError("fragment must be at least k bases of A, C, G, T")
    return codes


def _simulated(fragment: str, pa, dwells, k: int, offset: int, rng, **kind) -> SimulatedRead:
    n = len(fragment) - k + 1
    return SimulatedRead(
        str(uuid.UUID(bytes=rng.bytes(16), version=4)),
        pa.astype(np.float32),
        fragment[offset : offset + n],
        np.concatenate([[0], np.cumsum(dwells)[:-1]]),
        np.arange(n) + offset,
        **kind,
    )


@dataclass
class PoreModel:
    """A k-mer table: per k-mer (base-4 index) its level ``means`` and per-sample ``stdvs`` in pA,
    and the spread of its event means (``event_stdvs``, zero where the table has none); the
    labelled base's place in the k-mer (``offset``) and the ``chemistry``."""

    k: int
    means: np.ndarray
    stdvs: np.ndarray
    event_stdvs: np.ndarray | None = None
    offset: int | None = None
    chemistry: str = R941

    def __post_init__(self):
        self.offset = self.k // 2 if self.offset is None else self.offset
        if self.event_stdvs is None:
            self.event_stdvs = np.zeros_like(self.means)

    def simulate(
        self, fragment: str, rng: np.random.Generator, sample_rate: float = SAMPLE_RATE
    ) -> SimulatedRead:
        """Signal for one fragment (A/C/G/T only) read 5' to 3' at ``sample_rate`` (Hz). The
        noise has the same spectral density at every rate: a sampler twice as fast sees a band
        twice as wide, so each sample's variance doubles."""
        index = kmer_indices(_fragment_codes(fragment, self.k), self.k)
        dwells = dwell_samples(rng, len(index), sample_rate)
        levels = self.means[index]
        if self.event_stdvs.any():  # (R9.4 tables have none: their reads stay as they were)
            levels = rng.normal(levels, self.event_stdvs[index])
        noise = self.stdvs[index] * np.sqrt(sample_rate / SAMPLE_RATE)
        pa = rng.normal(np.repeat(levels, dwells), np.repeat(noise, dwells))
        return _simulated(
            fragment, pa, dwells, self.k, self.offset, rng,
            chemistry=self.chemistry, sample_rate=sample_rate,
        )  # fmt: skip


def dwell_samples(rng: np.random.Generator, n: int, sample_rate: float) -> np.ndarray:
    """Samples per event: :data:`DWELL` at 4 kHz, the same durations at ``sample_rate``."""
    scale = sample_rate / SAMPLE_RATE
    return np.rint(scale * (2 + rng.gamma(*DWELL, size=n))).astype(np.int64).clip(1)


def load_pore_model(path: str | Path = DEFAULT_PORE_MODEL) -> PoreModel:
    """A k-mer table: ONT's text table (columns kmer, level_mean, level_stdv, ...; R9.4), or an
    uncalled4 ``.npz`` (R10.4.1: normalised levels and their ``_pa_mean``/``_pa_stdv``)."""
    if Path(path).suffix == ".npz":
        return _load_npz(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an empty table: an error, not a warning
            table = np.genfromtxt(path, dtype=None, names=True, encoding="ascii", usecols=(0, 1, 2))
        kmers = [str(k) for k in np.atleast_1d(table["kmer"])]
    except (OSError, ValueError, IndexError, UserWarning, UnicodeDecodeError) as error:
        raise InputError(f"not a pore model table ({one_line(error)})", path) from None
    if not kmers:
        raise InputError("not a pore model table (no k-mers)", path)
    k = len(kmers[0])
    if len(kmers) != 4**k:
        raise InputError(f"expected {4**k} k-mers, found {len(kmers)}", path)
    order = np.argsort([_kmer_index(kmer) for kmer in kmers])
    return PoreModel(k, table["level_mean"][order], table["level_stdv"][order])


def _load_npz(path) -> PoreModel:
    """uncalled4's table: every k-mer in order, levels normalised; ``_shift`` the labelled
    base's place (its levels line up with the move tables of real R10.4.1 reads, r = 0.72)."""
    try:
        with np.load(path) as table:
            k, shift = int(table["_k"]), int(table["_shift"])
            pa_mean, pa_sd = float(table["_pa_mean"]), float(table["_pa_stdv"])
            means = table["current.mean"].astype(np.float64) * pa_sd + pa_mean
            event = table["current.stdv"].astype(np.float64) * pa_sd
            stdvs = table["current_sd.mean"].astype(np.float64) * pa_sd
            first = str(table["kmer"][0])
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"not an uncalled4 pore model ({one_line(error)})", path) from None
    if len(means) != 4**k or first != "A" * k:
        raise InputError(f"expected all {4**k} {k}-mers in order", path)
    return PoreModel(k, means, stdvs, event, shift, R1041)


def _kmer_index(kmer: str) -> int:
    return int(kmer.translate(str.maketrans("ACGT", "0123")), 4)


@dataclass
class EventLibrary:
    """Real events (normalised samples) filed by k-mer. The events of k-mer ``m`` are
    ``first[m]`` to ``first[m + 1]``, event ``e`` is ``samples[bounds[e]:bounds[e + 1]]``; a k-mer
    never seen borrows the events of ``stand_in[m]``, the seen k-mer that differs from it
    farthest from the labelled base."""

    k: int
    offset: int  # the labelled base's place in its k-mer, fitted to the events
    samples: np.ndarray
    bounds: np.ndarray
    first: np.ndarray
    stand_in: np.ndarray

    def simulate(
        self, fragment: str, rng: np.random.Generator, sample_rate: float = SAMPLE_RATE
    ) -> SimulatedRead:
        """A read of ``fragment`` pieced together from a random real event of each k-mer, in
        pA as a typical R9.4.1 read (basecalling normalises that scale away again); the events
        are the reads' own, at 4 kHz."""
        if sample_rate != SAMPLE_RATE:
            raise InputError(f"real events are at {SAMPLE_RATE:g} Hz, not {sample_rate:g}")
        kmer = self.stand_in[kmer_indices(_fragment_codes(fragment, self.k), self.k)]
        count = self.first[kmer + 1] - self.first[kmer]
        event = self.first[kmer] + (rng.random(len(kmer)) * count).astype(np.int64)
        dwells = self.bounds[event + 1] - self.bounds[event]
        starts = np.concatenate([[0], np.cumsum(dwells)[:-1]])
        gather = np.repeat(self.bounds[event] - starts, dwells) + np.arange(dwells.sum())
        pa = PA_SHIFT + PA_SCALE * self.samples[gather]
        return _simulated(fragment, pa, dwells, self.k, self.offset, rng)

    @classmethod
    def from_reads(
        cls, reads: Iterable[LabelledRead], region: Region | None = None, k: int = 6
    ) -> EventLibrary:
        """Every event of ``reads`` whose k-mer lies wholly inside ``region``. The labelled
        base's place in the k-mer puts it one base inside the (k - 2)-mer that best predicts the
        event means (cross-validated; a few reads settle the core, not all 4**k k-mers)."""
        region = region or Region()
        codes, means, spans, allowed = [], [], [], []
        for read in reads:  # event j: from its first sample to the next event's
            ends = read.starts[1:]
            ok = (ends > read.starts[:-1]) & (ends <= len(read.signal))
            codes.append(read.bases[:-1].astype(np.int64) - 1)
            spans.append((read.signal, read.starts[:-1], ends))
            means.append(_event_means(read.signal, read.starts[:-1], ends))
            allowed.append(region.allows(read.positions[:-1]) & ok)
        if not codes or sum(len(c) for c in codes) < k:
            raise InputError("no labelled events to build a signal library from")
        if k < 3:
            raise ValueError("k-mers of 3 or more bases")
        offset = 1 + max(range(k - 2), key=lambda o: _explained(codes, means, allowed, k - 2, o))
        keys, pieces = [], []
        for code, (signal, begin, end), ok in zip(codes, spans, allowed, strict=True):
            kmer, inside = _kmers_at(code, ok, k, offset)
            keys.append(kmer[inside])
            pieces += [signal[b:e] for b, e in zip(begin[inside], end[inside], strict=True)]
        keys = np.concatenate(keys)
        if not len(keys):
            raise InputError("no labelled events inside the region")
        order = np.argsort(keys, kind="stable")
        lengths = np.array([len(pieces[i]) for i in order], dtype=np.int64)
        counts = np.bincount(keys, minlength=4**k)
        return cls(
            k,
            offset,
            np.concatenate([pieces[i] for i in order]).astype(np.float32),
            np.concatenate([[0], np.cumsum(lengths)]),
            np.concatenate([[0], np.cumsum(counts)]),
            _stand_ins(counts, k, offset),
        )


def _event_means(signal, begin, end) -> np.ndarray:
    sums = np.concatenate([[0.0], np.cumsum(signal, dtype=np.float64)])
    safe_end = np.clip(end, 0, len(signal))
    return (sums[safe_end] - sums[np.minimum(begin, safe_end)]) / np.maximum(safe_end - begin, 1)


def _kmers_at(codes, ok, k: int, offset: int):
    """The k-mer index around each event (its base at ``offset``) and whether all of it is
    known and allowed."""
    n = len(codes)
    kmer = np.zeros(n, dtype=np.int64)
    inside = np.ones(n, dtype=bool)
    for j in range(k):
        at = np.arange(n) - offset + j
        valid = (at >= 0) & (at < n)
        safe = np.clip(at, 0, max(0, n - 1))
        inside &= valid & ok[safe]
        kmer = kmer * 4 + np.where(valid, codes[safe], 0)
    return kmer, inside


def _explained(codes, means, allowed, k: int, offset: int) -> float:
    """Cross-validated R^2 of the event means by k-mer, the labelled base at ``offset``: means
    fitted on every other event predict the rest (an unseen k-mer predicts the overall mean)."""
    keys, values = [], []
    for code, mean, ok in zip(codes, means, allowed, strict=True):
        kmer, inside = _kmers_at(code, ok, k, offset)
        keys.append(kmer[inside])
        values.append(mean[inside])
    keys, values = np.concatenate(keys), np.concatenate(values)
    fit, test = slice(0, None, 2), slice(1, None, 2)
    if len(values) < 4 or values[test].var() == 0:
        return 0.0
    counts = np.bincount(keys[fit], minlength=4**k)
    sums = np.bincount(keys[fit], values[fit], minlength=4**k)
    fitted = np.where(counts > 0, sums / np.maximum(counts, 1), values[fit].mean())
    return 1.0 - np.mean((values[test] - fitted[keys[test]]) ** 2) / values[test].var()


def _stand_ins(counts: np.ndarray, k: int, offset: int) -> np.ndarray:
    """For each k-mer, itself if seen, else the most seen k-mer equal to it outside the
    positions farthest from the labelled base (as few as will do)."""
    index = np.arange(4**k)
    stand_in = np.where(counts > 0, index, -1)
    digits = [(index // 4 ** (k - 1 - j)) % 4 for j in range(k)]
    free = sorted(range(k), key=lambda j: -abs(j - offset))
    for depth in range(1, k + 1):
        missing = stand_in < 0
        if not missing.any():
            break
        key = sum(digits[j] * 4 ** (k - 1 - j) for j in range(k) if j not in free[:depth])
        best = np.full(4**k, -1)  # per key, its most seen k-mer: count and index in one number
        np.maximum.at(best, key, np.where(counts > 0, counts * 4**k + index, -1))
        found = best[key]
        use = missing & (found >= 0)
        stand_in[use] = found[use] % 4**k
    return stand_in


def random_genome(length: int, seed: int = 1) -> dict[str, str]:
    """A uniformly random genome: training sequence a model cannot learn by heart."""
    bases = np.frombuffer(b"ACGT", np.uint8)[np.random.default_rng(seed).integers(0, 4, length)]
    return {"random": bases.tobytes().decode()}


def simulate_reads(
    reference: dict[str, str],
    source: PoreModel | EventLibrary,
    count: int,
    length: int = 2000,
    seed: int = 1,
    region: tuple[int, int] | None = None,
    sample_rate: float = SAMPLE_RATE,
) -> Iterator[SimulatedRead]:
    """``count`` reads of about ``length`` bases from random places and strands of the reference,
    their signal from ``source`` at ``sample_rate``.

    ``region`` (start, end) limits where fragments may come from (keep held-out data out).
    """
    rng = np.random.default_rng(seed)
    names = list(reference)
    for _ in range(count):
        name = names[rng.integers(len(names))]
        genome = reference[name].upper()
        if not set(genome) & set("ACGT"):
            raise InputError(f"{name} holds no A, C, G or T to simulate reads of")
        lo, hi = region or (0, len(genome))
        hi = min(hi, len(genome))
        if hi - lo <= source.k:
            raise InputError(
                f"the region {lo}-{hi} holds fewer than {source.k + 1} bases of {name} "
                f"({len(genome)} bases long)"
            )
        size = int(min(hi - lo, max(source.k + 1, rng.normal(length, length / 4))))
        start = int(rng.integers(lo, hi - size + 1))
        fragment = genome[start : start + size]
        if "N" in fragment or set(fragment) - set("ACGT"):
            fragment = "".join(b if b in "ACGT" else "A" for b in fragment)
        if rng.random() < 0.5:  # the forward strand
            read = source.simulate(fragment, rng, sample_rate)
            read.positions = read.positions + start
        else:  # the reverse strand, read 5' to 3'
            read = source.simulate(reverse_complement(fragment), rng, sample_rate)
            read.positions = start + size - 1 - read.positions
        yield read


def labelled(read: SimulatedRead, normalisation: Normalisation = MED_MAD) -> LabelledRead:
    """A simulated read as training labels (same layout as Tombo/BAM labels)."""
    signal, _, _ = normalisation(read.pa)
    bases = BASE_CODE[np.frombuffer(read.bases.encode(), np.uint8)]
    settings = SignalSettings(read.chemistry, read.sample_rate, normalisation)
    return LabelledRead(
        read.read_id, signal, bases, read.starts, read.positions, settings, "simulated"
    )


def as_read(read: SimulatedRead, number: int, start_sample: int) -> Read:
    """The simulated read as a raw-signal :class:`Read` (int16 with this module's calibration)."""
    signal = np.rint(read.pa * DIGITISATION / RANGE - OFFSET)
    return Read(
        read_id=read.read_id,
        signal=np.clip(signal, -32768, 32767).astype(np.int16),
        offset=OFFSET,
        range=RANGE,
        digitisation=DIGITISATION,
        sample_rate=read.sample_rate,
        channel=1 + number % 512,
        mux=1,
        read_number=number,
        start_sample=start_sample,
        run_id="nanoseq-simulated",
        metadata={**RUN_INFO[read.chemistry], "median_before": 220.0},
    )


def write_reads(reads: Iterable[SimulatedRead], path: str | Path, truth: str | Path) -> int:
    """Write simulated reads as pod5 or blow5 (by suffix) and their truth as FASTA."""
    records = []

    def stream():
        start = 0
        for number, read in enumerate(reads, start=1):
            records.append(f">{read.read_id}\n{read.bases}\n")
            yield as_read(read, number, start)
            start += len(read.pa) + 4000  # a gap between reads, as on a channel

    count = write_signal(stream(), path)
    with atomic_write(truth) as handle:
        handle.write("".join(records))
    return count
