"""Encoder-decoder with attention: source token ids in, next-target-token logits out.

A GRU/LSTM encoder (1-4 layers, bidirectional by default) reads the source; a bridge (dense +
tanh) turns each encoder layer's final states into the initial states of the matching decoder
layer. The decoder reads the target shifted right (teacher forcing in training) and attends over
the encoder outputs with the source padding masked out. Attention follows Luong et al.'s global
attention: the decoder's current output is the query, the context and the output make the
attentional state ``tanh(W [context; output])`` that feeds the softmax. The score is additive
(``bahdanau``: ``v . tanh(W q + U k)``) or multiplicative (``luong``: ``q . W k``); ``none``
turns attention off. With the query taken after the recurrent layers, teacher-forced training
runs the decoder over all target positions at once.

Decoding (:mod:`nanoseq.text.translate`) goes through :meth:`Seq2Seq.encode` and
:meth:`Seq2Seq.next_token`.
"""

from __future__ import annotations

import keras
from keras import ops

from nanoseq.dropout import Dropout
from nanoseq.lstm import LSTM
from nanoseq.text.vocab import PAD_ID

CELLS = {"gru": keras.layers.GRU, "lstm": LSTM}
ATTENTION = ("bahdanau", "luong", "none")
MASKED = -1e9  # score of a padded source position: exp() of it is exactly 0 in float32


@keras.saving.register_keras_serializable(package="nanoseq")
class Attention(keras.layers.Layer):
    """Scores of decoder queries ``(batch, T, units)`` against projected keys ``(batch, S, units)``;
    returns the weights ``(batch, T, S)``, zero on masked source positions, rows summing to 1."""

    def __init__(self, units: int, score: str = "bahdanau", **kwargs):
        super().__init__(**kwargs)
        self.units, self.score = units, score
        self.query = keras.layers.Dense(units, use_bias=False, name="query")
        self.v = keras.layers.Dense(1, use_bias=False, name="v") if score == "bahdanau" else None

    def build(self, queries_shape, keys_shape=None, mask_shape=None):
        self.query.build(queries_shape)
        if self.v is not None:
            self.v.build((None, None, None, self.units))
        self.built = True

    def call(self, queries, keys, mask):
        q = self.query(queries)
        if self.v is not None:
            scores = ops.squeeze(self.v(ops.tanh(q[:, :, None, :] + keys[:, None, :, :])), -1)
        else:
            scores = ops.matmul(q, ops.transpose(keys, (0, 2, 1)))
        scores = ops.cast(scores, "float32")
        scores = ops.where(mask[:, None, :], scores, MASKED)
        return ops.softmax(scores, axis=-1)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "score": self.score}


@keras.saving.register_keras_serializable(package="nanoseq")
class Seq2Seq(keras.Model):
    """``model((source, target_in))`` -> logits ``(batch, T, target_vocab)``; ``<pad>`` (id 0) is
    masked on both sides. ``preprocessing`` (lowercase, tokenize) and the vocabularies' configs
    travel with the model so that translation needs nothing else."""

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        embedding_dim: int = 256,
        units: int = 256,
        layers: int = 1,
        cell: str = "gru",
        bidirectional: bool = True,
        attention: str = "bahdanau",
        dropout: float = 0.0,
        source_vocabulary: dict | None = None,
        target_vocabulary: dict | None = None,
        preprocessing: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if attention not in ATTENTION:
            raise ValueError(f"attention must be one of {ATTENTION}, got {attention!r}")
        if not 1 <= layers <= 4:
            raise ValueError(f"layers must be 1 to 4, got {layers}")
        self.source_vocab_size, self.target_vocab_size = source_vocab_size, target_vocab_size
        self.embedding_dim, self.units, self.layers_count = embedding_dim, units, layers
        self.cell, self.bidirectional, self.attention = cell, bidirectional, attention
        self.dropout_rate = dropout
        self.source_vocabulary, self.target_vocabulary = source_vocabulary, target_vocabulary
        self.preprocessing = preprocessing or {"lowercase": False, "tokenize": False}
        rnn = CELLS[cell]
        self.source_embedding = keras.layers.Embedding(source_vocab_size, embedding_dim)
        self.target_embedding = keras.layers.Embedding(target_vocab_size, embedding_dim)
        # Kept as a list so no cell is freed before its Bidirectional copy is made (see Basecaller).
        cells = [
            rnn(units, return_sequences=True, return_state=True, name=f"encoder{i}")
            for i in range(layers)
        ]
        self.encoders = [
            keras.layers.Bidirectional(c, name=c.name) if bidirectional else c for c in cells
        ]
        self.bridges = [
            keras.layers.Dense(units, activation="tanh", name=f"bridge{i}")
            for i in range(layers * self.states_per_layer)
        ]
        self.decoders = [
            rnn(units, return_sequences=True, return_state=True, name=f"decoder{i}")
            for i in range(layers)
        ]
        if attention != "none":
            bias = attention == "bahdanau"
            self.project_keys = keras.layers.Dense(units, use_bias=bias, name="keys")
            self.attend = Attention(units, attention, name="attention")
            self.combine = keras.layers.Dense(units, activation="tanh", use_bias=False)
        self.drop = Dropout(dropout)
        self.head = keras.layers.Dense(target_vocab_size, name="logits")

    @property
    def states_per_layer(self) -> int:
        return 2 if self.cell == "lstm" else 1

    @property
    def memory_dim(self) -> int:
        return self.units * (2 if self.bidirectional else 1)

    def build(self, input_shape):
        """Build every layer now, so a loaded model has all its weights before the first call."""
        source_shape, target_shape = input_shape
        self.source_embedding.build(source_shape)
        self.target_embedding.build(target_shape)
        for i, encoder in enumerate(self.encoders):
            encoder.build((None, None, self.embedding_dim if i == 0 else self.memory_dim))
        for bridge in self.bridges:
            bridge.build((None, self.memory_dim))
        for i, decoder in enumerate(self.decoders):
            decoder.build((None, None, self.embedding_dim if i == 0 else self.units))
        if self.attention != "none":
            self.project_keys.build((None, None, self.memory_dim))
            self.attend.build((None, None, self.units))
            self.combine.build((None, None, self.units + self.memory_dim))
        self.head.build((None, None, self.units))
        self.built = True

    def encode(self, source, training=False) -> list:
        """The decoder's initial states followed by the memory: ``[states..., memory, keys,
        mask]``, each with the batch first (the :meth:`step` state list)."""
        mask = ops.not_equal(source, PAD_ID)
        x = self.drop(self.source_embedding(source), training=training)
        n = self.states_per_layer
        states = []
        for encoder in self.encoders:
            out = encoder(x, mask=mask, training=training)
            x, finals = out[0], out[1:]
            if self.bidirectional:  # [forward states..., backward states...] -> per state kind
                finals = [ops.concatenate([finals[k], finals[n + k]], -1) for k in range(n)]
            states.extend(finals)
            x = self.drop(x, training=training)
        states = [bridge(s) for bridge, s in zip(self.bridges, states, strict=True)]
        keys = self.project_keys(x) if self.attention != "none" else x
        return [*states, x, keys, mask]

    def decode(self, target_in, encoded, training=False):
        """Logits, attention weights (or None) and the decoder's final states."""
        *states, memory, keys, mask = encoded
        n = self.states_per_layer
        x = self.drop(self.target_embedding(target_in), training=training)
        finals = []
        for i, decoder in enumerate(self.decoders):
            out = decoder(x, initial_state=list(states[i * n : (i + 1) * n]), training=training)
            x = self.drop(out[0], training=training)
            finals.extend(out[1:])
        logits, weights = self.predict_tokens(x, memory, keys, mask, training)
        return logits, weights, finals

    def predict_tokens(self, outputs, memory, keys, mask, training=False):
        """Decoder outputs ``(batch, T, units)`` -> logits and attention weights (or None)."""
        weights = None
        if self.attention != "none":
            weights = self.attend(outputs, keys, mask)
            context = ops.matmul(ops.cast(weights, memory.dtype), memory)
            outputs = self.combine(ops.concatenate([context, outputs], -1))
            outputs = self.drop(outputs, training=training)
        return ops.cast(self.head(outputs), "float32"), weights

    def call(self, inputs, training=False, return_attention=False):
        source, target_in = inputs
        logits, weights, _ = self.decode(target_in, self.encode(source, training), training)
        return (logits, weights) if return_attention else logits

    def next_token(self, tokens, memory, keys, mask, *states):
        """Logits of the next token and the new decoder states, for one token ``(batch,)`` per
        row. Runs the recurrent cells directly: the layers' per-step arithmetic without their
        loop."""
        x = self.target_embedding(tokens)
        n, finals = self.states_per_layer, []
        for i, decoder in enumerate(self.decoders):
            x, new_states = decoder.cell(x, list(states[i * n : (i + 1) * n]))
            finals.extend(new_states)
        logits, _ = self.predict_tokens(x[:, None], memory, keys, mask)
        return [logits[:, -1], *finals]

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "layers": self.layers_count,
            "cell": self.cell,
            "bidirectional": self.bidirectional,
            "attention": self.attention,
            "dropout": self.dropout_rate,
            "source_vocabulary": self.source_vocabulary,
            "target_vocabulary": self.target_vocabulary,
            "preprocessing": self.preprocessing,
        }


@keras.saving.register_keras_serializable(package="nanoseq")
class MaskedCrossEntropy(keras.losses.Loss):
    """Mean cross-entropy over the non-``<pad>`` target tokens, with optional label smoothing
    (``1 - e`` on the truth, ``e`` spread evenly over the vocabulary)."""

    def __init__(self, label_smoothing: float = 0.0, name="masked_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        loss = -ops.squeeze(ops.take_along_axis(log_probs, y_true[..., None], axis=-1), -1)
        if self.label_smoothing:
            e = self.label_smoothing
            loss = (1 - e) * loss - e * ops.mean(log_probs, axis=-1)
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        # per position, weighted so that Keras's mean over all positions (which also shares the
        # loss out among a distribution strategy's replicas) is the mean over real tokens
        return loss * mask * ops.cast(ops.size(mask), "float32") / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {"name": self.name, "label_smoothing": self.label_smoothing}
