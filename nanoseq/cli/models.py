"""``nanoseq models``: the bundled models."""

from __future__ import annotations

import click


@click.command()
def models():
    """List the bundled models and where their model cards are."""
    from nanoseq.models import DEFAULT_BASECALLER, bundled

    for name, path in bundled().items():
        default = "  (default basecaller)" if name == DEFAULT_BASECALLER else ""
        click.echo(f"{name}\t{path.with_suffix('.md')}{default}")
