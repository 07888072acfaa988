"""Train a basecaller with CTC on bonito-style chunk arrays.

Each epoch logs the loss, the
validation chunk accuracy (edlib) and the share of validation chunks decoded to nothing, so the
usual early "all blank" phase of CTC training is visible for what it is.
"""

from __future__ import annotations

import logging
from pathlib import Path

import edlib
import keras
import numpy as np

from nanoseq.basecaller.decode import greedy
from nanoseq.basecaller.model import ALPHABET, STRIDES, Basecaller, ctc_loss, output_frames
from nanoseq.models import load_model, saved_config
from nanoseq.signal.labels import join_chunks
from nanoseq.training import adam, fit, seed_everything

log = logging.getLogger(__name__)


def feasible(references: np.ndarray, lengths: np.ndarray, frames: int) -> np.ndarray:
    """Chunks CTC can align: labels plus a blank between each repeated pair fit in the frames."""
    repeats = np.sum((references[:, 1:] == references[:, :-1]) & (references[:, 1:] > 0), axis=1)
    return (lengths > 0) & (lengths + repeats <= frames)


def model_arrays(chunk_set: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A chunk set as the model's input ``(n, samples, 1)`` float32 and int32 CTC labels."""
    signal = chunk_set["chunks"][..., None].astype(np.float32)
    return signal, chunk_set["references"].astype(np.int32)


def accuracy(reference: str, call: str) -> float:
    """Chunk accuracy as bonito reports it: 1 - edit distance / reference length (floored at 0)."""
    if not reference:
        return 0.0
    distance = edlib.align(call, reference, task="distance")["editDistance"]
    return max(0.0, 1.0 - distance / len(reference))


class ChunkValidation(keras.callbacks.Callback):
    """Greedy-decodes the validation chunks each epoch: accuracy and the all-blank share."""

    def __init__(self, chunks, references, batch_size):
        super().__init__()
        self.chunks, self.batch_size = chunks, batch_size
        self.truth = ["".join(ALPHABET[c] for c in row if c) for row in references]

    def on_epoch_end(self, epoch, logs=None):
        logits = self.model.predict(self.chunks, batch_size=self.batch_size, verbose=0)
        calls = [greedy(frames)[0] for frames in logits]
        scores = [accuracy(t, c) for t, c in zip(self.truth, calls, strict=True)]
        blank = float(np.mean([not c for c in calls]))
        logs = logs if logs is not None else {}
        logs["val_accuracy"] = float(np.median(scores))
        logs["val_blank_share"] = blank
        note = "  (all-blank phase: normal early in CTC training)" if blank > 0.5 else ""
        log.info(
            "epoch %d: val_accuracy %.4f, blank share %.2f%s",
            epoch + 1,
            logs["val_accuracy"],
            blank,
            note,
        )


def train_basecaller(
    data: dict[str, np.ndarray] | list[dict[str, np.ndarray]],
    output: str | Path,
    init: str | None = None,
    upsample: int | None = None,
    validation: dict[str, np.ndarray] | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    clipnorm: float = 2.0,
    valid_fraction: float = 0.05,
    resume: bool = False,
    max_minutes: float | None = None,
    strategy: str = "default",
    mixed_precision: bool = False,
    seed: int = 1,
    **model_options,
):
    """Train on ``data`` (from ``prepare``; a list of such sets is joined) into the folder
    ``output``; return the trained model. ``init`` (a bundled model's name or a ``.keras``
    path) is trained further instead of a new model built from ``model_options``; an
    ``upsample`` above its own widens its head (see :meth:`Basecaller.upsampled`).

    ``validation`` is a chunk set of its own; without it the last ``valid_fraction`` of the
    first set's chunks (in read order, so mostly whole reads) validates.
    ``output`` gets ``checkpoint.keras`` each epoch, ``training.csv`` and ``model.keras``.
    """
    seed_everything(seed)
    sets = data if isinstance(data, list) else [data]
    if validation is None:
        first = sets[0]
        split = len(first["chunks"]) - max(1, int(len(first["chunks"]) * valid_fraction))
        validation = {name: array[split:] for name, array in first.items()}
        sets = [{name: array[:split] for name, array in first.items()}, *sets[1:]]
    train = join_chunks(sets)
    chunks, references = model_arrays(train)
    # read from the saved config, not the model: loading one starts TensorFlow, which
    # multi-worker training must configure first
    config = saved_config(init) if init else {"strides": STRIDES, **model_options}
    upsample = upsample or config.get("upsample", 1)

    def build():
        if not init:
            return Basecaller(upsample=upsample, **model_options)
        model = load_model(init)
        return model if model.upsample == upsample else model.upsampled(upsample)

    frames = output_frames(chunks.shape[1], config["strides"], upsample)
    ok = feasible(references, train["reference_lengths"], frames)
    if not ok.all():
        log.info("dropping %d training chunks with more bases than CTC frames", (~ok).sum())
    valid = model_arrays(validation)
    return fit(
        build=build,
        loss=ctc_loss,
        train=(chunks[ok], references[ok]),
        validation=valid,
        output=output,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=adam(clipnorm),
        peak_learning_rate=learning_rate,
        resume=resume,
        max_minutes=max_minutes,
        strategy=strategy,
        mixed_precision=mixed_precision,
        callbacks=[ChunkValidation(*valid, batch_size)],
        monitor="val_accuracy",
        monitor_mode="max",
    )
