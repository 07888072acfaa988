"""Recurrent language model p(x_t | x_<t): a :class:`TextBackbone` under a float32 softmax head.

The model is stateless: ``model(tokens, states, return_states=True)`` takes and returns the
recurrent states explicitly, which is what generation, beam search and evaluation over a long text
need. Truncated BPTT training wraps it in :class:`StreamingTrainer`, which keeps the last states
of each batch row in variables so that row k of batch i+1 continues row k of batch i.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from nanoseq.models import Task
from nanoseq.runtime import compiled_for
from nanoseq.text.backbone import TextBackbone, tied_logits
from nanoseq.text.generate import allowed_ids, allowed_log_probs
from nanoseq.text.rows_side_by_side import train_function, training_streams


@keras.saving.register_keras_serializable(package="nanoseq")
class LanguageModel(Task, keras.Model):
    """Token ids ``(batch, time)`` in, next-token logits ``(batch, time, vocab)`` out: a
    unidirectional ``backbone`` under a float32 softmax head, dense or (``tie_weights``) the
    embedding matrix transposed plus a bias. ``vocabulary`` (a :class:`Vocabulary` config)
    travels with the model. ``dtype`` defaults to the backbone's policy."""

    nested = ("backbone",)

    def __init__(
        self,
        backbone: TextBackbone,
        vocabulary: dict | None = None,
        tie_weights: bool = False,
        dtype=None,
        **kwargs,
    ):
        if backbone.bidirectional:
            raise ValueError("a language model reads left to right: no bidirectional backbone")
        if tie_weights and backbone.units != backbone.embedding_dim:
            raise ValueError("tied weights need units == embedding_dim")
        super().__init__(dtype=backbone.dtype_policy if dtype is None else dtype, **kwargs)
        self.backbone, self.vocabulary, self.tie_weights = backbone, vocabulary, tie_weights
        self.head = (
            None
            if tie_weights
            else keras.layers.Dense(backbone.vocab_size, dtype="float32", name="logits")
        )
        self.bias = None

    @property
    def vocab_size(self) -> int:
        return self.backbone.vocab_size

    @property
    def units(self) -> int:
        return self.backbone.units

    @property
    def states_per_layer(self) -> int:
        return self.backbone.states_per_layer

    def zero_states(self, batch: int) -> list:
        """Initial recurrent states for ``batch`` rows (``layers * states_per_layer`` arrays)."""
        return self.backbone.zero_states(batch)

    def build(self, input_shape):
        """Build every layer now, so a loaded model has all its weights before the first call."""
        if not self.backbone.built:  # a loaded backbone is built as it is deserialized
            self.backbone.build(input_shape)
        if self.head is not None:
            self.head.build((*input_shape, self.units))
        else:
            self.bias = self.add_weight(
                shape=(self.vocab_size,), initializer="zeros", autocast=False, name="bias"
            )

    def call(self, tokens, states=None, training=False, return_states=False):
        x, new_states = self.backbone(tokens, states, training=training)
        if self.tie_weights:
            logits = tied_logits(x, self.backbone, self.bias)
        else:
            logits = self.head(x)
        return (logits, new_states) if return_states else logits

    def step(self, tokens, states, banned=()):
        """One token per hypothesis: the :mod:`nanoseq.text.generate` step function. The next
        token's log probabilities (``banned`` ids impossible) and the new states, computed by a
        compiled function on the backend."""
        return self._log_probs(np.asarray(tokens)[:, None], states, banned)

    def prime(self, ids, banned=()):
        """Run a prompt (1-D ids): the next token's log probabilities and the states."""
        log_probs, states = self._log_probs(np.asarray(ids)[None, :], self.zero_states(1), banned)
        return log_probs[0], states

    def _log_probs(self, tokens, states, banned):
        allowed = allowed_ids(self.vocab_size, banned)
        run = compiled_for(self, _last_log_probs)
        log_probs, *states = run(tokens.astype(np.int32), allowed, *states)
        return ops.convert_to_numpy(log_probs), [ops.convert_to_numpy(s) for s in states]

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "vocabulary": self.vocabulary,
            "tie_weights": self.tie_weights,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }


@keras.saving.register_keras_serializable(package="nanoseq")
class StreamingTrainer(keras.Model):
    """Truncated BPTT: carries each batch row's last states into the next batch (no gradient
    through the carry). Call :meth:`reset` at epoch start and before evaluation.

    ``batch_size`` is the rows one replica sees: under a distribution strategy each replica
    keeps its own carry (an on-read variable) for its slice of the global batch."""

    def __init__(self, model: LanguageModel, batch_size: int, **kwargs):
        super().__init__(dtype=model.dtype_policy, **kwargs)
        self.model, self.batch_size = model, batch_size
        self.carry = [
            keras.Variable(
                state,
                trainable=False,
                synchronization="on_read",
                aggregation="only_first_replica",
                name=f"carry{i}",
            )
            for i, state in enumerate(model.zero_states(batch_size))
        ]

    def call(self, tokens, training=False):
        logits, states = self.model(
            tokens, [v.value for v in self.carry], training=training, return_states=True
        )
        for variable, state in zip(self.carry, states, strict=True):
            variable.assign(ops.stop_gradient(state))
        return logits

    def make_train_function(self, force=False):
        """Keras's step, or on CPUs the batch's rows in calls at once (see
        :mod:`nanoseq.text.rows_side_by_side`)."""
        if self.train_function is not None and not force:
            return self.train_function
        streams = training_streams(self)
        if streams == 1:
            return super().make_train_function(force)
        self.train_function = train_function(self, streams)
        return self.train_function

    def reset(self) -> None:
        for variable in self.carry:
            variable.assign(ops.zeros(variable.shape, variable.dtype))

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


def _last_log_probs(model: LanguageModel, tokens, allowed, *states) -> list:
    """The log probabilities after each row's last token (only ``allowed`` ids possible) and
    the states after it."""
    logits, states = model(tokens, list(states), return_states=True)
    return [allowed_log_probs(logits[:, -1], allowed), *states]
