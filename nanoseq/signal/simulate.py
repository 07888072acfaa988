"""Simulated nanopore reads from a k-mer pore model and a reference.

Per k-mer a dwell of ``2 + round(Gamma(0.95, 8.5))`` samples (4 kHz): mean 10, sd 8.2 and a long
tail, as in the Tombo events of the lambda training reads. Each sample is drawn from
``N(level_mean, level_stdv)`` of that k-mer (pA). Event ``i`` (k-mer ``seq[i:i+k]``) is labelled
with its centre base, so a fragment of ``L`` bases yields ``L - k + 1`` labelled bases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError
from nanoseq.io import atomic_write
from nanoseq.sequence import reverse_complement
from nanoseq.signal.labels import BASE_CODE, LabelledRead
from nanoseq.signal.normalize import normalise
from nanoseq.signal.readers import Read
from nanoseq.signal.writers import write_signal

DEFAULT_PORE_MODEL = Path(__file__).parents[1] / "assets" / "r9.4_450bps_6mer_template.model"
DWELL = (0.95, 8.5)  # gamma shape and scale of the dwell beyond its 2-sample minimum
DIGITISATION, RANGE, OFFSET = 8192.0, 1400.0, 0.0  # calibration of the written reads


@dataclass
class PoreModel:
    k: int
    means: np.ndarray  # by k-mer index (base-4 number, A=0 C=1 G=2 T=3)
    stdvs: np.ndarray


def load_pore_model(path: str | Path = DEFAULT_PORE_MODEL) -> PoreModel:
    """ONT's k-mer model table (columns kmer, level_mean, level_stdv, ...)."""
    try:
        table = np.genfromtxt(path, dtype=None, names=True, encoding="ascii", usecols=(0, 1, 2))
        kmers = [str(k) for k in table["kmer"]]
    except (OSError, ValueError) as error:
        raise InputError(f"not a pore model table ({error})", path) from None
    k = len(kmers[0])
    if len(kmers) != 4**k:
        raise InputError(f"expected {4**k} k-mers, found {len(kmers)}", path)
    order = np.argsort([_kmer_index(kmer) for kmer in kmers])
    return PoreModel(k, table["level_mean"][order], table["level_stdv"][order])


def _kmer_index(kmer: str) -> int:
    return int(kmer.translate(str.maketrans("ACGT", "0123")), 4)


@dataclass
class SimulatedRead:
    read_id: str
    pa: np.ndarray  # float32 signal in pA
    bases: str  # the labelled bases (truth)
    starts: np.ndarray  # first sample of each labelled base
    positions: np.ndarray  # reference position of each labelled base (read orientation)


def simulate_read(
    fragment: str, pore: PoreModel, rng: np.random.Generator, dwell=DWELL
) -> SimulatedRead:
    """Signal for one fragment (A/C/G/T only) read 5' to 3'."""
    codes = BASE_CODE[np.frombuffer(fragment.encode(), np.uint8)].astype(np.int64) - 1
    if len(codes) < pore.k or (codes < 0).any():
        raise ValueError("fragment must be at least k bases of A, C, G, T")
    n = len(codes) - pore.k + 1
    index = np.zeros(n, dtype=np.int64)
    for j in range(pore.k):
        index = index * 4 + codes[j : j + n]
    dwells = 2 + np.rint(rng.gamma(*dwell, size=n)).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(dwells)[:-1]])
    per_sample = np.repeat(index, dwells)
    pa = rng.normal(pore.means[per_sample], pore.stdvs[per_sample]).astype(np.float32)
    centre = pore.k // 2
    return SimulatedRead(
        str(uuid.UUID(bytes=rng.bytes(16), version=4)),
        pa,
        fragment[centre : centre + n],
        starts,
        np.arange(n) + centre,
    )


def random_genome(length: int, seed: int = 1) -> dict[str, str]:
    """A uniformly random genome: training sequence a model cannot learn by heart."""
    bases = np.frombuffer(b"ACGT", np.uint8)[np.random.default_rng(seed).integers(0, 4, length)]
    return {"random": bases.tobytes().decode()}


def simulate_reads(
    reference: dict[str, str],
    pore: PoreModel,
    count: int,
    length: int = 2000,
    seed: int = 1,
    region: tuple[int, int] | None = None,
) -> Iterator[SimulatedRead]:
    """``count`` reads of about ``length`` bases from random places and strands of the reference.

    ``region`` (start, end) limits where fragments may come from (keep held-out data out).
    """
    rng = np.random.default_rng(seed)
    names = list(reference)
    for _ in range(count):
        name = names[rng.integers(len(names))]
        genome = reference[name].upper()
        lo, hi = region or (0, len(genome))
        hi = min(hi, len(genome))
        size = int(min(hi - lo, max(pore.k + 1, rng.normal(length, length / 4))))
        start = int(rng.integers(lo, hi - size + 1))
        fragment = genome[start : start + size]
        if "N" in fragment or set(fragment) - set("ACGT"):
            fragment = "".join(b if b in "ACGT" else "A" for b in fragment)
        if rng.random() < 0.5:  # the forward strand
            read = simulate_read(fragment, pore, rng)
            read.positions = read.positions + start
        else:  # the reverse strand, read 5' to 3'
            read = simulate_read(reverse_complement(fragment), pore, rng)
            read.positions = start + size - 1 - read.positions
        yield read


def labelled(read: SimulatedRead, norm: str = "med_mad") -> LabelledRead:
    """A simulated read as training labels (same layout as Tombo/BAM labels)."""
    signal, _, _ = normalise(read.pa, norm)
    bases = BASE_CODE[np.frombuffer(read.bases.encode(), np.uint8)]
    return LabelledRead(read.read_id, signal, bases, read.starts, read.positions)


def as_read(read: SimulatedRead, number: int, start_sample: int) -> Read:
    """The simulated read as a raw-signal :class:`Read` (int16 with this module's calibration)."""
    signal = np.rint(read.pa * DIGITISATION / RANGE - OFFSET)
    return Read(
        read_id=read.read_id,
        signal=np.clip(signal, -32768, 32767).astype(np.int16),
        offset=OFFSET,
        range=RANGE,
        digitisation=DIGITISATION,
        sample_rate=4000.0,
        channel=1 + number % 512,
        mux=1,
        read_number=number,
        start_sample=start_sample,
        run_id="nanoseq-simulated",
        metadata={
            "sequencing_kit": "sqk-lsk109",
            "flow_cell_product_code": "FLO-MIN106",
            "median_before": 220.0,
        },
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
