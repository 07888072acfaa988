"""How far a long job is, on stderr: on a terminal a bar with its total and time left; elsewhere
(a Slurm log, a pipe) one status line every 30 seconds, which a log keeps."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("nanoseq")

EVERY = 30.0  # seconds between status lines off a terminal


class Progress:
    """``update(n, **figures)`` as work is done (figures: shown beside the count, e.g.
    samples/s); ``total`` (None: unknown) gives the time left. A context manager."""

    def __init__(self, what: str, total: int | None = None, unit: str = "reads"):
        self.what, self.total, self.unit = what, total, unit
        self.done, self.figures = 0, {}
        self.start = self.said = time.monotonic()
        self.bar = None
        if sys.stderr.isatty():
            self.bar = tqdm(desc=what, total=total, unit=f" {unit}", dynamic_ncols=True)

    def update(self, n: int = 1, **figures) -> None:
        self.done += n
        self.figures = figures
        if self.bar is not None:
            self.bar.set_postfix(figures, refresh=False)
            self.bar.update(n)
        elif time.monotonic() - self.said >= EVERY:
            self.said = time.monotonic()
            log.info("%s", self.status())

    def status(self) -> str:
        """e.g. "basecalling: 120 of 500 reads, samples/s 3.1e+05, 2.0 min left"."""
        count = f"{self.done} of {self.total}" if self.total else f"{self.done}"
        parts = [f"{self.what}: {count} {self.unit}"]
        parts += [f"{name} {value}" for name, value in self.figures.items()]
        elapsed = time.monotonic() - self.start
        if self.total and self.done:
            left = elapsed * (self.total - self.done) / self.done
            parts.append(f"{left / 60:.1f} min left")
        return ", ".join(parts)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_) -> None:
        self.close()
