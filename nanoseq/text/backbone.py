"""The text families' backbone: what reads a token sequence. A token embedding, then 1-4 stacked
RNN/GRU/LSTM layers (optionally bidirectional, optionally layer-normalised), dropout after the
embedding and after each layer. :class:`~nanoseq.text.lm.LanguageModel` puts a softmax on it;
:class:`~nanoseq.text.seq2seq.Seq2Seq` encodes the source with one and runs its decoder on
another (unidirectional).

The backbone is stateless: recurrent states go in and come out explicitly, as a flat list of the
layers' states, layer by layer (``layers * states_per_layer`` arrays, ``(batch, output_dim)``
each; a bidirectional layer's forward and backward states are concatenated).
"""

from __future__ import annotations

import keras
from keras import ops

from nanoseq.dropout import Dropout
from nanoseq.recurrent import GRU, LSTM, Bidirectional

CELLS = {"rnn": keras.layers.SimpleRNN, "gru": GRU, "lstm": LSTM}


@keras.saving.register_keras_serializable(package="nanoseq")
class TextBackbone(keras.Model):
    """Token ids ``(batch, time)`` -> outputs ``(batch, time, output_dim)`` and final states."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 256,
        units: int = 256,
        layers: int = 2,
        cell: str = "lstm",
        bidirectional: bool = False,
        layer_norm: bool = False,
        dropout: float = 0.0,
        unit_embeddings: bool = False,
        dtype=None,
        **kwargs,
    ):
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if not 1 <= layers <= 4:
            raise ValueError(f"layers must be 1 to 4, got {layers}")
        super().__init__(dtype=dtype, **kwargs)
        self.vocab_size, self.embedding_dim, self.units = vocab_size, embedding_dim, units
        self.layers_count, self.cell, self.bidirectional = layers, cell, bidirectional
        self.layer_norm, self.dropout_rate = layer_norm, dropout
        # unit_embeddings: drawn from N(0, 1), as PyTorch's, for inputs at the scale the first
        # layer's glorot kernel expects (language models: a char LSTM 2x256 after 300 steps,
        # mean training loss 2.28 against 2.94 with Keras's uniform +-0.05). Seq2seq keeps
        # Keras's: with N(0, 1) it learnt faster at first but ended 30 minutes lower.
        self.unit_embeddings = unit_embeddings
        initializer = keras.initializers.RandomNormal(stddev=1.0) if unit_embeddings else "uniform"
        self.embedding = keras.layers.Embedding(
            vocab_size,
            embedding_dim,
            embeddings_initializer=initializer,
            dtype=dtype,
            name="embedding",
        )
        # All cells stay alive until wrapped: Bidirectional copies its cell through Keras
        # serialization, which while loading a model treats a reused id() (a freed cell's
        # address given to the next) as one shared object and made both directions one layer.
        cells = [
            CELLS[cell](
                units, return_sequences=True, return_state=True, dtype=dtype, name=f"{cell}{i}"
            )
            for i in range(layers)
        ]
        self.rnns = [
            Bidirectional(c, dtype=dtype, name=c.name) if bidirectional else c for c in cells
        ]
        self.norms = [
            keras.layers.LayerNormalization(dtype=dtype, name=f"norm{i}")
            for i in range(layers if layer_norm else 0)
        ]
        self.drop = Dropout(dropout, dtype=dtype)
        self.supports_masking = True  # a mask passed in stays on the outputs

    @property
    def states_per_layer(self) -> int:
        return 2 if self.cell == "lstm" else 1

    @property
    def output_dim(self) -> int:
        """The width of the outputs and of every state."""
        return self.units * (2 if self.bidirectional else 1)

    def zero_states(self, batch: int) -> list:
        """Initial states for ``batch`` rows."""
        count = self.layers_count * self.states_per_layer
        return [ops.zeros((batch, self.output_dim)) for _ in range(count)]

    def build(self, input_shape):
        """Build every layer now, so a loaded model has all its weights before the first call."""
        batch, time = input_shape[0], input_shape[1]
        self.embedding.build(input_shape)
        for i, rnn in enumerate(self.rnns):
            rnn.build((batch, time, self.embedding_dim if i == 0 else self.output_dim))
        for norm in self.norms:
            norm.build((batch, time, self.output_dim))

    def call(self, tokens, states=None, mask=None, training=False):
        """Outputs and the final states; ``states`` (default zeros) are where each layer starts,
        ``mask`` (batch, time) marks the real tokens."""
        x = self.drop(self.embedding(tokens), training=training)
        n, finals = self.states_per_layer, []
        for i, rnn in enumerate(self.rnns):
            start = None if states is None else list(states[i * n : (i + 1) * n])
            if start is not None and self.bidirectional:  # Keras's order: forward, backward
                start = [s[:, : self.units] for s in start] + [s[:, self.units :] for s in start]
            out = rnn(x, initial_state=start, mask=mask, training=training)
            x, layer_states = out[0], out[1:]
            if self.bidirectional:  # [forward states..., backward states...] -> per state kind
                layer_states = [
                    ops.concatenate([layer_states[k], layer_states[n + k]], -1) for k in range(n)
                ]
            finals.extend(layer_states)
            if self.layer_norm:
                x = self.norms[i](x)
            x = self.drop(x, training=training)
        return x, finals

    def step(self, tokens, states):
        """One token ``(batch,)`` per row through the recurrent cells themselves (the layers'
        per-step arithmetic without their loop; no dropout): outputs ``(batch, units)`` and the
        new states."""
        if self.bidirectional:
            raise ValueError("a bidirectional backbone cannot read one token at a time")
        x = self.embedding(tokens)
        n, finals = self.states_per_layer, []
        for i, rnn in enumerate(self.rnns):
            x, new_states = rnn.cell(x, list(states[i * n : (i + 1) * n]))
            finals.extend(new_states)
            if self.layer_norm:
                x = self.norms[i](x)
        return x, finals

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "layers": self.layers_count,
            "cell": self.cell,
            "bidirectional": self.bidirectional,
            "layer_norm": self.layer_norm,
            "dropout": self.dropout_rate,
            "unit_embeddings": self.unit_embeddings,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }


def tied_logits(outputs, backbone: TextBackbone, bias):
    """Float32 logits of ``outputs`` against ``backbone``'s token embeddings (the softmax's
    weights tied to the embedding's; Press & Wolf 2017), plus ``bias``."""
    embeddings = ops.cast(backbone.embedding.embeddings, "float32")
    return ops.matmul(ops.cast(outputs, "float32"), ops.transpose(embeddings)) + bias
