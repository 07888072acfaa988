"""The compute backend: importing Keras without TensorFlow's start-up chatter, CPU threads."""

from __future__ import annotations

import logging
import os
import sys


def import_keras():
    """Import Keras (and its backend). TensorFlow's C++ start-up lines (oneDNN, CUDA probes)
    go to stderr before any log setting applies, so they are dropped unless logging is at
    debug level."""
    if "keras" in sys.modules or logging.getLogger("nanoseq").isEnabledFor(logging.DEBUG):
        import keras

        return keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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


def set_threads(threads: int | None) -> None:
    """Pin TensorFlow's CPU thread pools (no effect on other backends)."""
    keras = import_keras()
    if threads and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
