"""Nanopore basecalling: a signal backbone under a head (CTC or CRF) that owns its loss and
decoding, the streaming pipeline from reads to calls, and training."""

from nanoseq.runtime import import_keras

import_keras()  # before any module here imports Keras: keeps TensorFlow's start-up off stderr
