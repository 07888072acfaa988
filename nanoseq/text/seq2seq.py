"""Encoder-decoder with attention: source token ids in, next-target-token logits out.

A :class:`~nanoseq.text.backbone.TextBackbone` encoder (1-4 layers, usually bidirectional) reads
the source; a bridge (dense + tanh) turns each encoder layer's final states into the initial
states of the matching decoder layer. The decoder (a unidirectional backbone) reads the target
shifted right (teacher forcing in training) and attends over the encoder outputs with the source
padding masked out. Attention follows Luong et al.'s global attention: the decoder's current
output is the query, the context and the output make the attentional state
``tanh(W [context; output])`` that feeds the softmax. The score is additive (``bahdanau``:
``v . tanh(W q + U k)``) or multiplicative (``luong``: ``q . W k``); ``none`` turns attention
off. With the query taken after the recurrent layers, teacher-forced training runs the decoder
over all target positions at once. With ``tie_weights`` the softmax reads the decoder's token
embeddings (Press & Wolf 2017) instead of a matrix of its own.

Decoding (:mod:`nanoseq.text.translate`) goes through :meth:`Seq2Seq.encode` and
:meth:`Seq2Seq.next_token`.
"""

from __future__ import annotations

import keras
from keras import ops

from nanoseq.dropout import Dropout
from nanoseq.models import Task
from nanoseq.text.backbone import TextBackbone, tied_logits
from nanoseq.text.vocab import PAD_ID

ATTENTION = ("bahdanau", "luong", "none")
MASKED = -1e9  # score of a padded source position: exp() of it is exactly 0 in float32


@keras.saving.register_keras_serializable(package="nanoseq")
class Attention(keras.layers.Layer):
    """Scores of decoder queries ``(batch, T, units)`` against projected keys ``(batch, S, units)``;
    returns the weights ``(batch, T, S)``, zero on masked source positions, rows summing to 1."""

    def __init__(self, units: int, score: str = "bahdanau", **kwargs):
        super().__init__(**kwargs)
        self.units, self.score = units, score
        policy = self.dtype_policy
        self.query = keras.layers.Dense(units, use_bias=False, dtype=policy, name="query")
        self.v = (
            keras.layers.Dense(1, use_bias=False, dtype=policy, name="v")
            if score == "bahdanau"
            else None
        )

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
class Seq2Seq(Task, keras.Model):
    """``model((source, target_in))`` -> logits ``(batch, T, target_vocab)``; ``<pad>`` (id 0) is
    masked on both sides. The ``encoder`` (a :class:`TextBackbone`, usually bidirectional) reads
    the source; the decoder is a unidirectional backbone of the same cell, sizes, layer norm and
    dropout over ``target_vocab_size`` tokens. ``preprocessing`` (lowercase, tokenize) and the
    vocabularies' configs travel with the model so that translation needs nothing else.
    ``tie_weights`` (units equal to the embedding size) shares the decoder's embedding with the
    softmax. ``dtype`` defaults to the encoder's policy; the logits are float32."""

    nested = ("encoder",)

    def __init__(
        self,
        encoder: TextBackbone,
        target_vocab_size: int,
        attention: str = "bahdanau",
        source_vocabulary: dict | None = None,
        target_vocabulary: dict | None = None,
        preprocessing: dict | None = None,
        tie_weights: bool = False,
        dtype=None,
        **kwargs,
    ):
        if attention not in ATTENTION:
            raise ValueError(f"attention must be one of {ATTENTION}, got {attention!r}")
        if tie_weights and encoder.units != encoder.embedding_dim:
            raise ValueError("tied weights need units == embedding_dim")
        super().__init__(dtype=encoder.dtype_policy if dtype is None else dtype, **kwargs)
        policy = self.dtype_policy
        self.encoder, self.target_vocab_size, self.attention = encoder, target_vocab_size, attention
        self.source_vocabulary, self.target_vocabulary = source_vocabulary, target_vocabulary
        self.preprocessing = preprocessing or {"lowercase": False, "tokenize": False}
        self.units = units = encoder.units
        self.decoder = TextBackbone(
            target_vocab_size,
            encoder.embedding_dim,
            units,
            encoder.layers_count,
            encoder.cell,
            layer_norm=encoder.layer_norm,
            dropout=encoder.dropout_rate,
            dtype=policy,
            name="decoder",
        )
        self.bridges = [
            keras.layers.Dense(units, activation="tanh", dtype=policy, name=f"bridge{i}")
            for i in range(encoder.layers_count * encoder.states_per_layer)
        ]
        if attention != "none":
            bias = attention == "bahdanau"
            self.project_keys = keras.layers.Dense(units, use_bias=bias, dtype=policy, name="keys")
            self.attend = Attention(units, attention, dtype=policy, name="attention")
            self.combine = keras.layers.Dense(
                units, activation="tanh", use_bias=False, dtype=policy, name="combine"
            )
        self.drop = Dropout(encoder.dropout_rate, dtype=policy)
        self.tie_weights = tie_weights
        self.head = (
            None
            if tie_weights
            else keras.layers.Dense(target_vocab_size, dtype="float32", name="logits")
        )

    @property
    def states_per_layer(self) -> int:
        return self.encoder.states_per_layer

    @property
    def memory_dim(self) -> int:
        return self.encoder.output_dim

    def build(self, input_shape):
        """Build every layer now, so a loaded model has all its weights before the first call."""
        source_shape, target_shape = input_shape
        if not self.encoder.built:  # a loaded encoder is built as it is deserialized
            self.encoder.build(source_shape)
        self.decoder.build(target_shape)
        for bridge in self.bridges:
            bridge.build((None, self.memory_dim))
        if self.attention != "none":
            self.project_keys.build((None, None, self.memory_dim))
            self.attend.build((None, None, self.units))
            self.combine.build((None, None, self.units + self.memory_dim))
        if self.head is not None:
            self.head.build((None, None, self.units))
        else:
            self.bias = self.add_weight(
                shape=(self.target_vocab_size,), initializer="zeros", autocast=False, name="bias"
            )

    def encode(self, source, training=False) -> list:
        """The decoder's initial states followed by the memory: ``[states..., memory, keys,
        mask]``, each with the batch first (the :meth:`step` state list)."""
        mask = ops.not_equal(source, PAD_ID)
        memory, states = self.encoder(source, mask=mask, training=training)
        states = [bridge(s) for bridge, s in zip(self.bridges, states, strict=True)]
        keys = self.project_keys(memory) if self.attention != "none" else memory
        return [*states, memory, keys, mask]

    def decode(self, target_in, encoded, training=False):
        """Logits, attention weights (or None) and the decoder's final states."""
        *states, memory, keys, mask = encoded
        outputs, finals = self.decoder(target_in, states, training=training)
        logits, weights = self.predict_tokens(outputs, memory, keys, mask, training)
        return logits, weights, finals

    def predict_tokens(self, outputs, memory, keys, mask, training=False):
        """Decoder outputs ``(batch, T, units)`` -> logits and attention weights (or None)."""
        weights = None
        if self.attention != "none":
            weights = self.attend(outputs, keys, mask)
            context = ops.matmul(ops.cast(weights, memory.dtype), memory)
            outputs = self.combine(ops.concatenate([context, outputs], -1))
            outputs = self.drop(outputs, training=training)
        if self.tie_weights:
            return tied_logits(outputs, self.decoder, self.bias), weights
        return self.head(outputs), weights

    def call(self, inputs, training=False, return_attention=False):
        source, target_in = inputs
        logits, weights, _ = self.decode(target_in, self.encode(source, training), training)
        return (logits, weights) if return_attention else logits

    def next_token(self, tokens, memory, keys, mask, *states):
        """Logits of the next token and the new decoder states, for one token ``(batch,)`` per
        row (:meth:`TextBackbone.step`)."""
        outputs, finals = self.decoder.step(tokens, states)
        logits, _ = self.predict_tokens(outputs[:, None], memory, keys, mask)
        return [logits[:, -1], *finals]

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "target_vocab_size": self.target_vocab_size,
            "attention": self.attention,
            "source_vocabulary": self.source_vocabulary,
            "target_vocabulary": self.target_vocabulary,
            "preprocessing": self.preprocessing,
            "tie_weights": self.tie_weights,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
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
