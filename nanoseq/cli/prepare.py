"""``nanoseq prepare``: labelled reads -> bonito-style training chunks."""

from __future__ import annotations

import click

from nanoseq.cli.options import PATH, POSITIVE, Finite


@click.command()
@click.argument("reads", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--output",
    type=PATH,
    required=True,
    help="Folder for chunks.npy, references.npy, reference_lengths.npy.",
)
@click.option(
    "--bam",
    type=click.Path(),
    help="Labels from this BAM's move tables (mv/ts tags) "
    "instead of Tombo events in the fast5 files.",
)
@click.option(
    "--chunk-size", default=3600, show_default=True, type=POSITIVE, help="Samples per chunk."
)
@click.option("--step", type=POSITIVE, help="Samples between chunk starts (default: chunk size).")
@click.option("--keep", help="Reference window START-END every base of a chunk must lie in.")
@click.option("--drop", help="Reference window START-END no base of a chunk may lie in.")
@click.option(
    "--normalisation",
    default="med_mad",
    show_default=True,
    type=click.Choice(["med_mad", "quantile", "pa"]),
    help="Per read: median/MAD, bonito's quantiles, or a fixed pA level (--pa-mean, --pa-sd). "
    "Recorded with the chunks; a model trained on them normalises reads the same way.",
)
@click.option("--pa-mean", type=Finite(), help="With --normalisation pa: the level's mean (pA).")
@click.option(
    "--pa-sd", type=Finite(0, min_open=True), help="With --normalisation pa: its spread (pA)."
)
def prepare(reads, output, bam, chunk_size, step, keep, drop, normalisation, pa_mean, pa_sd):
    """Cut labelled reads into training chunks (Tombo-resquiggled fast5, or reads + BAM)."""
    from nanoseq.signal.labels import (
        Region,
        make_chunks,
        move_table_reads,
        parse_region,
        tombo_reads,
    )
    from nanoseq.signal.normalize import Normalisation

    method = Normalisation(normalisation, pa_mean, pa_sd)
    labelled = move_table_reads(reads, bam, method) if bam else tombo_reads(reads, method)
    region = Region(parse_region(keep), parse_region(drop))
    chunk_set = make_chunks(labelled, chunk_size, step, region)
    chunk_set.save(output)
    click.echo(
        f"{len(chunk_set)} chunks of {chunk_size} samples, "
        f"{int(chunk_set.reference_lengths.sum())} bases ({chunk_set.settings}) -> {output}",
        err=True,
    )
