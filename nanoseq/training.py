"""What every model family's training shares: seeding, distribution strategy, mixed precision,
Adam with clipping and a warm-up + cosine schedule, CSV log, checkpoints, resume and a time limit.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from nanoseq import progress
from nanoseq.errors import InputError, one_line

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.keras"
BEST = "model.keras"
LOG = "training.csv"


def seed_everything(seed: int) -> None:
    """Python, NumPy and backend random generators."""
    keras.utils.set_random_seed(seed)


def distribution(name: str):
    """``default`` (one device) or ``mirrored`` (all GPUs of this host, else its CPU devices;
    TensorFlow backend).
    ``fit`` runs ``multiworker`` through :mod:`nanoseq.distributed` instead."""
    if name == "default":
        return None
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"--strategy {name} needs the TensorFlow backend")
    import tensorflow as tf

    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    raise ValueError(f"unknown strategy {name!r} (default, mirrored)")


def _xla_refused(recipe: Recipe) -> str:
    """Why the backend cannot compile the recipe's step with XLA ("": it can). Asks TensorFlow
    nothing: multi-worker training configures it first."""
    return recipe.xla_refused if keras.backend.backend() == "tensorflow" else ""


def _xla(run: TrainingRun, recipe: Recipe) -> bool | str:
    """``jit_compile`` for the run's model: never where the backend cannot compile its step
    (:func:`fit` refuses a run that asks); else the run's ``xla`` where given,
    True where the recipe asks for XLA on CPUs and TensorFlow sees no GPU, and Keras's choice
    ("auto": XLA on GPUs) elsewhere."""
    if _xla_refused(recipe):
        return False
    if run.xla is not None:
        return run.xla
    if not recipe.xla_on_cpu or keras.backend.backend() != "tensorflow":
        return "auto"
    import tensorflow as tf

    return "auto" if tf.config.list_logical_devices("GPU") else True


def replica_rows(batch_size: int) -> int:
    """The rows of a ``batch_size`` global batch that each replica of the current
    distribution strategy takes."""
    replicas = 1
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if batch_size % replicas:
        raise InputError(f"batch size {batch_size} does not split over {replicas} replicas")
    return batch_size // replicas


class Clock(keras.callbacks.Callback):
    """Training wall time from its ``start`` (building and compiling the model included),
    counted on across resumed runs (``spent``: the seconds of the earlier ones) and logged as
    ``seconds`` each epoch. With ``minutes``, a time budget for the whole run: checked after
    every batch, training stops where the epoch's end (validation: as long as it took last
    time) would pass it."""

    def __init__(self, minutes: float | None = None, spent: float = 0.0, start=None):
        super().__init__()
        self.budget = minutes * 60 if minutes else None
        self.spent, self.start = spent, time.monotonic() if start is None else start
        self.tail = 0.0  # the seconds from an epoch's last batch to its end
        self.last_batch = self.start

    def seconds(self) -> float:
        return self.spent + time.monotonic() - self.start

    def share(self) -> float:
        """The share of the time budget used (0 without one)."""
        return min(1.0, self.seconds() / self.budget) if self.budget else 0.0

    def on_train_batch_end(self, batch, logs=None):
        self.last_batch = time.monotonic()
        if self.budget and self.seconds() + self.tail > self.budget:
            log.info("time limit of %.1f minutes reached; stopping", self.budget / 60)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.tail = time.monotonic() - self.last_batch
        if logs is not None:
            logs["seconds"] = round(self.seconds(), 1)


class WarmupCosine(keras.callbacks.Callback):
    """Sets the learning rate before every batch: a linear warm-up to ``peak`` (over the first
    10 % of the run, or ``warmup`` steps if fewer), then cosine decay to 1 % of it. The run's
    progress is the share of ``total_steps`` taken or, where it is further on, the share of
    ``clock``'s time budget used, so a run that its time limit stops ends at low rates too."""

    def __init__(self, peak: float, total_steps: int, warmup: int = 500, clock: Clock = None):
        super().__init__()
        self.peak, self.total, self.warmup, self.clock = peak, max(1, total_steps), warmup, clock
        self.step = 0

    def rate(self, step: int, time_share: float = 0.0) -> float:
        progress = min(1.0, max(step / self.total, time_share))
        warm = min(1.0, max((step + 1) / self.warmup, progress / 0.1))
        return self.peak * warm * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))

    def on_train_begin(self, logs=None):
        self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_begin(self, batch, logs=None):
        share = self.clock.share() if self.clock else 0.0
        self.model.optimizer.learning_rate = self.rate(self.step, share)
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )


def earlier_run(output: Path) -> list[dict]:
    """The epochs ``training.csv`` logs of earlier runs (none if there is none)."""
    path = output / LOG
    if not path.is_file():
        return []
    with open(path) as handle:
        return list(csv.DictReader(handle))


def save(model: keras.Model, path: Path) -> None:
    """``model.save(path)`` through a temporary file: a run killed while saving leaves the
    previous file whole."""
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    model.save(temporary)
    temporary.replace(path)


def adam(clipnorm: float):
    """The default optimizer factory: Adam with global-norm clipping (its learning rate set
    each batch by :class:`WarmupCosine`)."""
    return lambda: keras.optimizers.Adam(global_clipnorm=clipnorm)


class Progress(keras.callbacks.Callback):
    """Each epoch's steps and running loss on stderr (:class:`nanoseq.progress.Progress`: a bar
    on a terminal, a line every 30 s elsewhere), and its figures as one log line."""

    def on_epoch_begin(self, epoch, logs=None):
        steps = (self.params or {}).get("steps")
        self.bar = progress.Progress(f"epoch {epoch + 1}", steps, "steps")

    def on_train_batch_end(self, batch, logs=None):
        loss = {"loss": f"{float(logs['loss']):.4f}"} if logs and "loss" in logs else {}
        self.bar.update(**loss)

    def on_epoch_end(self, epoch, logs=None):
        self.bar.close()
        figures = ", ".join(f"{k} {float(v):.4g}" for k, v in (logs or {}).items())
        log.info("epoch %d: %s", epoch + 1, figures)


class Checkpoint(keras.callbacks.Callback):
    """Saves the model (weights and optimizer state) as ``path`` after every epoch."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        save(self.model, self.path)


class SaveBest(keras.callbacks.Callback):
    """Saves ``export(model)`` as ``path`` whenever ``monitor`` improves on ``best`` (a resumed
    run's: the best its log holds)."""

    def __init__(self, path, monitor: str, mode: str, export: Callable, best=None):
        super().__init__()
        self.path, self.monitor, self.export, self.best = path, monitor, export, best
        self.better = (lambda a, b: a < b) if mode == "min" else (lambda a, b: a > b)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and (self.best is None or self.better(value, self.best)):
            self.best = value
            save(self.export(self.model), self.path)


def free_shapes(dataset: keras.utils.PyDataset):
    """On TensorFlow, a tf.data view of ``dataset`` with every dimension free: Keras infers a
    PyDataset's shapes from its first two batches, then rejects batches of other lengths.
    Other backends take the PyDataset as it is."""
    if keras.backend.backend() != "tensorflow":
        return dataset
    import tensorflow as tf

    def batches():
        for index in range(len(dataset)):
            yield dataset[index]
        dataset.on_epoch_end()

    spec = keras.tree.map_structure(
        lambda a: tf.TensorSpec([None] * np.ndim(a), tf.as_dtype(np.asarray(a).dtype)), dataset[0]
    )
    view = tf.data.Dataset.from_generator(batches, output_signature=spec)
    return view.apply(tf.data.experimental.assert_cardinality(len(dataset))).prefetch(2)


@dataclass
class TrainingRun:
    """How a training run goes, the same for every family (the options of every ``train``
    command): the ``output`` folder, ``epochs``, ``resume`` from its checkpoint, a time budget
    ``max_minutes`` for the whole run (resumed parts included), the distribution ``strategy``
    (``default``, ``mirrored`` or ``multiworker``), ``mixed_precision`` (float16 compute, float32
    outputs), ``xla`` (True compiles the training step with XLA on a CPU too, False never; None
    is Keras's choice, or the recipe's) and the random ``seed``."""

    output: Path
    epochs: int = 10
    resume: bool = False
    max_minutes: float | None = None
    strategy: str = "default"
    mixed_precision: bool = False
    xla: bool | None = None
    seed: int = 1

    def __post_init__(self):
        self.output = Path(self.output)
        if self.output.exists() and not self.output.is_dir():
            raise InputError("is a file; -o names the run's folder", self.output)
        try:
            self.output.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            problem = f"cannot make the run's folder ({error.strerror})"
            raise InputError(problem, self.output) from None

    def folder(self) -> Path:
        """Where this process writes the run's files: ``output``, but ``output/worker-N`` for
        the workers of a multiworker run other than the chief."""
        if self.strategy != "multiworker":
            return self.output
        from nanoseq import distributed

        return distributed.worker_folder(distributed.cluster_resolver(), self.output)


@dataclass
class Recipe:
    """What one family trains: ``build()`` makes the model (inside the strategy's scope), which
    is compiled with ``optimizer()`` and ``loss`` (None: the model's own). With
    ``peak_learning_rate``, :class:`WarmupCosine` sets the rate (else the optimizer keeps its own).
    ``export(model)`` is saved as ``model.keras`` whenever ``monitor`` (a logged figure, and
    ``min`` or ``max``) improves; ``callbacks`` see every epoch. ``xla_on_cpu``: a run
    without ``xla`` compiles with XLA on a CPU too (Keras's choice is not to), for recipes whose
    batches all have one shape and whose steps measured faster so. ``xla_refused``: why
    TensorFlow cannot compile the recipe's training step with XLA (empty: it can).
    ``resume_refused(model)``: why a checkpoint's model cannot go on with this run's data
    (empty: it can; a text model must have the vocabularies built for this run)."""

    build: Callable[[], keras.Model]
    optimizer: Callable[[], keras.optimizers.Optimizer]
    loss: object = None
    peak_learning_rate: float | None = None
    monitor: tuple[str, str] = ("val_loss", "min")
    export: Callable[[keras.Model], keras.Model] = lambda model: model
    callbacks: list = field(default_factory=list)
    xla_on_cpu: bool = False
    xla_refused: str = ""
    resume_refused: Callable[[keras.Model], str] = lambda model: ""


def fit(
    run: TrainingRun,
    recipe: Recipe,
    train: tuple | keras.utils.PyDataset,
    validation: tuple | keras.utils.PyDataset | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
):
    """Train ``recipe``'s model as ``run`` says on ``train``: arrays ``(x, y)`` cut into
    ``batch_size`` batches, or a ``PyDataset`` of ready batches; return the model and its
    history. Writes ``checkpoint.keras`` every epoch, ``training.csv`` and ``model.keras``.

    Resuming loads ``checkpoint.keras`` (weights and optimizer state) and continues at the
    epoch after the last row of ``training.csv``. ``multiworker`` trains in the custom loop of
    :mod:`nanoseq.distributed`, which logs the training loss and the callbacks' figures but not
    Keras's ``val_loss``.
    """
    started = time.monotonic()
    refused = _xla_refused(recipe)
    if run.xla and refused:  # asked for what cannot be: fail before the work
        raise InputError(f"XLA: {refused}")
    policy = keras.mixed_precision.global_policy()
    if run.mixed_precision:  # for the models built here; the caller's policy is put back
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        if run.strategy == "multiworker":
            return _fit_multiworker(run, recipe, train, batch_size, shuffle)
        return _fit(run, recipe, train, validation, batch_size, shuffle, started)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _fit(run: TrainingRun, recipe: Recipe, train, validation, batch_size, shuffle, started):
    """``fit`` on one device or one host's devices."""
    if isinstance(train, keras.utils.PyDataset):  # batches made by the dataset
        (x, y), batch_size, steps, shuffle = (free_shapes(train), None), None, len(train), False
        if isinstance(validation, keras.utils.PyDataset):
            validation = free_shapes(validation)
    else:
        (x, y), steps = train, len(train[0]) // batch_size
    checkpoint, logged = run.output / CHECKPOINT, []
    if run.resume and not checkpoint.is_file():
        log.warning("%s: no checkpoint to resume from; training from the start", run.output)
    scope = distribution(run.strategy)
    with scope.scope() if scope else contextlib.nullcontext():
        if run.resume and checkpoint.is_file():
            if not zipfile.is_zipfile(checkpoint):
                raise InputError("cannot resume: not a .keras file", checkpoint)
            try:
                net = keras.saving.load_model(checkpoint)
            except Exception as error:  # Keras raises many kinds for a bad file
                raise InputError(f"cannot resume ({one_line(error)})", checkpoint) from None
            refused = recipe.resume_refused(net)
            if refused:
                raise InputError(f"cannot resume: {refused}", checkpoint)
            logged = earlier_run(run.output)
            log.info("resuming from %s at epoch %d", checkpoint, len(logged) + 1)
        else:
            net = recipe.build()
            net.compile(
                optimizer=recipe.optimizer(),
                loss=recipe.loss,
                # XLA cannot reach variables mirrored on other devices: Keras decides there
                jit_compile=_xla(run, recipe) if scope is None else "auto",
            )
    spent = float(logged[-1].get("seconds") or 0) if logged else 0.0
    clock = Clock(run.max_minutes, spent, started)  # after the validation callbacks: their time
    watch = [*recipe.callbacks, clock]
    if recipe.peak_learning_rate:
        watch.append(WarmupCosine(recipe.peak_learning_rate, run.epochs * steps, clock=clock))
    watch += [*_writers(run.output, recipe, logged), Progress()]
    history = net.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=run.epochs,
        initial_epoch=len(logged),
        validation_data=validation,
        shuffle=shuffle,
        callbacks=watch,
        verbose=0,  # Progress reports on stderr; Keras's own bar writes to stdout
    )
    return net, history


def _writers(folder: Path, recipe: Recipe, logged: list[dict] = ()) -> list:
    """The callbacks that write a run's files into ``folder``, after the ``logged`` epochs of
    earlier runs."""
    monitor, mode = recipe.monitor
    values = [_number(row.get(monitor)) for row in logged]
    values = [value for value in values if value is not None]
    best = (min if mode == "min" else max)(values) if values else None
    return [
        Checkpoint(folder / CHECKPOINT),
        SaveBest(folder / BEST, monitor, mode, recipe.export, best),
        keras.callbacks.CSVLogger(folder / LOG, append=bool(logged)),
    ]


def _number(text: str | None) -> float | None:
    """A logged figure (None where Keras logged none: "NA", or nothing)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _fit_multiworker(run: TrainingRun, recipe: Recipe, train, batch_size, shuffle):
    """``fit`` across hosts: no resume or time limit (every worker takes the same steps)."""
    if run.resume or run.max_minutes:
        raise InputError("--resume and --max-minutes do not work with --strategy multiworker")
    from nanoseq import distributed

    cluster = distributed.multiworker()  # before anything starts TensorFlow's runtime
    if isinstance(train, keras.utils.PyDataset):
        data, steps = free_shapes(train), len(train)
    else:
        data = distributed.array_batches(*train, batch_size, shuffle)
        steps = len(train[0]) // batch_size
    watch = [*recipe.callbacks, Progress()]
    if recipe.peak_learning_rate:
        watch.insert(-1, WarmupCosine(recipe.peak_learning_rate, run.epochs * steps))
    return distributed.custom_fit(
        cluster,
        recipe,
        data,
        steps,
        run.folder(),
        run.epochs,
        watch,
        lambda folder: _writers(folder, recipe),
    )
