"""The compute backend: importing Keras without TensorFlow's start-up chatter, CPU threads."""

from __future__ import annotations

import logging
import os
import sys
import weakref

from nanoseq.errors import InputError


def import_keras():
    """Import Keras (and its backend). TensorFlow's log lines (C++: start-up oneDNN and CUDA
    probes, run-time notices; Python: retracing notices) are dropped unless every library logs
    at debug level (``-vvv``); its errors still reach Python as exceptions."""
    if "keras" in sys.modules or logging.getLogger().isEnabledFor(logging.DEBUG):
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
    """Pin TensorFlow's CPU thread pools (no effect on other backends)."""
    keras = import_keras()
    if threads and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))


def compiled(function):
    """``function`` (of tensors, calling Keras layers) as a TensorFlow graph whose input shapes
    may vary, reading the weights as they are at each call; as it is on other backends."""
    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        return function
    import tensorflow as tf

    return tf.function(function, reduce_retracing=True)


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
    as :func:`compiled` does, or with XLA for fixed shapes (one compilation a shape); kept while
    the model lives: the cache holds the model weakly, and so does the compiled function."""
    calls = _PER_MODEL.setdefault(model, {})
    if call not in calls:
        owner = weakref.ref(model)

        def function(*args):
            return call(owner(), *args)

        keras = import_keras()
        if xla and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            _schedule_xla_for_memory()
            calls[call] = tf.function(function, jit_compile=True)
        else:
            calls[call] = compiled(function)
    return calls[call]
