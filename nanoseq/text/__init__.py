"""Text models: vocabularies, language models, sequence to sequence and shared generation."""

from nanoseq.runtime import import_keras

import_keras()  # before any module here imports Keras: keeps TensorFlow's start-up off stderr
