"""The CLI's tests."""

from click.testing import CliRunner

from nanoseq.cli import main


def invoke(*args, **kwargs):
    """The CLI on ``args`` (any objects, passed as strings) in this process; exceptions are not
    caught, so a bug fails the test with its traceback."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)
