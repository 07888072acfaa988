"""Options shared by several commands."""

import click

strategy = click.option(
    "--strategy",
    default="default",
    type=click.Choice(["default", "mirrored", "multiworker"]),
    show_default=True,
    help="mirrored: all GPUs of this host; multiworker: the cluster of TF_CONFIG or Slurm.",
)

xla = click.option(
    "--xla",
    "jit_compile",
    flag_value=True,
    default="auto",  # Keras's choice: XLA where it is known to pay (GPUs), not on CPUs
    type=click.UNPROCESSED,
    help="Compile the training step with XLA, on CPU too (faster on some CPUs, slower on others).",
)

max_minutes = click.option(
    "--max-minutes",
    type=float,
    help="Time budget for the whole run (resumed parts too); the learning-rate schedule "
    "ends within it.",
)
