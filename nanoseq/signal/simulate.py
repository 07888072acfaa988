"""Simulated nanopore reads from a k-mer pore model and a reference.

Per k-mer a dwell of ``round(N(9, 4)) >= 1`` samples (4 kHz), each sample drawn from
``N(level_mean, level_stdv)`` of that k-mer (pA). Event ``i`` (k-mer ``seq[i:i+k]``) is labelled
with its centre base, so a fragment of ``L`` bases yields ``L - k + 1`` labelled bases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError
from nanoseq.signal.labels import BASE_CODE, LabelledRead
from nanoseq.signal.normalize import normalise

DEFAULT_PORE_MODEL = Path(__file__).parents[1] / "assets" / "r9.4_450bps_6mer_template.model"
DIGITISATION, RANGE, OFFSET = 8192.0, 1400.0, 0.0  # calibration of the written files
_COMPLEMENT = str.maketrans("ACGT", "TGCA")


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
    fragment: str, pore: PoreModel, rng: np.random.Generator, dwell=(9.0, 4.0)
) -> SimulatedRead:
    """Signal for one fragment (A/C/G/T only) read 5' to 3'."""
    codes = BASE_CODE[np.frombuffer(fragment.encode(), np.uint8)].astype(np.int64) - 1
    if len(codes) < pore.k or (codes < 0).any():
        raise ValueError("fragment must be at least k bases of A, C, G, T")
    n = len(codes) - pore.k + 1
    index = np.zeros(n, dtype=np.int64)
    for j in range(pore.k):
        index = index * 4 + codes[j : j + n]
    dwells = np.maximum(1, np.rint(rng.normal(*dwell, size=n))).astype(np.int64)
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
            read = simulate_read(fragment.translate(_COMPLEMENT)[::-1], pore, rng)
            read.positions = start + size - 1 - read.positions
        yield read


def labelled(read: SimulatedRead, norm: str = "med_mad") -> LabelledRead:
    """A simulated read as training labels (same layout as Tombo/BAM labels)."""
    signal, _, _ = normalise(read.pa, norm)
    bases = BASE_CODE[np.frombuffer(read.bases.encode(), np.uint8)]
    return LabelledRead(read.read_id, signal, bases, read.starts, read.positions)


def raw(pa: np.ndarray) -> np.ndarray:
    """pA -> int16 with the written files' calibration."""
    return np.clip(np.rint(pa * DIGITISATION / RANGE - OFFSET), -32768, 32767).astype(np.int16)


def write_reads(reads, path: str | Path, truth: str | Path) -> int:
    """Write reads as pod5 or blow5 (by suffix) and their truth as FASTA; return the count."""
    path, truth = Path(path), Path(truth)
    suffix = path.suffix.lower()
    if suffix not in (".pod5", ".blow5"):
        raise InputError("simulated reads are written as .pod5 or .blow5", path)
    temp = path.with_name(f".{path.stem}.tmp{suffix}")
    temp.unlink(missing_ok=True)
    records = []
    writer = _write_pod5 if suffix == ".pod5" else _write_blow5
    count = writer(temp, reads, records)
    temp.replace(path)
    truth_temp = truth.with_name(f".{truth.name}.tmp")
    truth_temp.write_text("".join(f">{rid}\n{bases}\n" for rid, bases in records))
    truth_temp.replace(truth)
    return count


def _write_pod5(path, reads, records) -> int:
    import datetime

    import pod5

    when = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    run = pod5.RunInfo(
        acquisition_id="nanoseq-simulated",
        acquisition_start_time=when,
        adc_max=4095,
        adc_min=-4096,
        context_tags={"sample_frequency": "4000"},
        experiment_name="simulated",
        flow_cell_id="",
        flow_cell_product_code="FLO-MIN106",
        protocol_name="",
        protocol_run_id="",
        protocol_start_time=when,
        sample_id="simulated",
        sample_rate=4000,
        sequencing_kit="sqk-lsk109",
        sequencer_position="",
        sequencer_position_type="",
        software="nanoseq simulate",
        system_name="",
        system_type="",
        tracking_id={},
    )
    reason = pod5.EndReason.from_reason_with_default_forced(pod5.EndReasonEnum.SIGNAL_POSITIVE)
    start = 0
    with pod5.Writer(path) as writer:
        for number, read in enumerate(reads, start=1):
            writer.add_read(
                pod5.Read(
                    read_id=uuid.UUID(read.read_id),
                    pore=pod5.Pore(1 + number % 512, 1, "not_set"),
                    calibration=pod5.Calibration(OFFSET, RANGE / DIGITISATION),
                    read_number=number,
                    start_sample=start,
                    median_before=220.0,
                    end_reason=reason,
                    run_info=run,
                    signal=raw(read.pa),
                )
            )
            start += len(read.pa) + 4000
            records.append((read.read_id, read.bases))
    return len(records)


def _write_blow5(path, reads, records) -> int:
    import pyslow5

    handle = pyslow5.Open(str(path), "w")
    handle.write_header(
        {
            "run_id": "nanoseq-simulated",
            "sequencing_kit": "sqk-lsk109",
            "flow_cell_product_code": "FLO-MIN106",
        }
    )
    start = 0
    for number, read in enumerate(reads, start=1):
        record = handle.get_empty_record()
        signal = raw(read.pa)
        record.update(
            read_id=read.read_id,
            read_group=0,
            digitisation=DIGITISATION,
            offset=OFFSET,
            range=RANGE,
            sampling_rate=4000.0,
            len_raw_signal=len(signal),
            signal=signal,
        )
        handle.write_record(
            record,
            {
                "channel_number": str(1 + number % 512),
                "read_number": number,
                "start_mux": 1,
                "start_time": start,
                "median_before": 220.0,
            },
        )
        start += len(signal) + 4000
        records.append((read.read_id, read.bases))
    handle.close()
    return len(records)
