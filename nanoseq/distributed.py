"""Multi-worker training: the cluster from ``TF_CONFIG`` or from a Slurm job's environment,
``MultiWorkerMirroredStrategy``, and a custom training loop over ``strategy.run`` (Keras 3.15's
``fit`` is broken under that strategy).

Every worker runs the same command. Each step, each of the N replicas takes its 1/N of the
global batch (the same rows every step, so a language model's carried state continues), computes
gradients, and the optimizer sums them across all replicas (Keras's TensorFlow optimizer
all-reduces in replica context), so every worker holds the same weights. The chief
(worker 0) writes ``output/``; the others write ``output/worker-N/`` (same files, never mixed).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import keras

from nanoseq.errors import InputError

log = logging.getLogger(__name__)


def cluster_resolver():
    """``TF_CONFIG`` when set, else Slurm's variables inside a Slurm job step."""
    import tensorflow as tf

    if "TF_CONFIG" in os.environ:
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if "SLURM_PROCID" in os.environ:
        port = int(os.environ.get("NANOSEQ_PORT", "8888"))
        return tf.distribute.cluster_resolver.SlurmClusterResolver(port_base=port)
    raise InputError("--strategy multiworker needs TF_CONFIG or a Slurm job (srun)")


def multiworker():
    """The strategy; create it before anything else touches TensorFlow's runtime."""
    import tensorflow as tf

    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=cluster_resolver())


def worker_folder(resolver, output: Path) -> Path:
    """``output`` for the chief, ``output/worker-N`` for the others (``resolver``: this
    process's place in the cluster)."""
    chief = resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )
    return output if chief else output / f"worker-{resolver.task_id}"


def array_batches(x, y, batch_size: int, shuffle: bool):
    """Arrays as a ``tf.data`` dataset of whole batches, reshuffled each epoch in the same
    order on every worker (a fixed op seed under the global seed)."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        data = data.shuffle(len(x), seed=0, reshuffle_each_iteration=True)
    return data.batch(batch_size, drop_remainder=True)


def sharded(strategy, data):
    """The distributed dataset: each global batch is split across the replicas, replica i
    taking the i-th slice of every batch."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(data.with_options(options))


def custom_fit(
    strategy,
    recipe,
    data,
    steps: int,
    folder: Path,
    epochs: int,
    callbacks: list,
    writers,
):
    """Train ``recipe``'s model (:class:`nanoseq.training.Recipe`) on the ``tf.data`` batches
    ``data`` (``steps`` per epoch) under ``strategy``. ``callbacks`` and then ``writers(folder)``
    (the callbacks that write this worker's files into its ``folder``) see each epoch's logs.
    Returns the model and its history."""
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    with strategy.scope():
        net = recipe.build()
        net.compile(optimizer=recipe.optimizer(), loss=recipe.loss)
        net.optimizer.build(net.trainable_variables)
    distributed = sharded(strategy, data)

    def replica_step(inputs, targets):
        with tf.GradientTape() as tape:
            # Keras's loss: this replica's share of the global batch's mean (mean / replicas)
            share = net.compute_loss(inputs, targets, net(inputs, training=True), training=True)
        gradients = tape.gradient(share, net.trainable_variables)
        net.optimizer.apply_gradients(zip(gradients, net.trainable_variables, strict=True))
        return share

    @tf.function(reduce_retracing=True)  # batches of varying lengths
    def train_step(batch):
        shares = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, shares, axis=None)

    history = keras.callbacks.History()
    callbacks = [*callbacks, *writers(folder), history]
    for callback in callbacks:
        callback.set_model(net)
        callback.set_params({"epochs": epochs, "steps": steps})
        callback.on_train_begin()
    log.info("%d replicas; %d steps per epoch", strategy.num_replicas_in_sync, steps)
    for epoch in range(epochs):
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        batches, total = iter(distributed), 0.0
        for step in range(steps):
            for callback in callbacks:
                callback.on_train_batch_begin(step)
            total += float(train_step(next(batches)))
            for callback in callbacks:
                callback.on_train_batch_end(step, {"loss": total / (step + 1)})
        logs = {"loss": total / steps}
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        if net.stop_training:
            break
    for callback in callbacks:
        callback.on_train_end()
    return net, history
