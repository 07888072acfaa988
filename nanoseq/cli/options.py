"""Options shared by several commands."""

import click

strategy = click.option(
    "--strategy",
    default="default",
    type=click.Choice(["default", "mirrored", "multiworker"]),
    show_default=True,
    help="mirrored: all GPUs of this host; multiworker: the cluster of TF_CONFIG or Slurm.",
)
