"""Options shared by several commands."""

from __future__ import annotations

import functools
import math

import click


class Finite(click.FloatRange):
    """click's FloatRange without NaN and infinity, which it lets through."""

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value} is not a finite number", param, ctx)
        return value


class NonEmpty(click.Path):
    """click's Path without the empty string (which would mean the current folder)."""

    def convert(self, value, param, ctx):
        if not str(value):
            self.fail("an empty path", param, ctx)
        return super().convert(value, param, ctx)


PATH = NonEmpty()
POSITIVE = click.IntRange(1, 2**62)
SEED = click.IntRange(0, 2**32 - 1)  # what NumPy's and TensorFlow's generators take
FRACTION = Finite(0, 1, max_open=True)  # dropout, label smoothing
RATE = Finite(0, min_open=True)  # learning rates, clipping norms, decay factors


def stacked(*options):
    """One decorator applying ``options`` in the order listed (as if written one per line)."""

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def optimizer(clip: float):
    """--lr (the peak learning rate) and --clip (the gradients' global norm) of a family."""
    return stacked(
        click.option(
            "--lr",
            "learning_rate",
            default=2e-3,
            show_default=True,
            type=RATE,
            help="Peak learning rate.",
        ),
        click.option(
            "--clip",
            "clipnorm",
            default=clip,
            show_default=True,
            type=RATE,
            help="Gradients' global norm clip.",
        ),
    )


# What the text families' training shares: the vocabulary and the backbone's sizes.
text_model = stacked(
    click.option(
        "--min-count",
        default=1,
        show_default=True,
        type=POSITIVE,
        help="Vocabulary frequency cut-off.",
    ),
    click.option(
        "--max-vocab",
        type=click.IntRange(5),
        help="Vocabulary size limit (the four specials included).",
    ),
    click.option("--units", default=256, show_default=True, type=POSITIVE),
    click.option("--embedding-dim", default=256, show_default=True, type=POSITIVE),
    click.option(
        "--dropout", default=0.0, show_default=True, type=FRACTION, help="Between layers."
    ),
    click.option(
        "--tie-weights",
        is_flag=True,
        help="Share the (target) embedding and softmax weights (needs units == embedding dim).",
    ),
)


def check_text_model(options: dict) -> None:
    """Reject :data:`text_model` options that cannot go together."""
    if options["tie_weights"] and options["units"] != options["embedding_dim"]:
        raise click.BadParameter(
            "needs --units equal to --embedding-dim", param_hint="--tie-weights"
        )


# The options of every `train` command, handed to the library as one TrainingRun.
TRAINING_RUN = [
    click.option(
        "-o", "--output", type=PATH, required=True, help="Folder for checkpoints, log and model."
    ),
    click.option("--epochs", default=10, show_default=True, type=click.IntRange(1)),
    click.option("--resume", is_flag=True, help="Continue from OUTPUT/checkpoint.keras."),
    click.option(
        "--max-minutes",
        type=Finite(0, min_open=True),
        help="Time budget for the whole run (resumed parts too); the learning-rate schedule "
        "ends within it.",
    ),
    click.option(
        "--strategy",
        default="default",
        type=click.Choice(["default", "mirrored", "multiworker"]),
        show_default=True,
        help="mirrored: all GPUs of this host; multiworker: the cluster of TF_CONFIG or Slurm.",
    ),
    click.option(
        "--mixed-precision", is_flag=True, help="float16 compute, float32 outputs (GPUs)."
    ),
    click.option(
        "--xla/--no-xla",
        default=None,  # Keras's choice (XLA on GPUs), and the language models' on CPUs too
        help="Compile the training step with XLA, on CPU too, or not (default: on GPUs, and "
        "for language models on CPUs too; faster on some CPUs, slower on others; not for "
        "basecallers under TensorFlow).",
    ),
    click.option("--seed", default=1, show_default=True, type=SEED),
]
RUN_KEYS = (
    "output",
    "epochs",
    "resume",
    "max_minutes",
    "strategy",
    "mixed_precision",
    "xla",
    "seed",
)


def training_run(command):
    """Give ``command`` the training-run options, passed on as ``run`` (a
    :class:`nanoseq.training.TrainingRun`)."""

    @functools.wraps(command)
    def wrapper(**options):
        from nanoseq.runtime import import_keras

        import_keras()  # first, quietly: TensorFlow's start-up lines stay off stderr
        from nanoseq.training import TrainingRun

        run = TrainingRun(**{key: options.pop(key) for key in RUN_KEYS})
        return command(run=run, **options)

    return stacked(*TRAINING_RUN)(wrapper)
