"""Streaming basecalling as a chain of stages, each a generator over the one before:

    reads -> prepare -> batch -> model -> unbatch and stitch -> decode -> (read, call)

:func:`prepare` trims a read, normalises it as the model's training data was (its
:class:`~nanoseq.signal.settings.SignalSettings`) and cuts it into windows; :func:`through_model`
packs windows of several reads into batches, runs the compiled model with its head's in-graph
decoding, and gives each read its frames back, stitched, as soon as its last window is through;
:func:`decode` makes the call on the host. Reads stay in input order and only those in flight are
held, so memory stays flat whatever the input size. With ``workers`` > 1 the stages before and
after the model run in threads (:func:`threaded`), so that the model waits on neither reading
nor decoding; the ``timing`` dict receives the seconds the model was busy.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import keras
import numpy as np

from nanoseq.basecaller.choice import AUTO, ModelChoice
from nanoseq.basecaller.model import Basecaller
from nanoseq.errors import InputError
from nanoseq.io import Call
from nanoseq.models import DEFAULT_BEAM_WIDTH
from nanoseq.runtime import compiled_for, side_by_side
from nanoseq.signal.chunks import chunk, stitch
from nanoseq.signal.normalize import trim_start
from nanoseq.signal.readers import Read
from nanoseq.signal.resample import moves_on_read, resample

log = logging.getLogger(__name__)

# Windows in flight: a model call's on an accelerator, shared among the calls made at once on CPUs
# (:func:`batching`). On 2 CPU cores the recurrent steps run faster the more rows they carry
# (the CTC model v4 alone: 131 k samples/s at 64 windows, 165 k at 256, 190 k at 384, 215 k at
# 512), and memory grows by about 2.4 MB a window of 3,600 samples (peak RSS of a whole run
# 1.1 GB at 64, 1.8 GB at 384, 2.1 GB at 512). A CRF head's scores and scans take more: the
# model alone 1.85 GB at 320 windows, 1.94 at 352, 2.05 at 384 (v4 with a CRF head): 320 is the
# most that stays under 2 GB.
BATCH_SIZE = 320


@dataclass(frozen=True)
class Windows:
    """How reads are cut: windows of ``size`` samples sharing ``overlap`` with their neighbours,
    starting on multiples of ``step`` (the model's input stride), with ``stride`` samples a frame
    of output."""

    size: int
    overlap: int
    step: int
    stride: int

    @classmethod
    def of(cls, model: Basecaller, size: int | None = None, overlap: int | None = None) -> Windows:
        """The model's windows (as its metadata says), or those given: at least
        :data:`MIN_STEPS` recurrent steps each, overlapping by less than half."""
        size = size or model.metadata["chunk_size"]
        overlap = model.metadata["overlap"] if overlap is None else overlap
        shortest = MIN_STEPS * model.input_stride
        if size < shortest:
            raise InputError(f"windows of {size} samples are too short: at least {shortest}")
        if not 0 <= 2 * overlap < size:
            raise InputError(f"an overlap of {overlap} samples needs windows over twice as long")
        return cls(size, overlap, model.input_stride, model.stride)


MIN_STEPS = 50  # recurrent steps a window needs for the model to see enough context


@dataclass
class Prepared:
    """A read cut into windows of its normalised signal at the model's sample rate (``length``
    samples; ``samples`` of the read's own after ``trimmed``), with the normalisation's
    ``shift`` and ``scale``."""

    read: Read
    windows: np.ndarray
    starts: np.ndarray
    length: int
    samples: int
    trimmed: int
    shift: float
    scale: float


def basecall(
    reads: Iterable[Read],
    model: Basecaller | str = AUTO,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    overlap: int | None = None,
    trim: bool = True,
    workers: int = 1,
    timing: dict | None = None,
    any_chemistry: bool = False,
) -> Iterator[tuple[Read, Call]]:
    """Yield ``(read, call)`` for each read, in input order, by ``model`` (``auto``: the bundled
    model for each read's chemistry; a :class:`Basecaller`, or a bundled name or path, made for
    the reads' chemistry unless ``any_chemistry``; see :mod:`~nanoseq.basecaller.choice`) with a
    beam search of ``beam_width`` (1: greedy / best path). ``batch_size`` (windows a model
    call) and the calls made at once follow :func:`batching`, ``chunk_size`` and ``overlap``
    default to the model's."""
    choice = ModelChoice(model, any_chemistry)
    options = (beam_width, batch_size, chunk_size, overlap, trim, workers, timing)
    for chosen, run in itertools.groupby(reads, key=choice.choose):
        yield from basecall_with(run, chosen, *options)


def basecall_with(
    reads: Iterable[Read],
    model: Basecaller,
    beam_width: int,
    batch_size: int | None,
    chunk_size: int | None,
    overlap: int | None,
    trim: bool,
    workers: int,
    timing: dict | None,
) -> Iterator[tuple[Read, Call]]:
    """:func:`basecall`'s stages, for reads that one model calls."""
    windows = Windows.of(model, chunk_size, overlap)
    size, streams = batching(model, batch_size)
    runner = Runner(model, size, windows.size, timing, beam_width, streams)
    checked = rate_checked(reads, model.settings.sample_rate)
    prepared = threaded(partial(prepare, model=model, windows=windows, trim=trim), checked, workers)
    stitched = through_model(prepared, runner, windows)
    yield from threaded(partial(decode, model=model, beam_width=beam_width), stitched, workers)


def batching(model: Basecaller, batch_size: int | None = None) -> tuple[int, int]:
    """Windows a model call and calls at once (:class:`Runner`'s ``streams``). On an
    accelerator, one call of ``batch_size``, else of the model's own (its metadata's
    ``batch_size``, an imported model's) or :data:`BATCH_SIZE`. On CPUs, one call a
    CPU thread the model may use: a recurrent layer's steps are small products that keep about
    one core busy (the default R9.4.1 model alone on the held-out windows, 2 cores, 80 windows a
    call: 351-357 k samples/s at 1.2 cores one call at a time, 604-623 k two at once, under
    JAX; 404-406 k and 683-746 k under TensorFlow), so the model's windows are shared among
    them, none under :data:`MIN_CALL_BATCH` (memory stays that of one call of them all);
    ``batch_size``, when given, is each call's."""
    default = model.metadata.get("batch_size", BATCH_SIZE)
    streams = side_by_side(default, MIN_CALL_BATCH)
    return batch_size or default // streams, streams


MIN_CALL_BATCH = 32


def rate_checked(reads: Iterable[Read], expected: float) -> Iterator[Read]:
    """``reads``, with a note for each sample rate found that is not the model's."""
    noted: set[float] = set()
    for read in reads:
        if read.sample_rate != expected and read.sample_rate not in noted:
            noted.add(read.sample_rate)
            log.info(
                "%s: reads at %g Hz are resampled to the model's %g Hz",
                read.filename,
                read.sample_rate,
                expected,
            )
        yield read


def prepare(read: Read, model: Basecaller, windows: Windows, trim: bool = True) -> Prepared:
    """The read's start trimmed, its signal normalised as the model's training data was and
    resampled to the model's sample rate, cut into windows."""
    pa = read.pa
    trimmed = trim_start(pa) if trim else 0
    signal, shift, scale = model.settings.normalisation(pa[trimmed:])
    samples = len(signal)
    signal = resample(signal, read.sample_rate, model.settings.sample_rate)
    cut, starts = chunk(signal, windows.size, windows.overlap, windows.step)
    return Prepared(read, cut, starts, len(signal), samples, trimmed, shift, scale)


class Runner:
    """Runs the model and its head's in-graph decoding (:meth:`Basecaller.frames`, compiled
    with XLA once per model and beam width) on batches of ``batch_size`` windows, ``streams`` of
    them at once (:meth:`map`). A shorter batch (a run's last) is padded only up to the smallest
    of ``batch_size``, its half, quarter or eighth that holds it, so that a short run does not
    pay for a whole batch and at most four shapes compile. ``timing["model_seconds"]`` adds up
    the time at least one batch was being computed."""

    def __init__(
        self,
        model: Basecaller,
        batch_size: int,
        size: int,
        timing=None,
        width: int = 1,
        streams: int = 1,
    ):
        self.batch_size, self.size, self.streams = batch_size, size, streams
        self.width = model.head.compiled_width(width)
        self.forward = compiled_for(model, _frames, xla=True)
        self.timing = timing if timing is not None else {}
        self.timing.setdefault("model_seconds", 0.0)
        self._busy = threading.Lock()
        self._running, self._since = 0, 0.0

    def padded_size(self, n: int) -> int:
        """Rows of the batch that holds ``n`` windows."""
        size = self.batch_size
        for _ in range(3):
            if size % 2 or size // 2 < n:
                break
            size //= 2
        return size

    def __call__(self, windows) -> tuple:
        """The head's frames (a tuple of arrays, a row per window) for up to ``batch_size``
        windows."""
        n = len(windows)
        batch = np.zeros((self.padded_size(n), self.size, 1), dtype=np.float32)
        batch[:n, :, 0] = windows
        with self._busy:
            self._running += 1
            if self._running == 1:  # the model was idle until now
                self._since = time.perf_counter()
        try:
            return tuple(keras.ops.convert_to_numpy(f)[:n] for f in self.forward(batch, self.width))
        finally:
            with self._busy:
                self._running -= 1
                if not self._running:
                    self.timing["model_seconds"] += time.perf_counter() - self._since

    def map(self, batches: Iterable[list]) -> Iterator[tuple]:
        """Each batch's frames, in order; ``streams`` batches computed at once in threads of
        their own, one more waiting. When the caller stops early, the batches running end
        before this returns (and those waiting are dropped)."""
        if self.streams <= 1:
            yield from map(self, batches)
            return
        pool = ThreadPoolExecutor(self.streams, thread_name_prefix="model")
        running: deque[Future] = deque()
        try:
            for batch in batches:
                running.append(pool.submit(self, batch))
                if len(running) > self.streams:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _frames(model: Basecaller, windows, width: int):
    return model.frames(windows, width)


def through_model(
    prepared: Iterable[Prepared], runner: Runner, windows: Windows
) -> Iterator[tuple[Prepared, tuple]]:
    """Batch, model, unbatch and stitch: windows of several reads share a batch; each read comes
    out with its frames stitched (:func:`stitch`, one array of the head's tuple at a time) once
    its last window has been through the model, in input order."""
    pending: deque[tuple[Prepared, list]] = deque()  # reads in flight, their windows' frames
    sent: deque[list] = deque()  # each batch sent to the model: its windows' reads' frames

    def send(batch: list[tuple[list, np.ndarray]]) -> list:  # (the read's frames, a window)
        sent.append([done for done, _ in batch])
        return [window for _, window in batch]

    def batches():
        batch: list[tuple[list, np.ndarray]] = []
        for item in prepared:
            pending.append((item, []))
            for window in item.windows:
                batch.append((pending[-1][1], window))
                if len(batch) == runner.batch_size:
                    yield send(batch)
                    batch = []
        if batch:
            yield send(batch)

    def finished():
        while pending and len(pending[0][1]) == len(pending[0][0].starts):
            item, done = pending.popleft()
            yield (
                item,
                tuple(
                    stitch(
                        np.stack(parts),
                        item.starts,
                        item.length,
                        windows.size,
                        windows.overlap,
                        windows.stride,
                    )
                    for parts in zip(*done, strict=True)
                ),
            )

    for frames in runner.map(batches()):
        for row, done in enumerate(sent.popleft()):
            done.append(tuple(f[row] for f in frames))
        yield from finished()
    yield from finished()


def decode(stitched: tuple[Prepared, tuple], model: Basecaller, beam_width: int) -> tuple:
    """A read's stitched frames -> ``(read, call)``."""
    item, frames = stitched
    sequence, qualities, moves = model.head.decode(frames, beam_width)
    rates = item.read.sample_rate, model.settings.sample_rate
    moves, stride = moves_on_read(moves, model.stride, *rates, item.samples)
    call = Call(
        sequence,
        qualities,
        moves,
        stride,
        item.trimmed,
        item.shift,
        item.scale,
        error_scale=model.head.read_error_scale,
    )
    return item.read, call


_END = object()


def threaded(function: Callable, items: Iterable, workers: int) -> Iterator:
    """``map(function, items)``, lazily and in order; with ``workers`` > 1, ``items`` are pulled
    by a thread of their own and ``function`` runs in a pool of ``workers`` threads, up to
    ``2 * workers`` items ahead. Errors reach the caller where their item would have. When the
    caller stops early (an error, Ctrl-C, SIGTERM) the stage's threads end before it returns,
    those of the stages upstream with them: none is left running native code (TensorFlow, a
    reader) while the interpreter exits, which could corrupt its heap."""
    if workers <= 1:
        yield from map(function, items)
        return
    ahead: queue.Queue = queue.Queue(2 * workers)
    stop = threading.Event()

    def put(future) -> bool:
        while not stop.is_set():
            try:
                ahead.put(future, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def feed(pool):
        try:
            for item in items:
                if not put(pool.submit(function, item)):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            failed: Future = Future()
            failed.set_exception(error)
            put(failed)
        finally:
            if hasattr(items, "close"):  # an upstream stage ends its threads too
                items.close()
        put(_END)

    with ThreadPoolExecutor(workers, thread_name_prefix="stage") as pool:
        feeder = threading.Thread(target=feed, args=(pool,), name="stage-feed", daemon=True)
        feeder.start()
        try:
            while (future := ahead.get()) is not _END:
                yield future.result()
        finally:
            stop.set()
            pool.shutdown(cancel_futures=True)  # what is running ends; what waits never starts
            feeder.join()
