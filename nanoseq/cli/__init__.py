"""The ``nanoseq`` command line: a click group whose commands load only when called.

Each command module parses options and calls the library. TensorFlow is imported inside the
commands that need it, so ``nanoseq --help`` answers at once.
"""

from __future__ import annotations

import importlib
import logging
import os
import shlex
import signal
import sys
import threading

import click

from nanoseq import __version__
from nanoseq.errors import InputError, one_line
from nanoseq.runtime import persist_compilations, skip_optional_imports

COMMANDS = {
    "basecall": "nanoseq.cli.basecall:basecall",
    "evaluate": "nanoseq.cli.evaluate:evaluate",
    "import": "nanoseq.cli.import_model:import_folder",
    "inspect": "nanoseq.cli.inspect:inspect",
    "lm": "nanoseq.cli.lm:lm",
    "seq2seq": "nanoseq.cli.seq2seq:seq2seq",
    "models": "nanoseq.cli.models:models",
    "plot": "nanoseq.cli.plot:plot",
    "prepare": "nanoseq.cli.prepare:prepare",
    "simulate": "nanoseq.cli.simulate:simulate",
    "summary": "nanoseq.cli.summary:summary",
    "train": "nanoseq.cli.train:train",
}

log = logging.getLogger("nanoseq")


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Slurm and most schedulers send): the run ends as Ctrl-C ends it, its
    outputs left to ``--resume``."""


def _terminate(signum, frame):
    raise Terminated


class ClosedStdout:
    """Stands for a closed stdout (``>&-``): what a command writes there is an error, where
    Python would drop it silently."""

    def write(self, data):
        raise InputError("stdout is closed: nowhere to write (give -o)")

    @property
    def buffer(self):
        return self

    def flush(self):
        pass

    def isatty(self) -> bool:
        return False


class LazyGroup(click.Group):
    """Imports a command's module only when it is listed or run. Every failure is one line on
    stderr and a non-zero exit: bad input (InputError) and what the system refused (OSError:
    a full disk, a file that vanished) status 1, an interruption (Ctrl-C, SIGTERM) 130 or 143
    after the outputs were closed, anything else (a bug) 1 with its traceback at -vv."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def main(self, args=None, prog_name=None, **extra):
        """Click's main, with a usage error (a bad option value, a missing argument) as one
        line and exit status 2."""
        extra.pop("standalone_mode", None)
        args = verbosity_first(sys.argv[1:] if args is None else list(args))
        try:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as error:
            click.echo(error.ctx.get_help())
            sys.exit(0)
        except click.UsageError as error:
            path = error.ctx.command_path if error.ctx else "nanoseq"
            message = error.format_message().replace("\n", " ")
            click.echo(f"{path}: usage error: {message} (see {path} --help)", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(f"nanoseq: error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("nanoseq: aborted", err=True)
            sys.exit(1)

    def invoke(self, ctx):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminate)
        if sys.stdout is None:
            sys.stdout = ClosedStdout()
        persist_compilations()
        skip_optional_imports()
        try:
            return super().invoke(ctx)
        except InputError as error:
            fail(str(error))
        except BrokenPipeError:  # `nanoseq ... | head`: the reader has all it wants
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(128 + signal.SIGPIPE)
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            fail(f"{where}{error.strerror or one_line(error)}")
        except Terminated:
            click.echo("nanoseq: terminated (SIGTERM); --resume continues the run", err=True)
            sys.exit(128 + signal.SIGTERM)
        except KeyboardInterrupt:
            click.echo("nanoseq: interrupted; --resume continues the run", err=True)
            sys.exit(130)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:  # a bug: one line here, the traceback at -vv
            log.debug("unexpected error", exc_info=True)
            fail(f"unexpected {type(error).__name__}: {one_line(error)} (-vv shows where)")


VERBOSITY = {"-v", "-vv", "-vvv", "--verbose", "-q", "--quiet"}


def verbosity_first(args: list[str]) -> list[str]:
    """The arguments with -v/-q moved before the command, so that they may stand anywhere
    (``nanoseq basecall reads.pod5 -v``, as dorado takes them); ``--`` ends the search."""
    end = args.index("--") if "--" in args else len(args)
    moved = [a for a in args[:end] if a in VERBOSITY]
    return [*moved, *(a for a in args[:end] if a not in VERBOSITY), *args[end:]]


def fail(message: str) -> None:
    click.echo(f"nanoseq: error: {message}".replace("\n", "\\n"), err=True)
    sys.exit(1)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nanoseq")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More on stderr: -v nanoseq's details (a line per file), -vvv other libraries' too "
    "(TensorFlow, matplotlib). Anywhere on the command line.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
def main(verbose: int, quiet: bool) -> None:
    """nanoseq: deep sequence models for nanopore signal and text."""
    level = logging.ERROR if quiet else (logging.DEBUG if verbose else logging.INFO)
    # other libraries' records (matplotlib's debug, absl's) only at -vvv
    root = logging.DEBUG if verbose > 2 else logging.WARNING
    logging.basicConfig(level=root, format="[nanoseq] %(message)s", stream=sys.stderr)
    log.setLevel(level)
    if verbose:
        log.debug("command: %s", shlex.join(sys.argv))
