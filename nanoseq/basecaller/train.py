"""Train a basecaller on chunk sets (:class:`~nanoseq.signal.labels.ChunkSet`) with its head's
loss.

The chunks' settings (chemistry, sample rate, normalisation, chunk size) become the model's
metadata, so that basecalling prepares reads as the training data was prepared; sets prepared
differently are refused. Each epoch logs the loss, the validation chunk accuracy (edlib) and the
share of validation chunks decoded to nothing, so the usual early "all blank" phase of CTC
training is visible for what it is. At the end the best model's head is calibrated on the
validation chunks (:meth:`Head.calibrated`).
"""

from __future__ import annotations

import logging
import math

import keras
import numpy as np

from nanoseq.basecaller.backbone import STRIDES, SignalBackbone, backbone_stride
from nanoseq.basecaller.head import make_head
from nanoseq.basecaller.model import Basecaller
from nanoseq.metrics import median_accuracy
from nanoseq.models import load_model, saved_config
from nanoseq.signal.chunks import n_frames
from nanoseq.signal.labels import ChunkSet, same_settings
from nanoseq.training import BEST, Recipe, TrainingRun, adam, fit, save, seed_everything

log = logging.getLogger(__name__)


def model_arrays(chunk_set: ChunkSet) -> tuple[np.ndarray, np.ndarray]:
    """A chunk set as the model's input ``(n, samples, 1)`` float32 and int32 labels."""
    return chunk_set.chunks[..., None].astype(np.float32), chunk_set.references.astype(np.int32)


class ChunkValidation(keras.callbacks.Callback):
    """Decodes the validation chunks each epoch: accuracy and the all-blank share."""

    def __init__(self, chunk_set: ChunkSet, batch_size: int):
        super().__init__()
        self.chunks, self.references = model_arrays(chunk_set)
        self.batch_size = batch_size

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        scores = model.predict(self.chunks, batch_size=self.batch_size, verbose=0)
        calls = [c.sequence for c in model.decode(scores, 1, self.batch_size)]
        blank = float(np.mean([not c for c in calls]))
        logs = logs if logs is not None else {}
        logs["val_accuracy"] = median_accuracy(truths(model.head, self.references), calls)
        logs["val_blank_share"] = blank
        note = "  (all-blank phase: normal early in CTC training)" if blank > 0.5 else ""
        log.info(
            "epoch %d: val_accuracy %.4f, blank share %.2f%s",
            epoch + 1,
            logs["val_accuracy"],
            blank,
            note,
        )


def truths(head, references: np.ndarray) -> list[str]:
    """What ``head`` should call of chunks labelled ``references``."""
    return [head.truth(row) for row in references]


def calibrate(path, chunk_set: ChunkSet, batch_size: int) -> None:
    """Calibrate the head of the model saved at ``path`` on ``chunk_set`` (its decoding, then
    its qualities), and save it."""
    model = load_model(str(path))
    chunks, references = model_arrays(chunk_set)
    scores = model.predict(chunks, batch_size=batch_size, verbose=0)
    truth = truths(model.head, references)
    head = model.head.calibrated(scores, truth, batch_size)
    head = head.with_fitted_qualities(scores, truth, batch_size)
    log.info(
        "qualities, fitted: table %s, context %s; read error scale %.3g",
        head.qscore_table,
        head.qscore_context,
        head.read_error_scale,
    )
    model.head = head
    save(model, path)


def train_basecaller(
    data: ChunkSet | list[ChunkSet],
    run: TrainingRun,
    validation: ChunkSet | None = None,
    init: str | None = None,
    head: str | None = None,
    upsample: int | None = None,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    clipnorm: float = 2.0,
    valid_fraction: float = 0.05,
    **backbone,
):
    """Train on ``data`` (chunk sets of the same settings, joined) as ``run`` says; return the
    model as its last epoch left it and the history (the best model, its head calibrated, is
    ``run.output/model.keras``).

    ``init`` (a bundled model's name or a ``.keras`` path) is trained further instead of a new
    model with a :class:`SignalBackbone` of ``backbone``'s arguments; an ``upsample`` above its
    own widens its head (:meth:`Basecaller.upsampled`), and another ``head`` (``ctc`` or
    ``crf``) puts a new one on its backbone (:meth:`Basecaller.with_head`).

    ``validation`` is a chunk set of its own; without it the last ``valid_fraction`` of the
    first set's chunks (in read order, so mostly whole reads) validates.
    """
    seed_everything(run.seed)
    sets = data if isinstance(data, list) else [data]
    if validation is None:
        first = sets[0]
        split = len(first) - max(1, int(len(first) * valid_fraction))
        sets, validation = (
            [first.rows(slice(None, split)), *sets[1:]],
            first.rows(slice(split, None)),
        )
    settings = same_settings([*sets, validation])
    train = ChunkSet.join(sets)
    metadata = {**settings.to_metadata(), "chunk_size": train.chunk_size}
    # read from the saved config, not the model: loading one starts TensorFlow, which
    # multi-worker training must configure first
    config = saved_config(init, "basecaller") if init else None
    own = keras.saving.deserialize_keras_object(config["head"]) if config else None
    kind = head or (own.kind if own else "ctc")
    upsample = upsample or (config["upsample"] if config else 1)
    stride = (
        backbone_stride(config["backbone"])
        if config
        else math.prod(backbone.get("strides", STRIDES))
    )

    def build():
        if not init:
            return Basecaller(SignalBackbone(**backbone), kind, upsample, metadata)
        model = load_model(init, "basecaller")
        differ = model.settings.differences(settings)
        if differ:
            log.warning(
                "%s was trained on other data (%s): now %s", init, "; ".join(differ), settings
            )
        model = model if model.head.kind == kind else model.with_head(kind)
        model = model if model.upsample == upsample else model.upsampled(upsample)
        model.metadata.update(metadata)
        return model

    frames = upsample * n_frames(train.chunk_size, stride)
    # the model's own head scores as it was trained (an imported CRF: its state length, scale)
    loss = own if own and own.kind == kind else make_head(kind)
    ok = loss.feasible(train.references, train.reference_lengths, frames)
    if not ok.all():
        log.info("dropping %d training chunks the %s loss cannot align", (~ok).sum(), kind)
    recipe = Recipe(
        build=build,
        optimizer=adam(clipnorm),
        loss=loss,
        peak_learning_rate=learning_rate,
        monitor=("val_accuracy", "max"),
        callbacks=[ChunkValidation(validation, batch_size)],
        # on a GPU Keras would compile the step with XLA and fail there: CTCLoss has no XLA
        # kernel, the CRF's loop no fixed length for its gradient
        xla_refused="TensorFlow's CTC and CRF losses do not compile with XLA (JAX's do: "
        "KERAS_BACKEND=jax)",
    )
    chunks, references = model_arrays(train)
    trained = fit(run, recipe, (chunks[ok], references[ok]), model_arrays(validation), batch_size)
    best = run.folder() / BEST  # each worker its own: two saving one file raced
    if best.is_file():
        calibrate(best, validation, batch_size)
    return trained
