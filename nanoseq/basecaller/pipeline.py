"""Streaming basecalling: reads -> normalise -> windows -> batches across reads -> model ->
stitch -> decode -> :class:`~nanoseq.io.Call`.

Windows of several reads share a batch; a read's call is yielded as soon as its last window has
been through the model, in input order. Only the reads in flight are held, so memory stays flat
whatever the input size. With ``workers`` > 1, a thread reads and prepares reads ahead and a
pool of threads decodes, so that the model (in the calling thread) waits on neither; the
``timing`` dict receives the seconds the model was busy.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import keras
import numpy as np

from nanoseq.basecaller.decode import decode
from nanoseq.io import Call
from nanoseq.runtime import compiled_for
from nanoseq.signal.chunks import chunk, stitch
from nanoseq.signal.normalize import normalise, trim_start
from nanoseq.signal.readers import Read

log = logging.getLogger(__name__)

# Windows per model call. On 2 CPU cores the recurrent steps run faster the more rows they carry
# (the CTC model v4 alone: 131 k samples/s at 64 windows, 165 k at 256, 190 k at 384, 215 k at
# 512), and memory grows by about 2.4 MB a window of 3,600 samples (peak RSS of a whole run
# 1.1 GB at 64, 1.8 GB at 384, 2.1 GB at 512). A CRF head's scores and scans take more: the
# model alone 1.85 GB at 320 windows, 1.94 at 352, 2.05 at 384 (v4 with a CRF head): 320 is the
# most that stays under 2 GB.
BATCH_SIZE = 320


@dataclass
class _InFlight:
    read: Read
    trimmed: int
    length: int
    shift: float
    scale: float
    starts: np.ndarray
    outputs: list = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every window has been through the model."""
        return len(self.outputs) == len(self.starts)


class Runner:
    """Runs the model on batches of ``batch_size`` windows. A shorter batch (a run's last) is
    padded only up to the smallest of ``batch_size``, its half, quarter or eighth that holds
    it, so that a short run does not pay for a whole batch and at most four shapes compile."""

    def __init__(
        self, model: keras.Model, batch_size: int, chunk_size: int, timing=None, width: int = 1
    ):
        self.batch_size, self.chunk_size = batch_size, chunk_size
        # a CRF's beam search runs in the graph (one compilation a width); CTC's on the host
        self.width = width if model.decoder == "crf" else 1
        # compiled with XLA once per model (3-4 s on 2 CPU cores), reused by later runs
        self.forward = compiled_for(model, _inference, xla=True)
        self.timing = timing if timing is not None else {}
        self.timing.setdefault("model_seconds", 0.0)

    def padded_size(self, n: int) -> int:
        """Rows of the batch that holds ``n`` windows."""
        size = self.batch_size
        for _ in range(3):
            if size % 2 or size // 2 < n:
                break
            size //= 2
        return size

    def __call__(self, windows) -> np.ndarray:
        """Model output for a sequence of up to ``batch_size`` windows."""
        n = len(windows)
        batch = np.zeros((self.padded_size(n), self.chunk_size, 1), dtype=np.float32)
        batch[:n, :, 0] = windows
        start = time.perf_counter()
        outputs = keras.ops.convert_to_numpy(self.forward(batch, self.width))[:n]
        self.timing["model_seconds"] += time.perf_counter() - start
        return outputs


def _inference(model: keras.Model, x, width: int):
    return model.decoder_input(x, width)


def basecall(
    reads: Iterable[Read],
    model: keras.Model,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    overlap: int | None = None,
    beam_width: int = 1,
    trim: bool = True,
    workers: int = 1,
    timing: dict | None = None,
) -> Iterator[Call]:
    """Yield one :class:`Call` per read, in input order."""
    stitched = stitched_outputs(
        reads, model, batch_size, chunk_size, overlap, trim, workers, timing, beam_width
    )
    if workers <= 1:
        for item, outputs in stitched:
            yield _call(item, outputs, model, beam_width)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:
        futures = deque()
        for item, outputs in stitched:
            futures.append(pool.submit(_call, item, outputs, model, beam_width))
            while futures and (futures[0].done() or len(futures) > 2 * workers):
                yield futures.popleft().result()
        while futures:
            yield futures.popleft().result()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def background(items: Iterable, depth: int) -> Iterator:
    """``items`` produced by a daemon thread up to ``depth`` ahead; its errors raised here."""
    buffer: queue.Queue = queue.Queue(depth)
    end = object()

    def produce():
        try:
            for item in items:
                buffer.put(item)
        except BaseException as error:  # handed to the consumer, raised there
            buffer.put(_Failed(error))
        buffer.put(end)

    threading.Thread(target=produce, name="read-ahead", daemon=True).start()
    while (item := buffer.get()) is not end:
        if isinstance(item, _Failed):
            raise item.error
        yield item


def stitched_outputs(
    reads: Iterable[Read],
    model: keras.Model,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    overlap: int | None = None,
    trim: bool = True,
    workers: int = 1,
    timing: dict | None = None,
    beam_width: int = 1,
) -> Iterator[tuple[_InFlight, np.ndarray]]:
    """Per read, in input order: its record and the model's stitched decoder input (frames, 5):
    CTC logits or a CRF's path (found by a beam of ``beam_width``) and posteriors (see
    :meth:`Basecaller.decoder_input`).
    ``batch_size`` defaults to :data:`BATCH_SIZE`, ``chunk_size`` and ``overlap`` to the model's."""
    meta = model.metadata
    size = chunk_size or meta["chunk_size"]
    overlap = meta["overlap"] if overlap is None else overlap
    stride = model.stride
    runner = Runner(model, batch_size or BATCH_SIZE, size, timing, beam_width)
    pending: deque[_InFlight] = deque()
    queue: list[tuple[_InFlight, np.ndarray]] = []
    warned: set[float] = set()

    def run_queue():
        outputs = runner([window for _, window in queue])
        for (item, _), out in zip(queue, outputs, strict=True):
            item.outputs.append(out)
        queue.clear()

    def finished():
        while pending and pending[0].complete:
            item = pending.popleft()
            outputs, item.outputs = np.stack(item.outputs), []
            yield item, stitch(outputs, item.starts, item.length, size, overlap, stride)

    prepared = (
        (read, *prepare_read(read, meta["normalisation"], size, overlap, model.input_stride, trim))
        for read in reads
    )
    if workers > 1:
        prepared = background(prepared, depth=4 * workers)
    for read, item, windows in prepared:
        _check_rate(read, meta, warned)
        pending.append(item)
        for window in windows:
            queue.append((item, window))
            if len(queue) == runner.batch_size:
                run_queue()
                yield from finished()
    if queue:
        run_queue()
    yield from finished()


def _check_rate(read: Read, meta: dict, warned: set) -> None:
    expected = meta.get("sample_rate")
    if expected and abs(read.sample_rate - expected) > 0.05 * expected:
        if read.sample_rate not in warned:
            warned.add(read.sample_rate)
            log.warning(
                "%s: reads sampled at %g Hz but the model expects %g Hz; calls will be poor",
                read.filename,
                read.sample_rate,
                expected,
            )


def prepare_read(read: Read, method: str, size: int, overlap: int, stride: int, trim: bool = True):
    """The read's in-flight record and its windows (trimmed, normalised signal); ``stride`` is
    the model's input stride, which window sizes, overlaps and starts are multiples of."""
    pa = read.pa
    trimmed = trim_start(pa) if trim else 0
    signal, shift, scale = normalise(pa[trimmed:], method)
    windows, starts = chunk(signal, size, overlap, stride)
    return _InFlight(read, trimmed, len(signal), shift, scale, starts), windows


def _call(item: _InFlight, outputs: np.ndarray, model: keras.Model, beam_width: int) -> Call:
    sequence, qualities, moves = decode(outputs, beam_width, model.decoder)
    read = item.read
    return Call(
        read_id=read.read_id,
        sequence=sequence,
        qualities=qualities,
        moves=moves,
        stride=model.stride,
        num_samples=read.num_samples,
        trimmed_samples=item.trimmed,
        channel=read.channel,
        mux=read.mux,
        read_number=read.read_number,
        start_time=_start_time(read),
        start_seconds=read.start_time,
        duration=read.duration,
        sample_rate=read.sample_rate,
        shift=item.shift,
        scale=item.scale,
        run_id=read.run_id,
        filename=read.filename,
    )


def _start_time(read: Read) -> str | None:
    """ISO-8601 time of the read's first sample, when the run's start time is known."""
    if read.run_start is None:
        return None
    return (read.run_start + timedelta(seconds=read.start_time)).isoformat(timespec="milliseconds")
