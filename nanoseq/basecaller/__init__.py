"""Nanopore basecalling: the CTC model, decoding, the streaming pipeline and training."""

from nanoseq.runtime import import_keras

import_keras()  # before any module here imports Keras: keeps TensorFlow's start-up off stderr
