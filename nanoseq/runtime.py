"""The compute backend: which one a basecall prefers, importing Keras without TensorFlow's
start-up chatter, a compile cache that persists between processes, CPU threads, compiled
functions."""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import json
import logging
import os
import sys
import weakref
from pathlib import Path

from nanoseq.errors import InputError

# What libraries import at start-up only to offer it: Keras (DataFrames to fit, image galleries,
# notebook editing of saved files: 0.8 s) and pyarrow under pod5 (pandas, 0.3-0.4 s, to tell
# whether a value is a DataFrame), which a command that never uses them need not pay; and
# TensorFlow's own (JAX, 0.45 s, for TensorFlow Lite to convert JAX functions) where Keras runs
# on TensorFlow
OPTIONAL_IMPORTS = ("pandas", "matplotlib", "IPython")
OPTIONAL_UNDER_TENSORFLOW = ("jax",)
_skip_optional = False


def skip_optional_imports() -> None:
    """Let :func:`import_keras` and :func:`import_module` import without
    :data:`OPTIONAL_IMPORTS` (Keras and pyarrow then go without them; nanoseq imports matplotlib
    itself where it draws). For the command line, whose process is nanoseq's own: a Python
    user's Keras keeps them."""
    global _skip_optional
    _skip_optional = True


def import_module(name: str):
    """Import module ``name``, without :data:`OPTIONAL_IMPORTS` where they are skipped."""
    if name in sys.modules:
        return sys.modules[name]
    with _optional_absent():
        return importlib.import_module(name)


@contextlib.contextmanager
def _optional_absent():
    """Within, once :func:`skip_optional_imports` was called: importing a module of
    :data:`OPTIONAL_IMPORTS` (not yet imported) fails, as if it were not installed."""
    optional = OPTIONAL_IMPORTS
    if asked_backend() == "tensorflow":
        optional += OPTIONAL_UNDER_TENSORFLOW
    names = {name for name in optional if name not in sys.modules}
    absent = _Absent(names if _skip_optional else set())
    sys.meta_path.insert(0, absent)
    try:
        yield
    finally:
        sys.meta_path.remove(absent)


class _Absent(importlib.abc.MetaPathFinder):
    """An import finder for which ``names`` (and the modules in them) do not exist."""

    def __init__(self, names: set[str]):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def import_keras():
    """Import Keras (and its backend). TensorFlow's log lines (C++: start-up oneDNN and CUDA
    probes, run-time notices; Python: retracing notices) are dropped unless every library logs
    at debug level (``-vvv``); its errors still reach Python as exceptions."""
    if "keras" in sys.modules:
        import keras

        return keras
    with _optional_absent():
        return _import_keras_quietly()


def _import_keras_quietly():
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        import keras

        return keras
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ notices, incl. run-time ones
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras

        keras.backend.backend()
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA probe logs once, here
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return keras


def persist_compilations() -> Path | None:
    """Let XLA (TensorFlow's and JAX's) keep what it compiles in :func:`compile_cache`, so that
    a process started after this one skips compiling the same programs (the command line does
    this first). Takes effect only before the backend is imported."""
    cache = compile_cache()
    if cache:
        flags = os.environ.get("TF_XLA_FLAGS", "")
        if "persistent_cache_directory" not in flags:
            os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={cache}/tf"
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache / "jax"))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    return cache


def compile_cache() -> Path | None:
    """Where compiled programs (XLA's, of TensorFlow and JAX) persist between processes, so
    that a job started again on the same machine skips compiling: ``$NANOSEQ_CACHE``, else
    ``$XDG_CACHE_HOME/nanoseq``, else ``~/.cache/nanoseq``; None where it is ``off`` or cannot
    be written. An entry is keyed by the program (the model's layers and shapes, not its
    weights), the backend's version and the device, so any change of those compiles afresh."""
    named = os.environ.get("NANOSEQ_CACHE")
    if named == "off":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    path = Path(named) if named else Path(base) / "nanoseq"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None


@contextlib.contextmanager
def tensorflow_unasked():
    """Within: Keras, under another backend, does not import TensorFlow (2-4 s) to ask whether
    an object it serialises is one of TensorFlow's types, which none can be while TensorFlow
    has not been imported. (Keras asks whenever TensorFlow is installed, e.g. as Bidirectional
    copies its cell while a model loads.)"""
    from keras.src.utils import module_utils

    lazy = module_utils.tensorflow
    if (
        import_keras().backend.backend() == "tensorflow"
        or "tensorflow" in sys.modules
        or getattr(lazy, "_available", True) is not None
    ):
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None


@contextlib.contextmanager
def initializers_skipped():
    """Within: a variable that a Keras initializer would fill starts as zeros: for a model being
    loaded, whose file's weights replace them (under JAX each initializer is a program traced
    and compiled for its shape: 0.6-0.9 s of a basecaller's start-up on 2 cores)."""
    import numpy as np
    from keras.src.backend import Variable  # the backend's
    from keras.src.initializers import Initializer

    fill = Variable._initialize_with_initializer

    def zeros_instead(variable, initializer):
        if isinstance(initializer, Initializer):
            fill(variable, lambda shape, dtype=None: np.zeros(shape, dtype))
        else:
            fill(variable, initializer)

    Variable._initialize_with_initializer = zeros_instead
    try:
        yield
    finally:
        Variable._initialize_with_initializer = fill


def use_device(device: str) -> None:
    """Let the backend see only ``device``: ``cpu``, ``cuda:N`` (GPU N) or ``auto`` (what there
    is). Works for TensorFlow and JAX alike, as long as neither has started."""
    if device == "auto":
        return
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return
    index = device.removeprefix("cuda:")
    if not device.startswith("cuda:") or not index.isdigit():
        raise InputError(f"unknown device {device!r}: cpu, cuda:N or auto")
    os.environ["CUDA_VISIBLE_DEVICES"] = index


def set_threads(threads: int | None) -> None:
    """Pin TensorFlow's CPU thread pools; under JAX (whose CPU threads follow the CPUs the
    process may use when it first computes), keep the process to ``threads`` of its CPUs."""
    keras = import_keras()
    if threads and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    elif threads and keras.backend.backend() == "jax" and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])


def cpu_threads() -> int:
    """The CPU threads the model may use: TensorFlow's thread pool where :func:`set_threads`
    sized it, else the CPUs the process may run on (which it narrows under JAX)."""
    if import_keras().backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.threading.get_intra_op_parallelism_threads():
            return tf.config.threading.get_intra_op_parallelism_threads()
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def side_by_side(items: int, smallest: int) -> int:
    """How many calls to run at once over ``items`` rows: one on an accelerator; on CPUs one a
    CPU thread the model may use, none of under ``smallest`` rows. A recurrent step is a small
    product that keeps about one core busy, so calls side by side (threads, each its own share
    of the rows) fill the others."""
    return 1 if on_accelerator() else max(1, min(cpu_threads(), items // smallest))


def on_accelerator() -> bool:
    """Whether Keras's backend computes on a GPU (or another accelerator) rather than the CPU."""
    backend = import_keras().backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    return False


JAX_CUDA_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin")


def prefer_jax() -> str:
    """Let Keras run on JAX where no backend was asked for (``KERAS_BACKEND`` unset, Keras's
    config file naming none or its default, TensorFlow) and JAX can use the machine (installed;
    no NVIDIA GPU visible, or JAX's CUDA plugin there). For basecalling: its start-up is mostly
    the backend's import (Keras on TensorFlow 2.7-3.2 s on 2 CPU cores, on JAX 1.5-1.6 s, in
    turn in one session), and the basecaller runs about as fast on either once started (the
    held-out reads at beam 5: 494-497 k samples/s under JAX, 467-474 k under TensorFlow, one
    after the other). Takes effect only before Keras is
    imported; returns the backend Keras will use (or uses)."""
    backend = asked_backend()
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND") or backend != "tensorflow":
        return backend
    if not _jax_usable():
        return backend
    os.environ["KERAS_BACKEND"] = "jax"
    return "jax"


def asked_backend() -> str:
    """The backend Keras runs on (or will, once imported): ``KERAS_BACKEND``, else the one its
    config file names (``$KERAS_HOME/keras.json``, else ``~/.keras/keras.json``), else
    TensorFlow."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    try:
        return json.loads((Path(home) / "keras.json").read_text())["backend"]
    except (OSError, ValueError, KeyError, TypeError):
        return "tensorflow"


def _jax_usable() -> bool:
    """Whether JAX is installed and can use the machine's accelerator, if it has one."""
    if importlib.util.find_spec("jax") is None:
        return False
    return not _nvidia_gpu_visible() or any(map(importlib.util.find_spec, JAX_CUDA_PLUGINS))


def _nvidia_gpu_visible() -> bool:
    """Whether the machine has an NVIDIA GPU that ``CUDA_VISIBLE_DEVICES`` leaves visible."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def compiled(function):
    """``function`` (of tensors, calling Keras layers) as a TensorFlow graph whose input shapes
    may vary, reading the weights as they are at each call; as it is on other backends."""
    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        return function
    import tensorflow as tf

    return tf.function(function, reduce_retracing=True, autograph=False)


_PER_MODEL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

# XLA on CPUs schedules for concurrency by default, which sets up every loop's buffers at the
# start: the basecaller (320 windows a batch) peaks about 110 MB lower scheduled for memory, at
# the same speed. Read by XLA at its first compilation; a user's own setting wins.
MEMORY_SCHEDULE = "--xla_cpu_enable_concurrency_optimized_scheduler=false"


def _schedule_xla_for_memory() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if "concurrency_optimized_scheduler" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {MEMORY_SCHEDULE}".strip()


def compiled_for(model, call, xla: bool = False):
    """``call(model, *args)`` compiled once per model and ``call`` (a module-level function),
    as :func:`compiled` does, or with XLA for fixed shapes (one compilation a shape:
    TensorFlow's ``jit_compile``, ``jax.jit`` under JAX, the backends' compiler); kept while
    the model lives: the cache holds the model weakly, and so does the compiled function."""
    calls, key = _PER_MODEL.setdefault(model, {}), (call, xla)
    if key not in calls:
        owner = weakref.ref(model)

        def function(*args):
            return call(owner(), *args)

        keras = import_keras()
        if xla and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            _schedule_xla_for_memory()
            calls[key] = tf.function(function, jit_compile=True, autograph=False)
        elif xla and keras.backend.backend() == "jax":
            calls[key] = _jax_jit(owner, call)
        else:
            calls[key] = compiled(function)
    return calls[key]


def _jax_jit(owner, call):
    """``call(model, *args)`` under ``jax.jit``, the model's weights passed in (so that a jitted
    program reads them as they are at each call and the compile cache does not hold them);
    arguments that are Python scalars are static (one compilation a value)."""
    import jax

    keras = import_keras()

    def pure(values, arrays, statics):
        model = owner()
        args = [a if s is None else s for a, s in zip(arrays, statics, strict=True)]
        pairs = list(zip(model.variables, values, strict=True))
        with keras.StatelessScope(state_mapping=pairs):
            return call(model, *args)

    jitted = jax.jit(pure, static_argnums=2)
    scalars = (bool, int, float, str)

    def function(*args):
        statics = tuple(a if isinstance(a, scalars) else None for a in args)
        arrays = tuple(None if isinstance(a, scalars) else a for a in args)
        return jitted([v.value for v in owner().variables], arrays, statics)

    return function
