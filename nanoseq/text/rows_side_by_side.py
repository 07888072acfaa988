"""Truncated BPTT with a batch's rows shared among calls at once, on CPUs under TensorFlow.

A recurrent step is a small product that keeps about one core busy, and XLA runs one program's
work in order. So each call (a thread) computes the loss and gradients of its share of the rows
from their carried states; the gradients' mean, weighted by rows, is applied once, which is the
step over the whole batch to float32 rounding. Language model 2x256 LSTM, 32 rows of 100
steps, 2 cores: 7.2-7.3 steps/s as one call, 9.0-9.1 as two (2x512: 2.4-2.6 against 2.7-2.8).
With dropout two calls were slower than one (4.2 against 5.3 steps/s, dropout 0.1, one run):
such models keep Keras's step.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import keras

from nanoseq.runtime import side_by_side

MIN_STREAM_ROWS = 16  # rows of a call at once, fewest


def training_streams(trainer) -> int:
    """Calls at once for a :class:`~nanoseq.text.lm.StreamingTrainer`'s step (1: Keras's own
    step): on TensorFlow without a distribution strategy, eager running or dropout."""
    if keras.backend.backend() != "tensorflow" or trainer.run_eagerly:
        return 1
    import tensorflow as tf

    default = tf.distribute.get_strategy()  # outside any strategy's scope: no strategy
    if tf.distribute.has_strategy() or trainer.distribute_strategy is not default:
        return 1  # built under a strategy, whose replicas Keras's step runs
    if trainer.model.backbone.dropout_rate:
        return 1
    return side_by_side(trainer.batch_size, MIN_STREAM_ROWS)


def train_function(trainer, streams: int):
    """Keras's ``train_function`` (an iterator of batches in, the logs out) for ``trainer``
    with each batch's rows in ``streams`` calls at once."""
    import tensorflow as tf

    def compiled(function):
        return tf.function(function, jit_compile=trainer.jit_compile, reduce_retracing=True)

    gradients, apply = compiled(_gradients(trainer)), compiled(_apply(trainer))
    size, bounds = trainer.batch_size, []
    for part in range(streams):
        bounds.append((part * size // streams, (part + 1) * size // streams))
    shares = [(stop - start) / size for start, stop in bounds]

    def step(x, y):
        carry = [variable.value for variable in trainer.carry]

        def part(bound):
            rows = slice(*bound)
            return gradients(x[rows], y[rows], [state[rows] for state in carry])

        with ThreadPoolExecutor(streams, thread_name_prefix="model") as pool:
            return apply(shares, list(pool.map(part, bounds)))

    def function(iterator):
        logs = None
        for _ in range(trainer.steps_per_execution):
            batch = iterator.get_next_as_optional()
            if not batch.has_value():
                if logs is None:
                    raise StopIteration
                break
            logs = step(*batch.get_value()[:2])
        return logs

    return function


def _gradients(trainer):
    """Rows' (loss, gradients of the scaled loss, states after them) from their states."""
    import tensorflow as tf

    def gradients(x, y, states):
        with tf.GradientTape() as tape:
            logits, states = trainer.model(x, list(states), training=True, return_states=True)
            loss = trainer.compute_loss(x=x, y=y, y_pred=logits, training=True)
            scaled = trainer.optimizer.scale_loss(loss)
        found = tape.gradient(scaled, trainer.trainable_weights)
        return loss, found, [tf.stop_gradient(state) for state in states]

    return gradients


def _apply(trainer):
    """The parts' gradients' mean (``shares`` of the rows as weights) applied, their states
    carried, the loss logged; Keras's logs."""
    import tensorflow as tf

    def apply(shares, parts):
        def mean(values):
            weighted = zip(shares, list(values), strict=True)
            return tf.add_n([share * tf.convert_to_tensor(value) for share, value in weighted])

        found = [mean(part[1][i] for part in parts) for i in range(len(parts[0][1]))]
        trainer.optimizer.apply(found, trainer.trainable_weights)
        for i, variable in enumerate(trainer.carry):
            variable.assign(tf.concat([part[2][i] for part in parts], axis=0))
        trainer._loss_tracker.update_state(  # as Keras's own step does
            mean(part[0] for part in parts), sample_weight=trainer.batch_size
        )
        return trainer.get_metrics_result()

    return apply
