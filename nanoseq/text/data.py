"""Text data: corpus files -> token streams -> truncated-BPTT windows.

``bptt_windows`` splits one long stream into ``batch_size`` contiguous rows and cuts them into
``steps``-long windows ordered so that consecutive batches continue each row: fed to ``fit`` with
``batch_size`` rows and no shuffling, row k of batch i+1 follows row k of batch i.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from nanoseq.errors import InputError
from nanoseq.text.vocab import EOS, Vocabulary


def read_text(path: str | Path) -> str:
    """A UTF-8 text file, plain or gzipped."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        with (gzip.open if gzipped else open)(path, "rt", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise InputError(f"not a readable UTF-8 text file ({error})", path) from None
    if not text.strip():
        raise InputError("empty text", path)
    return text


def corpus_text(text: str, level: str) -> str:
    """Word corpora get ``<eos>`` at every line end (the PTB convention, counted as a token)."""
    if level == "char":
        return text
    return " ".join(f"{line} {EOS}" for line in text.splitlines() if line.strip())


def encode_corpus(paths: Iterable[str | Path], vocab: Vocabulary) -> np.ndarray:
    """All files, one after the other, as one id stream."""
    return np.concatenate(
        [vocab.encode(corpus_text(read_text(path), vocab.level)) for path in paths]
    )


def bptt_windows(stream: np.ndarray, batch_size: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-token targets, each ``(windows * batch_size, steps)``, batch-major order."""
    rows = (len(stream) - 1) // batch_size
    windows = rows // steps
    if windows == 0:
        raise InputError(
            f"text too short: {len(stream)} tokens for batch {batch_size} x {steps} steps"
        )
    usable = windows * steps

    def cut(offset):
        grid = stream[offset : offset + rows * batch_size].reshape(batch_size, rows)[:, :usable]
        # (batch, windows, steps) -> (windows, batch, steps): batch i is window i of every row
        return grid.reshape(batch_size, windows, steps).transpose(1, 0, 2).reshape(-1, steps)

    return cut(0), cut(1)
