"""Train a basecaller with CTC or a CRF on bonito-style chunk arrays.

Each epoch logs the loss, the
validation chunk accuracy (edlib) and the share of validation chunks decoded to nothing, so the
usual early "all blank" phase of CTC training is visible for what it is.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import edlib
import keras
import numpy as np

from nanoseq.basecaller import crf
from nanoseq.basecaller.decode import decode
from nanoseq.basecaller.model import ALPHABET, LOSSES, STRIDES, Basecaller, output_frames
from nanoseq.models import load_model, saved_config
from nanoseq.runtime import compiled
from nanoseq.signal.labels import join_chunks
from nanoseq.training import BEST, adam, fit, seed_everything

log = logging.getLogger(__name__)


def feasible(
    references: np.ndarray, lengths: np.ndarray, frames: int, decoder: str = "ctc"
) -> np.ndarray:
    """Chunks the loss can align. CTC: labels plus a blank between each repeated pair fit in
    the frames; CRF: the labels fill its first state, and one frame a move for the rest."""
    if decoder == "crf":
        return (lengths >= crf.STATE_LEN) & (lengths - crf.STATE_LEN <= frames)
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


def truths(references: np.ndarray, decoder: str = "ctc") -> list[str]:
    """What a model should call of each chunk. A CRF path starts in the state of the first
    three bases, which it does not emit, so it is scored on the rest."""
    skip = crf.STATE_LEN if decoder == "crf" else 0
    return ["".join(ALPHABET[c] for c in row if c)[skip:] for row in references]


def chunk_calls(outputs: np.ndarray, decoder: str, batch_size: int, stay: float = crf.STAY):
    """The calls of chunks from their head outputs: CTC greedy, or the CRF's best path found
    with ``stay``."""
    if decoder == "crf":
        function = compiled(functools.partial(crf.path_and_posteriors, stay=stay))
        outputs = np.concatenate(
            [
                keras.ops.convert_to_numpy(function(outputs[i : i + batch_size]))
                for i in range(0, len(outputs), batch_size)
            ]
        )
    return [decode(frames, 1, decoder)[0] for frames in outputs]


def median_accuracy(truth: list[str], calls: list[str]) -> float:
    return float(np.median([accuracy(t, c) for t, c in zip(truth, calls, strict=True)]))


class ChunkValidation(keras.callbacks.Callback):
    """Decodes the validation chunks each epoch: accuracy and the all-blank share."""

    def __init__(self, chunks, references, batch_size, decoder="ctc"):
        super().__init__()
        self.chunks, self.batch_size, self.decoder = chunks, batch_size, decoder
        self.truth = truths(references, decoder)

    def on_epoch_end(self, epoch, logs=None):
        outputs = self.model.predict(self.chunks, batch_size=self.batch_size, verbose=0)
        stay = self.model.metadata.get("crf_stay", crf.STAY)
        calls = chunk_calls(outputs, self.decoder, self.batch_size, stay)
        blank = float(np.mean([not c for c in calls]))
        logs = logs if logs is not None else {}
        logs["val_accuracy"] = median_accuracy(self.truth, calls)
        logs["val_blank_share"] = blank
        note = "  (all-blank phase: normal early in CTC training)" if blank > 0.5 else ""
        log.info(
            "epoch %d: val_accuracy %.4f, blank share %.2f%s",
            epoch + 1,
            logs["val_accuracy"],
            blank,
            note,
        )


def calibrate_stay(path: Path, chunks, references, batch_size: int) -> float:
    """Set the CRF model at ``path``'s decoding stay score to the one of ``STAYS`` under which
    its best paths call ``chunks`` best (median accuracy), and save it; return that score."""
    model = load_model(str(path))
    outputs = model.predict(chunks, batch_size=batch_size, verbose=0)
    truth = truths(references, "crf")
    found = {
        stay: median_accuracy(truth, chunk_calls(outputs, "crf", batch_size, stay))
        for stay in STAYS
    }
    best = max(found, key=found.get)  # the first of equals: the least change
    log.info(
        "CRF decoding stay score %.3g (validation accuracy %.4f; %.4f at the trained %.3g)",
        best,
        found[best],
        found[crf.STAY],
        crf.STAY,
    )
    model.metadata["crf_stay"] = best
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    model.save(temporary)
    temporary.replace(path)
    return best


STAYS = tuple(crf.STAY - i / 8 for i in range(9))  # stay scores the calibration tries


def train_basecaller(
    data: dict[str, np.ndarray] | list[dict[str, np.ndarray]],
    output: str | Path,
    init: str | None = None,
    upsample: int | None = None,
    decoder: str | None = None,
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
    ``upsample`` above its own widens its head (see :meth:`Basecaller.upsampled`), and another
    ``decoder`` (``ctc`` or ``crf``) gives it a new head of that kind on the same layers
    (see :meth:`Basecaller.with_decoder`).

    ``validation`` is a chunk set of its own; without it the last ``valid_fraction`` of the
    first set's chunks (in read order, so mostly whole reads) validates.
    ``output`` gets ``checkpoint.keras`` each epoch, ``training.csv`` and ``model.keras``;
    a CRF's ``model.keras`` gets its decoding stay score calibrated (:func:`calibrate_stay`).
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
    decoder = decoder or config.get("decoder", "ctc")

    def build():
        if not init:
            return Basecaller(upsample=upsample, decoder=decoder, **model_options)
        model = load_model(init)
        if model.decoder != decoder:
            model = model.with_decoder(decoder)
        return model if model.upsample == upsample else model.upsampled(upsample)

    frames = output_frames(chunks.shape[1], config["strides"], upsample)
    ok = feasible(references, train["reference_lengths"], frames, decoder)
    if not ok.all():
        log.info("dropping %d training chunks with more bases than CTC frames", (~ok).sum())
    valid = model_arrays(validation)
    trained = fit(
        build=build,
        loss=LOSSES[decoder],
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
        callbacks=[ChunkValidation(*valid, batch_size, decoder)],
        monitor="val_accuracy",
        monitor_mode="max",
    )
    if decoder == "crf" and (Path(output) / BEST).is_file():
        calibrate_stay(Path(output) / BEST, *valid, batch_size)
    return trained
