"""ONT's models imported (`nanoseq import`): each fixture (random weights in ONT's layouts, with
its move scores as bonito's own PyTorch modules computed them; see tests/data/ont/make.py)
matches, saves and loads, basecalls end to end and fine-tunes."""

import csv
import pickle
import zipfile
from pathlib import Path

import keras
import numpy as np
import pysam
import pytest

from nanoseq.basecaller.blitz import import_blitz_network
from nanoseq.basecaller.ont.importer import import_ont_model
from nanoseq.basecaller.ont.torchfiles import read_tensor
from nanoseq.errors import InputError

from . import invoke
from .test_inspect import one_line_error

ONT = Path(__file__).resolve().parents[1] / "data" / "ont"
FAST = ONT / "dna_r9.4.1_e8_fast@v3.4"
FIXTURES = sorted(p.name for p in ONT.iterdir() if p.is_dir())


def move_scores(model, x):
    moves = keras.ops.convert_to_numpy(model.head.moves(model(x[:, :, None])))
    return moves.reshape(*moves.shape[:2], -1)


@pytest.mark.parametrize("name", FIXTURES)
def test_each_fixture_imports_and_matches_bonito(name, tmp_path):
    """An old-style R9.4.1 fast model, a v4.2 hac (clamps, split head, CRF clamped), a v4.3
    hac (bonito's layout, batch norm folded here) and a v5 transformer (upsampled x2)."""
    reference = np.load(ONT / name / "reference.npz")
    model = import_ont_model(ONT / name)
    assert len(FIXTURES) == 4
    np.testing.assert_allclose(move_scores(model, reference["x"]), reference["scores"], atol=1e-5)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(move_scores(loaded, reference["x"]), reference["scores"], atol=1e-5)
    assert loaded.metadata == model.metadata and loaded.head.get_config() == model.head.get_config()


def test_the_metadata_say_how_dorado_prepares_reads():
    fast = import_ont_model(FAST)
    assert fast.metadata["chemistry"] == "dna_r9.4.1_e8" and fast.settings.sample_rate == 4000
    assert fast.settings.normalisation.method == "med_mad"  # dorado's rule for R9.4.1 names
    assert (fast.metadata["chunk_size"], fast.metadata["overlap"]) == (4000, 500)
    assert (fast.head.state_len, fast.head.scale, fast.head.tanh, fast.head.clamp) == (
        3,
        5,
        True,
        None,
    )
    # [qscore] scale 0.94, bias -0.2, on each base: Q20 -> 18.6 -> 19
    assert fast.head.qscore_table[20] == 19
    hac = import_ont_model(ONT / "dna_r10.4.1_e8.2_400bps_hac@v4.3.0")
    assert (
        hac.metadata["chemistry"] == "dna_r10.4.1_e8.2_400bps" and hac.settings.sample_rate == 5000
    )
    assert hac.settings.normalisation.to_dict() == {"method": "pa", "mean": 93.69, "sd": 23.51}
    assert (hac.metadata["chunk_size"], hac.metadata["overlap"]) == (9996, 498)  # whole steps of 6
    assert (hac.head.state_len, hac.head.scale, hac.head.tanh, hac.head.clamp) == (5, 1, False, 5)
    v5 = import_ont_model(ONT / "dna_r10.4.1_e8.2_400bps_sup@v5.0.0")
    assert v5.upsample == 2 and v5.stride == 6 and v5.input_stride == 12
    assert v5.metadata["batch_size"] == 16 and "batch_size" not in hac.metadata
    assert v5.metadata["imported_from"] == "dorado" and hac.metadata["imported_from"] == "bonito"


def test_an_imported_model_basecalls_end_to_end(sample_dir, tmp_path):
    """FASTQ-less BAM with moves on the read's own samples and qualities from the model's
    qscore calibration; the summary and metrics beside it."""
    model = tmp_path / "fast.keras"
    result = invoke("import", FAST, "-o", model)
    assert result.exit_code == 0 and model.exists()
    calls = tmp_path / "calls.bam"
    result = invoke("basecall", sample_dir / "reads/lambda.pod5", "-m", model, "-o", calls)
    assert result.exit_code == 0, result.output
    table = np.asarray(import_ont_model(FAST).head.qscore_table)
    with pysam.AlignmentFile(str(calls), check_sq=False) as bam:
        reads = list(bam.fetch(until_eof=True))
    assert len(reads) == 6
    for read in reads:
        moves = read.get_tag("mv")
        assert moves[0] == 5 and sum(moves[1:]) == len(read.query_sequence) > 0
        assert set(read.query_qualities) <= set(table)  # every quality went through the table
    with open(tmp_path / "calls.bam.summary.tsv") as summary:
        assert len(list(csv.DictReader(summary, delimiter="\t"))) == 6


def test_an_imported_model_fine_tunes(sample_dir, tmp_path):
    """`train basecaller --init imported.keras` trains its CRF (state length, scale, blank as
    ONT's) on a user's chunks: the weights move and the result still loads and calls."""
    model, chunks, out = tmp_path / "fast.keras", tmp_path / "chunks", tmp_path / "run"
    assert invoke("import", FAST, "-o", model).exit_code == 0
    tombo = sample_dir / "labelled/tombo_lambda.fast5"
    assert invoke("prepare", tombo, "-o", chunks, "--keep", "0-38000").exit_code == 0
    args = ["--init", model, "--epochs", 1, "--batch-size", 4, "--lr", 1e-3]
    result = invoke("train", "basecaller", chunks, "--valid", chunks, "-o", out, *args)
    assert result.exit_code == 0, result.output
    with open(out / "training.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert np.isfinite(float(rows[0]["loss"]))
    before = keras.saving.load_model(model)
    after = keras.saving.load_model(out / "model.keras")
    assert type(after.backbone).__name__ == "SerialBackbone" and after.head.state_len == 3
    assert not np.allclose(
        before.get_layer("head").get_weights()[0], after.get_layer("head").get_weights()[0]
    )


def test_a_deepnano_blitz_network_imports_and_basecalls(sample_dir, tmp_path):
    """A network file (random arrays of width 8) becomes a .keras model that loads back with the
    same outputs and calls the sample reads end to end; a broken file is one line."""
    from ..basecaller.test_blitz import random_network, write_network

    write_network(tmp_path / "rnn8.txt", random_network(8))
    model = tmp_path / "blitz.keras"
    result = invoke("import", tmp_path / "rnn8.txt", "-o", model)
    assert result.exit_code == 0 and "CTC" in result.output
    args = ["import", tmp_path / "rnn8.txt", "-o", tmp_path / "x.keras", "--chemistry", "rna004"]
    result = invoke(*args)  # a network file says its own chemistry: the option is refused
    assert result.exit_code == 2 and "are for model folders" in result.output
    loaded = keras.saving.load_model(model)
    x = np.random.default_rng(0).normal(size=(2, 600, 1)).astype(np.float32)
    expected = import_blitz_network(tmp_path / "rnn8.txt").predict(x, verbose=0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
    calls = tmp_path / "calls.fastq"
    result = invoke("basecall", sample_dir / "reads/lambda.pod5", "-m", model, "-o", calls)
    assert result.exit_code == 0, result.output
    with pysam.FastxFile(str(calls)) as records:
        assert len(list(records)) == 6
    (tmp_path / "rnn9.txt").write_text("3 3\n1 2\n")
    error = one_line_error("import", tmp_path / "rnn9.txt", "-o", tmp_path / "m.keras")
    assert "rnn9.txt: not a deepnano-blitz network" in error
    assert not (tmp_path / "m.keras").exists()


def test_a_broken_folder_is_one_line(tmp_path):
    error = one_line_error("import", tmp_path, "-o", tmp_path / "m.keras")
    assert str(tmp_path) in error and "no config.toml" in error
    folder = tmp_path / "dna_r9.4.1_e8_fast@v3.4"
    folder.mkdir()
    for path in FAST.iterdir():
        if path.name != "4.rnn.weight_hh_l0.tensor":
            (folder / path.name).write_bytes(path.read_bytes())
    error = one_line_error("import", folder, "-o", tmp_path / "m.keras")
    assert "no weight 4.rnn.weight_hh_l0" in error and not (tmp_path / "m.keras").exists()
    (folder / "4.rnn.weight_hh_l0.tensor").write_bytes(b"not a zip")
    error = one_line_error("import", folder, "-o", tmp_path / "m.keras")
    assert "4.rnn.weight_hh_l0.tensor: not a PyTorch zip file" in error


def test_a_weights_file_cannot_run_code(tmp_path):
    """The unpickler builds arrays and dicts only: a pickle naming any other callable (here
    os.system) is refused, not called."""

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("touch " + str(tmp_path / "ran"),))

    path = tmp_path / "evil.tensor"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps(Evil(), protocol=2))
    with pytest.raises(InputError, match="not a weights file nanoseq can read"):
        read_tensor(path)
    assert not (tmp_path / "ran").exists()
    assert read_tensor(FAST / "0.conv.weight.tensor").shape == (4, 1, 5)  # (out, in, width)
