"""The ``nanoseq`` command line: a click group whose commands load only when called.

Each command module parses options and calls the library. TensorFlow is imported inside the
commands that need it, so ``nanoseq --help`` answers at once.
"""

from __future__ import annotations

import importlib
import logging
import shlex
import sys

import click

from nanoseq import __version__
from nanoseq.errors import InputError

COMMANDS = {
    "basecall": "nanoseq.cli.basecall:basecall",
    "evaluate": "nanoseq.cli.evaluate:evaluate",
    "inspect": "nanoseq.cli.inspect:inspect",
    "lm": "nanoseq.cli.lm:lm",
    "seq2seq": "nanoseq.cli.seq2seq:seq2seq",
    "models": "nanoseq.cli.models:models",
    "prepare": "nanoseq.cli.prepare:prepare",
    "simulate": "nanoseq.cli.simulate:simulate",
    "train": "nanoseq.cli.train:train",
}

log = logging.getLogger("nanoseq")


class LazyGroup(click.Group):
    """Imports a command's module only when it is listed or run; turns InputError into one line."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as error:
            click.echo(f"nanoseq: error: {error}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("nanoseq: interrupted", err=True)
            sys.exit(130)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nanoseq")
@click.option("-v", "--verbose", count=True, help="More log detail on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
def main(verbose: int, quiet: bool) -> None:
    """nanoseq: deep sequence models for nanopore signal and text."""
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="[nanoseq] %(message)s", stream=sys.stderr)
    if verbose:
        log.debug("command: %s", shlex.join(sys.argv))
