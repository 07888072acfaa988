"""Recurrent language model p(x_t | x_<t): embedding, 1-4 RNN/GRU/LSTM layers, float32 softmax head.

The model is stateless: ``model(tokens, states, return_states=True)`` takes and returns the
recurrent states explicitly, which is what generation, beam search and evaluation over a long text
need. Truncated BPTT training wraps it in :class:`StreamingTrainer`, which keeps the last states
of each batch row in variables so that row k of batch i+1 continues row k of batch i.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from nanoseq.dropout import Dropout
from nanoseq.lstm import LSTM
from nanoseq.probability import log_softmax

CELLS = {"rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": LSTM}


@keras.saving.register_keras_serializable(package="nanoseq")
class LanguageModel(keras.Model):
    """Token ids ``(batch, time)`` in, next-token logits ``(batch, time, vocab)`` out."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 256,
        units: int = 256,
        layers: int = 2,
        cell: str = "lstm",
        dropout: float = 0.0,
        layer_norm: bool = False,
        tie_weights: bool = False,
        vocabulary: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if not 1 <= layers <= 4:
            raise ValueError(f"layers must be 1 to 4, got {layers}")
        if tie_weights and units != embedding_dim:
            raise ValueError("tied weights need units == embedding_dim")
        self.vocab_size, self.embedding_dim, self.units = vocab_size, embedding_dim, units
        self.layers_count, self.cell, self.dropout_rate = layers, cell, dropout
        self.layer_norm, self.tie_weights, self.vocabulary = layer_norm, tie_weights, vocabulary
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.rnns = [
            CELLS[cell](units, return_sequences=True, return_state=True, name=f"{cell}{i}")
            for i in range(layers)
        ]
        self.norms = [
            keras.layers.LayerNormalization(name=f"norm{i}")
            for i in range(layers if layer_norm else 0)
        ]
        self.drop = Dropout(dropout)
        self.head = None if tie_weights else keras.layers.Dense(vocab_size, name="logits")
        self.bias = None

    @property
    def states_per_layer(self) -> int:
        return 2 if self.cell == "lstm" else 1

    def zero_states(self, batch: int) -> list:
        """Initial recurrent states for ``batch`` rows (``layers * states_per_layer`` arrays)."""
        return [
            ops.zeros((batch, self.units)) for _ in range(self.layers_count * self.states_per_layer)
        ]

    def build(self, input_shape):
        """Build every layer now, so a loaded model has all its weights before the first call."""
        batch, time = input_shape[0], input_shape[1]
        self.embedding.build(input_shape)
        for i, rnn in enumerate(self.rnns):
            rnn.build((batch, time, self.embedding_dim if i == 0 else self.units))
        for norm in self.norms:
            norm.build((batch, time, self.units))
        if self.head is not None:
            self.head.build((batch, time, self.units))
        if self.tie_weights:
            self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")
        self.built = True

    def call(self, tokens, states=None, training=False, return_states=False):
        x = self.drop(self.embedding(tokens), training=training)
        n = self.states_per_layer
        states = states if states is not None else self.zero_states(ops.shape(tokens)[0])
        new_states = []
        for i, rnn in enumerate(self.rnns):
            out = rnn(x, initial_state=list(states[i * n : (i + 1) * n]), training=training)
            x, layer_states = out[0], out[1:]
            new_states.extend(layer_states)
            if self.layer_norm:
                x = self.norms[i](x)
            x = self.drop(x, training=training)
        if self.tie_weights:
            logits = ops.matmul(x, ops.transpose(self.embedding.embeddings)) + self.bias
        else:
            logits = self.head(x)
        logits = ops.cast(logits, "float32")
        return (logits, new_states) if return_states else logits

    def step(self, tokens, states):
        """One token per hypothesis: the :mod:`nanoseq.text.generate` step function."""
        logits, states = self(np.asarray(tokens)[:, None], states, return_states=True)
        log_probs = log_softmax(ops.convert_to_numpy(logits)[:, -1])
        return log_probs, [ops.convert_to_numpy(s) for s in states]

    def prime(self, ids):
        """Run a prompt (1-D ids): the next token's log probabilities and the states."""
        logits, states = self(np.asarray(ids)[None, :], return_states=True)
        log_probs = log_softmax(ops.convert_to_numpy(logits)[0, -1])
        return log_probs, [ops.convert_to_numpy(s) for s in states]

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "layers": self.layers_count,
            "cell": self.cell,
            "dropout": self.dropout_rate,
            "layer_norm": self.layer_norm,
            "tie_weights": self.tie_weights,
            "vocabulary": self.vocabulary,
        }


@keras.saving.register_keras_serializable(package="nanoseq")
class StreamingTrainer(keras.Model):
    """Truncated BPTT: carries each batch row's last states into the next batch (no gradient
    through the carry). Call :meth:`reset` at epoch start and before evaluation.

    ``batch_size`` is the rows one replica sees: under a distribution strategy each replica
    keeps its own carry (an on-read variable) for its slice of the global batch."""

    def __init__(self, model: LanguageModel, batch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.model, self.batch_size = model, batch_size
        self.carry = [
            keras.Variable(
                ops.zeros((batch_size, model.units)),
                trainable=False,
                synchronization="on_read",
                aggregation="only_first_replica",
                name=f"carry{i}",
            )
            for i in range(model.layers_count * model.states_per_layer)
        ]

    def call(self, tokens, training=False):
        logits, states = self.model(
            tokens, [v.value for v in self.carry], training=training, return_states=True
        )
        for variable, state in zip(self.carry, states, strict=True):
            variable.assign(ops.stop_gradient(state))
        return logits

    def reset(self) -> None:
        for variable in self.carry:
            variable.assign(ops.zeros_like(variable))

    def get_config(self):
        return {
            "name": self.name,
            "model": keras.saving.serialize_keras_object(self.model),
            "batch_size": self.batch_size,
        }

    @classmethod
    def from_config(cls, config):
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)
