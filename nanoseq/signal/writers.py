"""Write :class:`~nanoseq.signal.readers.Read` records as pod5 or blow5: the readers' inverse,
used for simulated reads, sample data and format conversion. Written to a temporary name and
renamed, so a crash never leaves half a file."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from pathlib import Path

from nanoseq.errors import InputError
from nanoseq.io import writable
from nanoseq.runtime import import_module
from nanoseq.signal.readers import Read

FORMATS = (".pod5", ".blow5")


def write_signal(reads: Iterable[Read], path: str | Path) -> int:
    """Write ``reads`` to ``path`` (format by suffix); return how many were written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"signal is written as {' or '.join(FORMATS)}", path)
    writable(path)
    temp = path.with_name(f".{path.stem}.tmp{suffix}")
    temp.unlink(missing_ok=True)
    try:
        count = (_write_pod5 if suffix == ".pod5" else _write_blow5)(temp, reads)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    temp.replace(path)
    return count


def _run_start(read: Read) -> datetime.datetime:
    return read.run_start or datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


def _write_pod5(path: Path, reads: Iterable[Read]) -> int:
    pod5 = import_module("pod5")

    runs: dict[str, pod5.RunInfo] = {}
    count = 0
    with pod5.Writer(path) as writer:
        for read in reads:
            if read.run_id not in runs:
                when = _run_start(read)
                meta = read.metadata
                runs[read.run_id] = pod5.RunInfo(
                    acquisition_id=read.run_id,
                    acquisition_start_time=when,
                    adc_max=4095,
                    adc_min=-4096,
                    context_tags={
                        "sample_frequency": str(int(read.sample_rate)),
                        "sequencing_kit": meta.get("sequencing_kit", ""),
                    },
                    experiment_name="",
                    flow_cell_id=meta.get("flow_cell_id", ""),
                    flow_cell_product_code=meta.get("flow_cell_product_code", ""),
                    protocol_name="",
                    protocol_run_id="",
                    protocol_start_time=when,
                    sample_id="",
                    sample_rate=int(read.sample_rate),
                    sequencing_kit=meta.get("sequencing_kit", ""),
                    sequencer_position="",
                    sequencer_position_type="",
                    software="nanoseq",
                    system_name="",
                    system_type="",
                    tracking_id={},
                )
            writer.add_read(
                pod5.Read(
                    read_id=uuid.UUID(read.read_id),
                    pore=pod5.Pore(read.channel, read.mux, "not_set"),
                    calibration=pod5.Calibration(read.offset, read.scale),
                    read_number=read.read_number,
                    start_sample=read.start_sample,
                    median_before=float(read.metadata.get("median_before", 0.0)),
                    end_reason=pod5.EndReason.from_reason_with_default_forced(
                        pod5.EndReasonEnum.SIGNAL_POSITIVE
                    ),
                    run_info=runs[read.run_id],
                    signal=read.signal,
                )
            )
            count += 1
    return count


def _write_blow5(path: Path, reads: Iterable[Read]) -> int:
    import pyslow5

    handle = pyslow5.Open(str(path), "w")
    count = 0
    try:
        for read in reads:
            if count == 0:  # one read group: the first read's run
                meta = read.metadata
                handle.write_header(
                    {
                        "run_id": read.run_id,
                        "sequencing_kit": meta.get("sequencing_kit", ""),
                        "flow_cell_product_code": meta.get("flow_cell_product_code", ""),
                        "exp_start_time": _run_start(read).isoformat(),
                    }
                )
            record = handle.get_empty_record()
            record.update(
                read_id=read.read_id,
                read_group=0,
                digitisation=read.digitisation,
                offset=read.offset,
                range=read.range,
                sampling_rate=read.sample_rate,
                len_raw_signal=read.num_samples,
                signal=read.signal,
            )
            handle.write_record(
                record,
                {
                    "channel_number": str(read.channel),
                    "read_number": read.read_number,
                    "start_mux": read.mux,
                    "start_time": read.start_sample,
                    "median_before": float(read.metadata.get("median_before", 0.0)),
                },
            )
            count += 1
    finally:
        handle.close()
    return count
