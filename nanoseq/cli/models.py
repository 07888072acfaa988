"""``nanoseq models``: the bundled models."""

from __future__ import annotations

import click


@click.command()
def models():
    """List the bundled models: family, the chemistry and sample rate a basecaller was made
    for, whether ``--model auto`` picks it for that chemistry, and its model card (a TSV)."""
    from nanoseq.models import auto_basecallers, bundled, family_of, saved_config

    picked = set(auto_basecallers().values())
    click.echo("name\tfamily\tchemistry\tsample_rate\tauto\tcard")
    for name, path in bundled().items():
        metadata = saved_config(name).get("metadata") or {}
        chemistry, rate = metadata.get("chemistry", ""), metadata.get("sample_rate", "")
        auto = "yes" if name in picked else ""
        card = path.with_suffix(".md")
        click.echo(
            f"{name}\t{family_of(path)}\t{chemistry}\t{rate and f'{rate:g}'}\t{auto}\t{card}"
        )
