"""``nanoseq simulate``: reads from a k-mer pore model or pieced together from real events, as pod5
or blow5 plus truth FASTA, or straight into training chunks."""

from __future__ import annotations

import click

from nanoseq.cli.options import PATH, POSITIVE, SEED, Finite


@click.command()
@click.option("-r", "--reference", type=click.Path(), help="FASTA to sample from.")
@click.option(
    "--random-genome",
    type=POSITIVE,
    help="Sample from a random genome of this many bases instead of a FASTA.",
)
@click.option(
    "-o",
    "--output",
    type=PATH,
    required=True,
    help="reads.pod5 or reads.blow5; with --chunks, a folder for training chunks.",
)
@click.option("--truth", help="Truth FASTA (default: OUTPUT.truth.fasta).")
@click.option(
    "--chunks",
    is_flag=True,
    help="Write chunks.npy, references.npy, reference_lengths.npy (as `prepare` does) "
    "instead of reads.",
)
@click.option(
    "--chunk-size", default=3600, show_default=True, type=POSITIVE, help="Samples per chunk."
)
@click.option("-n", "--reads", "count", default=100, show_default=True, type=POSITIVE)
@click.option(
    "--length",
    default=2000,
    show_default=True,
    type=click.IntRange(20),
    help="Mean fragment length (bases).",
)
@click.option(
    "--pore-model",
    type=click.Path(),
    help="k-mer table: ONT's text table, or uncalled4's .npz (R10.4.1) [default: bundled R9.4].",
)
@click.option(
    "--sample-rate",
    default=4000.0,
    show_default=True,
    type=Finite(1000, 20000),
    help="Samples per second (a pore model's dwells scale with it).",
)
@click.option(
    "--events",
    "event_paths",
    multiple=True,
    type=click.Path(),
    help="Tombo-resquiggled fast5 (files or folders): piece the signal together from their "
    "real events instead of the pore model.",
)
@click.option(
    "--events-region",
    help="Only events whose k-mer lies in these reference positions START-END "
    "(keep held-out signal out).",
)
@click.option("--region", help="Only sample reference positions START-END.")
@click.option("--seed", default=1, show_default=True, type=SEED)
def simulate(
    reference,
    random_genome,
    output,
    truth,
    chunks,
    chunk_size,
    count,
    length,
    pore_model,
    sample_rate,
    event_paths,
    events_region,
    region,
    seed,
):
    """Simulate nanopore reads with known truth (for pre-training and tests)."""
    import os

    from nanoseq.errors import InputError
    from nanoseq.io import read_fasta
    from nanoseq.signal import simulate as sim
    from nanoseq.signal.labels import Region, make_chunks, parse_region, tombo_reads

    if (reference is None) == (random_genome is None):
        raise InputError("give one of --reference FASTA and --random-genome BASES")
    genome = read_fasta(reference) if reference else sim.random_genome(random_genome, seed)
    if event_paths:
        keep = Region(keep=parse_region(events_region))
        try:
            source = sim.EventLibrary.from_reads(tombo_reads(event_paths), keep)
        except InputError as error:  # name what was given
            raise InputError(error.problem, error.path or " ".join(event_paths)) from None
    else:
        source = sim.load_pore_model(pore_model or sim.DEFAULT_PORE_MODEL)
    reads = sim.simulate_reads(
        genome, source, count, length, seed, parse_region(region), sample_rate
    )
    if chunks:
        chunk_set = make_chunks((sim.labelled(read) for read in reads), chunk_size)
        chunk_set.source["genome"] = reference or f"random ({random_genome} bases, seed {seed})"
        chunk_set.save(output)
        click.echo(f"{len(chunk_set)} chunks of {chunk_size} samples -> {output}", err=True)
        return
    truth = truth or f"{output}.truth.fasta"  # sim.pod5.truth.fasta: one per output
    if os.path.realpath(truth) == os.path.realpath(output):
        raise InputError("the truth FASTA would overwrite the reads", truth)
    written = sim.write_reads(reads, output, truth)
    click.echo(f"{written} reads -> {output}, truth -> {truth}", err=True)
