"""Language-model benchmarks: train, then score held-out text. One JSON line per task.

    python bench/lm.py shakespeare [--minutes 29]   # char LSTM 2x256, first 90 % / last 10 %
    python bench/lm.py ptb                          # Zaremba et al. small: 2x200 LSTM, 13 epochs
    python bench/lm.py ptb-medium --minutes 10      # their medium, 2x650: a part of its 39 epochs
    python bench/lm.py side-by-side [--steps 300]   # nanoseq against PyTorch, same model and data

Data from ../shared/data/text. Training tokens/s is measured over the whole training run; the
baseline measured in the same run is the untrained model's validation score (ln V per token);
``hours_for_all_epochs`` is the time all of the task's epochs would take at that rate (the
estimate for a run cut short by ``--minutes``).

`side-by-side`: the character model of tinyshakespeare (embedding 64, 2 layers, batch 32 x 100
steps, Adam at 2e-3 with nanoseq's warm-up and cosine over the run, global-norm clip 5, states
carried across batches) trained ``--steps`` steps by `nanoseq lm train`'s own code and by a
PyTorch reference (`torch.nn.LSTM`/`GRU`, a separate process; the `bench` extra, or skipped
with the reason) on the same batches, for LSTM and GRU of 256 and 512 units: steady-state
training steps/s (after the first 20 steps, so without compiling), the mean training loss of
the run, and inference steps/s: the same text read forward as 32 rows of 100 steps, states
carried (nanoseq's as `nanoseq lm evaluate` and validation score a text, next-token
cross-entropy included; `predict_steps_per_s` is Keras's `predict` of the training model on the
same batches); `over_torch` is nanoseq's steps/s over PyTorch's. nanoseq's training figure is its
whole `fit` (callbacks, the carry) as users train.
The run is one epoch validated on the task's validation text (the last 10 %, 111,540
characters): nanoseq's `epoch_seconds`, and of them `compile_seconds` (the first step's time over
a steady step's) and `validation_seconds` (from the last step to the validation's end), with
their shares of the epoch.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lm_torch import steady_rate  # bench/, the script's folder

from nanoseq.runtime import import_keras

keras = import_keras()

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "text"

# Per task: the training run's options (nanoseq.training.TrainingRun), then the model's.
TASKS = {
    "shakespeare": (
        dict(
            epochs=60,  # more than 30 minutes hold: the schedule anneals within --minutes
            max_minutes=29.0,  # the target's 30 minutes, less the last epoch's validation
            xla=None,  # language models: XLA on CPUs too (before that default, with this
            # dropout: 0.31 s a step without XLA, 0.34 s with; not measured again since)
        ),
        dict(
            level="char",
            cell="lstm",
            layers=2,
            units=256,
            embedding_dim=64,
            dropout=0.1,  # without it, 19 epochs overfit from epoch 17 (1.505 nats/char)
            batch_size=32,  # 128 rows ran 2.6x the characters/s but reached only 1.684
            steps=100,
            optimizer="adam",
            learning_rate=2e-3,
            clipnorm=5.0,
        ),
    ),
    "ptb": (
        dict(epochs=13),
        dict(
            level="word",
            cell="lstm",
            layers=2,
            units=200,
            embedding_dim=200,
            batch_size=20,
            steps=20,
            optimizer="sgd",
            # Zaremba et al.'s lr 1 and clip 5 act on the loss summed over the 20 steps;
            # nanoseq's loss is the mean per token, so the same updates are lr 20 and clip 5 / 20
            learning_rate=20.0,
            clipnorm=0.25,
            decay=0.5,
            decay_from=5,
        ),
    ),
}


TASKS["ptb-medium"] = (  # Zaremba et al.'s medium model: 39 epochs, 1/1.2 a epoch from the 7th
    dict(epochs=39),
    {
        **TASKS["ptb"][1],
        **dict(units=650, embedding_dim=650, steps=35, dropout=0.5),
        **dict(learning_rate=35.0, clipnorm=5 / 35, decay=1 / 1.2, decay_from=7),
    },
)


def files(task: str, work: Path) -> tuple[list[Path], list[Path], list[Path]]:
    if task.startswith("ptb"):
        folder = TEXT / "ptb"
        return [folder / "ptb.train.txt"], [folder / "ptb.valid.txt"], [folder / "ptb.test.txt"]
    text = (TEXT / "tinyshakespeare.txt").read_text()
    cut = int(len(text) * 0.9)
    (work / "train.txt").write_text(text[:cut])
    (work / "valid.txt").write_text(text[cut:])
    return [work / "train.txt"], [work / "valid.txt"], [work / "valid.txt"]


SIDE_BY_SIDE = [("lstm", 256), ("gru", 256), ("lstm", 512), ("gru", 512)]


class BatchTimes(keras.callbacks.Callback):
    """When training began, each training batch's end time and loss (Keras's running mean over
    the epoch), and when the epoch's validation ended (it runs first at the epoch's end, and
    this right after it)."""

    def __init__(self):
        super().__init__()
        self.times, self.losses = [], []

    def on_train_begin(self, logs=None):
        self.begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())
        self.losses.append(float(logs["loss"]))

    def on_epoch_end(self, epoch, logs=None):
        self.end = time.perf_counter()

    def overheads(self) -> dict:
        """The epoch's seconds, and of them compiling's (the first step's time over a steady
        step's) and validation's (from the last step's end)."""
        step = 1 / steady_rate(self.times)
        epoch = self.end - self.begin
        compiling = self.times[0] - self.begin - step
        validation_seconds = self.end - self.times[-1]
        return {
            "epoch_seconds": round(epoch, 2),
            "compile_seconds": round(compiling, 2),
            "validation_seconds": round(validation_seconds, 2),
            "compile_share": round(compiling / epoch, 3),
            "validation_share": round(validation_seconds / epoch, 3),
        }


def side_by_side(args) -> dict:
    """nanoseq and PyTorch trained alike; see the module's docstring."""
    import numpy as np

    from nanoseq.text.data import bptt_windows, corpus_text, encode_corpus
    from nanoseq.text.lm_evaluate import stream_nats
    from nanoseq.text.lm_train import train_language_model
    from nanoseq.text.vocab import Vocabulary
    from nanoseq.training import TrainingRun, WarmupCosine

    batch, steps = 32, 100
    work = Path(tempfile.mkdtemp())
    text = (TEXT / "tinyshakespeare.txt").read_text()
    (work / "train.txt").write_text(text[: args.steps * batch * steps + 1])
    (work / "valid.txt").write_text(text[int(len(text) * 0.9) :])  # the task's validation
    train, valid = [str(work / "train.txt")], [str(work / "valid.txt")]
    vocab = Vocabulary.build([corpus_text(text[: args.steps * batch * steps + 1], "char")], "char")
    stream = encode_corpus(train, vocab)
    x, y = bptt_windows(stream, batch, steps)
    np.save(work / "x.npy", x)
    np.save(work / "y.npy", y)
    schedule = WarmupCosine(2e-3, len(x) // batch)
    rates = [schedule.rate(step) for step in range(len(x) // batch)]
    (work / "rates.json").write_text(json.dumps(rates))
    found = {"benchmark": "lm-side-by-side", "backend": keras.backend.backend()}
    found.update(steps=len(x) // batch, batch=[batch, steps])
    for cell, units in SIDE_BY_SIDE:
        times = BatchTimes()
        trainer, _ = train_language_model(
            train,
            valid,
            TrainingRun(work / f"{cell}{units}", epochs=1),
            cell=cell,
            units=units,
            embedding_dim=64,
            batch_size=batch,
            steps=steps,
            learning_rate=2e-3,
            clipnorm=5.0,
            callbacks=[times],
        )
        mine = {"train_steps_per_s": round(steady_rate(times.times), 3), "loss": times.losses[-1]}
        mine.update(times.overheads())
        stream_nats(trainer.model, stream[: batch * steps * 2 + 1], batch, steps)  # compiled
        start = time.perf_counter()
        _, scored = stream_nats(trainer.model, stream, batch, steps)
        mine["infer_steps_per_s"] = round(scored / batch / steps / (time.perf_counter() - start), 3)
        trainer.reset()
        trainer.predict(x[:batch], batch_size=batch, verbose=0)  # compiled
        start = time.perf_counter()
        trainer.predict(x, batch_size=batch, verbose=0)
        mine["predict_steps_per_s"] = round(len(x) / batch / (time.perf_counter() - start), 3)
        key = f"{cell}_2x{units}"
        found[key] = {"nanoseq": mine, "torch": torch_run(args, work, cell, units, len(vocab))}
        if "train_steps_per_s" in found[key]["torch"]:
            theirs = found[key]["torch"]
            found[key]["train_over_torch"] = round(
                mine["train_steps_per_s"] / theirs["train_steps_per_s"], 3
            )
            found[key]["infer_over_torch"] = round(
                mine["infer_steps_per_s"] / theirs["infer_steps_per_s"], 3
            )
    return found


def torch_run(args, work: Path, cell: str, units: int, vocab: int) -> dict:
    """The PyTorch reference in its own process, or why it did not run."""
    command = [sys.executable, str(Path(__file__).with_name("lm_torch.py")), str(work), cell]
    command.append(str(units))
    command += [str(vocab), str(args.threads)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode:
        return {"why": (run.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(run.stdout.splitlines()[-1])


class BatchCounter(keras.callbacks.Callback):
    """Counts training batches, for tokens per second."""

    batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted([*TASKS, "side-by-side"]))
    parser.add_argument("--minutes", type=float, help="Training time budget (task's default).")
    parser.add_argument("--output", help="Training folder (default: a temporary one).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300, help="side-by-side: training steps.")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s")

    from nanoseq.runtime import set_threads

    set_threads(args.threads)
    if args.task == "side-by-side":
        print(json.dumps(side_by_side(args)), flush=True)
        return
    from nanoseq.text.data import encode_corpus
    from nanoseq.text.lm_evaluate import evaluate_text
    from nanoseq.text.lm_train import train_language_model
    from nanoseq.text.vocab import Vocabulary
    from nanoseq.training import TrainingRun

    work = Path(tempfile.mkdtemp())
    train, valid, test = files(args.task, work)
    output = Path(args.output or work / "run")
    run_options, options = TASKS[args.task]
    run_options = {**run_options, **({"max_minutes": args.minutes} if args.minutes else {})}
    counter = BatchCounter()
    start = time.perf_counter()
    trainer, history = train_language_model(
        [str(p) for p in train],
        [str(p) for p in valid],
        TrainingRun(output, **run_options),
        callbacks=[counter],
        **options,
    )
    seconds = time.perf_counter() - start
    tokens = counter.batches * options["batch_size"] * options["steps"]
    window = options["batch_size"] * options["steps"]
    stream = encode_corpus(train, Vocabulary.from_config(trainer.model.vocabulary))
    epoch_tokens = (len(stream) - 1) // window * window
    result = {
        "benchmark": f"lm-{args.task}",
        "config": {**run_options, **options},
        "epochs_run": len(history.history["loss"]),
        "train_seconds": round(seconds),
        "train_tokens_per_s": round(tokens / seconds),
        "hours_for_all_epochs": round(
            epoch_tokens * run_options["epochs"] * seconds / tokens / 3600, 2
        ),
        "baseline_nats_per_token": round(math.log(trainer.model.vocab_size), 4),
        "valid": evaluate_text(str(output / "model.keras"), str(valid[0])),
        "test": evaluate_text(str(output / "model.keras"), str(test[0])),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
