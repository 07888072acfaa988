"""Tabular summaries of signal files: one row per read or one per file (``nanoseq inspect``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from nanoseq.signal.readers import Read, find_signal_files, read_file


def read_row(read: Read) -> dict:
    """What a user wants to see of one read."""
    return {
        "read_id": read.read_id,
        "filename": read.filename,
        "format": read.format,
        "channel": read.channel,
        "mux": read.mux,
        "read_number": read.read_number,
        "start_time": round(read.start_time, 4),
        "sample_rate": read.sample_rate,
        "samples": read.num_samples,
        "duration_s": round(read.duration, 4),
        "mean_pa": round(float(np.mean(read.pa)), 3),
        "run_id": read.run_id,
        "chemistry": read.chemistry,
        "sequencing_kit": read.metadata.get("sequencing_kit", ""),
        "flow_cell_product_code": read.metadata.get("flow_cell_product_code", ""),
    }


def read_rows(paths: Iterable[str]) -> Iterator[dict]:
    """One row per read, streaming."""
    for path in find_signal_files(paths):
        for read in read_file(path):
            yield read_row(read)


_PER_FILE = {
    "format": lambda read: read.format,
    "sample_rate": lambda read: read.sample_rate,
    "run_id": lambda read: read.run_id,
    "chemistry": lambda read: read.chemistry,
    "sequencing_kit": lambda read: read.metadata.get("sequencing_kit"),
    "flow_cell_product_code": lambda read: read.metadata.get("flow_cell_product_code"),
}


def file_rows(paths: Iterable[str]) -> Iterator[dict]:
    """One row per file: read count, samples, duration and the run ids, rates and kits seen."""
    for path in find_signal_files(paths):
        reads = samples = 0
        duration = 0.0
        seen: dict[str, set] = {key: set() for key in _PER_FILE}
        for read in read_file(path):
            reads += 1
            samples += read.num_samples
            duration += read.duration
            for key, value in _PER_FILE.items():
                if value(read) not in ("", None):
                    seen[key].add(value(read))
        yield {
            "filename": str(path),
            "reads": reads,
            "samples": samples,
            "duration_s": round(duration, 3),
            **{key: ",".join(str(v) for v in sorted(values)) for key, values in seen.items()},
        }
