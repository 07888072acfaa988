"""``nanoseq simulate``: reads from a k-mer pore model, as pod5 or blow5 plus truth FASTA."""

from __future__ import annotations

import click


@click.command()
@click.option("-r", "--reference", required=True, type=click.Path(), help="FASTA to sample from.")
@click.option("-o", "--output", required=True, help="reads.pod5 or reads.blow5.")
@click.option("--truth", help="Truth FASTA (default: OUTPUT with .truth.fasta).")
@click.option("-n", "--reads", "count", default=100, show_default=True)
@click.option("--length", default=2000, show_default=True, help="Mean fragment length (bases).")
@click.option("--pore-model", type=click.Path(), help="k-mer model table (default: bundled R9.4).")
@click.option("--region", help="Only sample reference positions START-END.")
@click.option("--seed", default=1, show_default=True)
def simulate(reference, output, truth, count, length, pore_model, region, seed):
    """Simulate nanopore reads with known truth (for pre-training and tests)."""
    from pathlib import Path

    from nanoseq.io import read_fasta
    from nanoseq.signal.labels import parse_region
    from nanoseq.signal.simulate import (
        DEFAULT_PORE_MODEL,
        load_pore_model,
        simulate_reads,
        write_reads,
    )

    pore = load_pore_model(pore_model or DEFAULT_PORE_MODEL)
    reads = simulate_reads(read_fasta(reference), pore, count, length, seed, parse_region(region))
    truth = truth or str(Path(output).with_suffix(".truth.fasta"))
    written = write_reads(reads, output, truth)
    click.echo(f"{written} reads -> {output}, truth -> {truth}", err=True)
