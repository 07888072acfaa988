"""``nanoseq basecall``: signal files -> FASTQ/SAM/BAM, a sequencing summary and run metrics."""

from __future__ import annotations

import click

from nanoseq.cli.options import PATH, POSITIVE, Finite
from nanoseq.models import DEFAULT_BEAM_WIDTH


@click.command()
@click.argument("reads", nargs=-1, required=True, type=click.Path())
@click.option(
    "-m",
    "--model",
    default="auto",
    show_default=True,
    help="auto: per read, the bundled model for its chemistry; or a bundled name or .keras file.",
)
@click.option(
    "--any-chemistry",
    is_flag=True,
    help="Call reads with --model even where it was made for another chemistry.",
)
@click.option(
    "-o",
    "--output",
    type=PATH,
    default="-",
    help="calls.fastq|.fq|.fastq.gz|.sam|.bam [default: stdout, BAM unless --emit-*].",
)
@click.option(
    "--emit-fastq", "emit", flag_value="fastq", help="FASTQ on stdout (or check -o is FASTQ)."
)
@click.option("--emit-sam", "emit", flag_value="sam", help="SAM on stdout.")
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="cpu, cuda:N (that GPU alone) or auto (every GPU there is, else the CPU).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    help="Windows per model call (default: 320, about 1.9 GB at the bundled model's windows;"
    " about 2.7 MB more a window).",
)
@click.option(
    "--chunk-size",
    type=POSITIVE,
    help="Window length in samples, a multiple of the model's input stride (the bundled "
    "model's: 6) [default: the model's].",
)
@click.option(
    "--overlap",
    type=click.IntRange(0),
    help="Samples shared by neighbouring windows, a multiple of the input stride.",
)
@click.option(
    "--beam-width",
    default=DEFAULT_BEAM_WIDTH,
    show_default=True,
    type=click.IntRange(1),
    help="Beam search width; 1 = greedy (a CRF model, as the bundled one: its best path).",
)
@click.option(
    "--threads",
    type=POSITIVE,
    help="CPU threads for the model (default: all; under JAX, the CPUs the whole run keeps to).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Reader and decoder threads feeding the model (more keeps a GPU busy).",
)
@click.option("--max-reads", type=POSITIVE, help="Stop after this many reads.")
@click.option(
    "--read-ids",
    type=click.Path(exists=True, dir_okay=False),
    help="File of read ids (one per line) to basecall.",
)
@click.option(
    "--min-qscore",
    default=0.0,
    show_default=True,
    type=Finite(0),
    help="Leave out reads whose mean qscore is below this.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Keep the reads already in OUTPUT (or its .partial) and call the rest.",
)
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False),
    help="FASTA to align calls to: adds alignment_* summary columns and metrics.",
)
@click.option("--no-trim", is_flag=True, help="Keep the open-pore/adapter start of reads.")
def basecall(
    reads,
    model,
    any_chemistry,
    output,
    emit,
    device,
    batch_size,
    chunk_size,
    overlap,
    beam_width,
    threads,
    workers,
    max_reads,
    read_ids,
    min_qscore,
    resume,
    reference,
    no_trim,
):
    """Basecall nanopore reads (files or folders of pod5, fast5, slow5, blow5)."""
    from nanoseq.runtime import prefer_jax, use_device

    use_device(device)  # before TensorFlow or JAX starts
    prefer_jax()
    from nanoseq.basecaller.job import basecall_files

    basecall_files(
        reads,
        model=model,
        output=output,
        emit=emit,
        batch_size=batch_size,
        chunk_size=chunk_size,
        overlap=overlap,
        beam_width=beam_width,
        threads=threads,
        max_reads=max_reads,
        read_ids=read_ids,
        min_qscore=min_qscore,
        resume=resume,
        reference=reference,
        trim=not no_trim,
        workers=workers,
        any_chemistry=any_chemistry,
    )
