"""``nanoseq import``: a dorado or bonito model folder, or a deepnano-blitz network file, as a
nanoseq basecaller (``.keras``)."""

from __future__ import annotations

import click

from nanoseq.cli.options import PATH, POSITIVE


@click.command("import")
@click.argument("folder", type=click.Path())
@click.option("-o", "--output", type=PATH, required=True, help="The model to write (.keras).")
@click.option("--chemistry", help="The reads' chemistry, where the folder's name says none.")
@click.option("--sample-rate", type=POSITIVE, help="Hz, where the config says none.")
def import_folder(folder, output, chemistry, sample_rate):
    """Import FOLDER, a model that `dorado download` or `bonito download` wrote (config.toml and
    its weights; LSTM models (v3-v4) and transformers (v5)), or one of deepnano-blitz's R9.4.1
    network files (rnn48.txt ... rnn96.txt), as a Keras basecaller: `nanoseq basecall -m
    OUTPUT` calls with it, `train basecaller --init OUTPUT` fine-tunes it."""
    from pathlib import Path

    from nanoseq.errors import InputError
    from nanoseq.training import save

    if not output.endswith(".keras"):
        raise InputError(f"{output}: the model file must end in .keras")
    if Path(folder).is_file():
        from nanoseq.basecaller.blitz import import_blitz_network

        if chemistry or sample_rate:
            raise click.UsageError("--chemistry and --sample-rate are for model folders")
        model = import_blitz_network(folder)
    else:
        from nanoseq.basecaller.ont.importer import import_ont_model

        model = import_ont_model(folder, chemistry, sample_rate)
    kind = model.head.kind
    head = f"CRF state length {model.head.state_len}" if kind == "crf" else kind.upper()
    save(model, Path(output))
    metadata = model.metadata
    click.echo(
        f"imported {metadata['name']}: {metadata['chemistry']} at "
        f"{metadata['sample_rate']:g} Hz, {model.count_params():,} parameters, {head} -> {output}",
        err=True,
    )
