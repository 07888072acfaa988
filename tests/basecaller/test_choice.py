"""The model follows the reads: the bundled model for each read's chemistry, a named model
refused for reads of another chemistry, unknown chemistry warned, RNA refused; reads at another
sample rate resampled, their moves put back on their own samples."""

import numpy as np
import pytest

from nanoseq.basecaller.choice import ModelChoice
from nanoseq.basecaller.model import Basecaller
from nanoseq.errors import InputError
from nanoseq.models import DEFAULT_BASECALLER, bundled, saved_config
from nanoseq.signal.chemistry import R941, R1041, UNKNOWN
from nanoseq.signal.readers import Read, read_signal
from nanoseq.signal.resample import moves_on_read, resample


def read_of(metadata, rate=4000.0, name="reads.pod5"):
    signal = np.full(4000, 600, np.int16)
    return Read("r", signal, 0.0, 140.0, 1024.0, rate, filename=name, metadata=metadata)


R9_READ = {"flow_cell_product_code": "FLO-MIN106", "sequencing_kit": "sqk-lsk109"}
R10_READ = {"flow_cell_product_code": "FLO-PRO114M", "sequencing_kit": "sqk-lsk114"}


def test_each_read_goes_to_the_bundled_model_of_its_chemistry(caplog):
    chemistries = {
        name: saved_config(name)["metadata"]["chemistry"] for name in bundled("basecaller")
    }
    assert chemistries["dna_r941_lambda"] == chemistries[DEFAULT_BASECALLER] == R941
    choice = ModelChoice()
    assert choice.by_chemistry[R941] == DEFAULT_BASECALLER  # of the R9.4.1 models, the default
    assert set(choice.by_chemistry.items()) <= {(c, n) for n, c in chemistries.items()}
    for chemistry, name in choice.by_chemistry.items():
        read = read_of(R9_READ if chemistry == R941 else R10_READ)
        assert read.chemistry == chemistry
        assert choice.choose(read) is choice.loaded[name]  # loaded once, reused
    if R1041 not in chemistries.values():
        with pytest.raises(InputError, match=f"reads.pod5: no bundled model for {R1041} reads"):
            choice.choose(read_of(R10_READ))
    unknown = read_of({}, name="old.fast5")
    assert unknown.chemistry == UNKNOWN
    assert choice.choose(unknown).metadata["chemistry"] == R941  # the default
    assert "old.fast5: the file does not say its chemistry" in caplog.text


def test_a_named_model_refuses_reads_of_another_chemistry():
    r10 = read_of(R10_READ, name="run.pod5")
    with pytest.raises(InputError) as error:
        ModelChoice("dna_r941_lambda").choose(r10)
    assert str(error.value) == (
        f"run.pod5: reads of {R1041}, but the model was made for {R941} "
        "(--any-chemistry calls them anyway)"
    )
    model = ModelChoice("dna_r941_lambda", any_chemistry=True).choose(r10)
    assert isinstance(model, Basecaller)
    with pytest.raises(InputError, match="RNA reads \\(rna004\\) are not supported"):
        ModelChoice().choose(read_of({"sequencing_kit": "SQK-RNA004"}))


def test_the_cli_says_which_chemistry_it_cannot_call(shared_nanopore):
    from click.testing import CliRunner

    from nanoseq.cli import main

    r10 = shared_nanopore / "formats/r1041_5khz.pod5"
    args = ["basecall", str(r10), "-m", "dna_r941_lambda", "--max-reads", "1"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == (
        f"nanoseq: error: r1041_5khz.pod5: reads of {R1041}, but the model was made for {R941} "
        "(--any-chemistry calls them anyway)"
    )


def test_models_lists_chemistry_and_sample_rate():
    from click.testing import CliRunner

    from nanoseq.cli import main

    lines = CliRunner().invoke(main, ["models"]).stdout.splitlines()
    assert lines[0].split("\t") == ["name", "family", "chemistry", "sample_rate", "auto", "card"]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert rows["dna_r941_lambda"][1:5] == ["basecaller", R941, "4000", ""]
    assert rows[DEFAULT_BASECALLER][1:5] == ["basecaller", R941, "4000", "yes"]
    assert rows["dna_r1041_e82_400bps"][1:5] == ["basecaller", R1041, "4000", "yes"]
    assert rows["char_tinyshakespeare"][1:5] == ["language model", "", "", ""]


def test_moves_go_back_on_the_reads_own_samples():
    moves = np.zeros(100, np.uint8)
    moves[[0, 1, 2, 50, 99]] = 1  # frames of 3 samples at 4 kHz
    # at 5 kHz a frame spans 3.75 of the read's samples: frames of 3, none shared
    placed, stride = moves_on_read(moves, 3, 5000.0, 4000.0, 375)
    assert stride == 3 and len(placed) == 125 and placed.sum() == 5
    assert np.flatnonzero(placed).tolist() == [0, 1, 2, 62, 123]
    assert moves_on_read(moves, 3, 4000.0, 4000.0, 300)[0] is moves
    signal = np.sin(np.arange(5000) / 50).astype(np.float32)
    down = resample(signal, 5000.0, 4000.0)
    assert len(down) == 4000 and down.dtype == np.float32
    np.testing.assert_allclose(
        down[100:-100], np.sin(np.arange(4000) * 1.25 / 50)[100:-100], atol=0.01
    )


@pytest.mark.slow
def test_the_same_sequence_at_4_and_5_khz_calls_alike(sample_dir):
    """31 lambda fragments simulated at 4 and at 5 kHz (the same noise density), called through
    the 4 kHz model: the 5 kHz reads, resampled, reach the same identity."""
    from nanoseq.basecaller.pipeline import basecall
    from nanoseq.io import read_fasta
    from nanoseq.metrics import Aligner
    from nanoseq.signal.simulate import as_read, load_pore_model

    lam = read_fasta(sample_dir / "reads/lambda.fasta")["Lambda_NEB"]
    pore, aligner = load_pore_model(), Aligner(sample_dir / "reads/lambda.fasta")
    model = Basecaller.from_preset("dna_r941_lambda")
    fragments = [lam[s : s + 1500] for s in range(500, 47000, 1500)]
    identity = {}
    for rate in (4000.0, 5000.0):
        rng = np.random.default_rng(3)
        reads = [as_read(pore.simulate(f, rng, rate), i, 0) for i, f in enumerate(fragments)]
        calls = list(basecall(reads, model, 1, batch_size=64))
        for read, call in calls:
            assert call.moves.sum() == len(call.sequence)
            assert len(call.moves) == -(-(read.num_samples - call.trimmed_samples) // call.stride)
        identity[rate] = np.median([aligner.align(c.sequence)["identity"] for _, c in calls])
    assert identity[4000.0] > 0.8 and abs(identity[5000.0] - identity[4000.0]) < 0.01


def test_real_reads_at_other_rates_are_called(sample_dir):
    (read,) = read_signal([sample_dir / "formats/single_read_multi_layout.fast5"])  # 6,024 Hz
    from nanoseq.basecaller.pipeline import basecall

    ((_, call),) = basecall([read], "dna_r941_lambda", 1)
    assert call.stride == 4 and call.moves.sum() == len(call.sequence) > 1000


R10_MODEL = "dna_r1041_e82_400bps"


@pytest.mark.slow
def test_a_mixed_folder_goes_model_by_model(sample_dir, tmp_path):
    """R9.4.1 and R10.4.1 reads in one folder: each called by its chemistry's model, as that
    model alone calls them."""
    import shutil

    from nanoseq.basecaller.pipeline import basecall

    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("reads/lambda.pod5", "formats/r1041_4khz.blow5"):
        shutil.copy(sample_dir / name, folder)
    reads = list(read_signal([folder]))
    mixed = {read.read_id: (read.chemistry, call.sequence) for read, call in basecall(reads)}
    assert sorted(chemistry for chemistry, _ in mixed.values()) == [R1041] * 8 + [R941] * 6
    for model, chemistry in ((DEFAULT_BASECALLER, R941), (R10_MODEL, R1041)):
        alone = [r for r in reads if r.chemistry == chemistry]
        for read, call in basecall(alone, model):
            assert mixed[read.read_id][1] == call.sequence


def test_five_khz_r10_reads_pick_the_r10_model(shared_nanopore):
    choice = ModelChoice()
    read = next(iter(read_signal([shared_nanopore / "formats/r1041_5khz.pod5"])))
    assert read.sample_rate == 5000 and read.chemistry == R1041
    model = choice.choose(read)
    assert model.metadata["chemistry"] == R1041 and model.metadata["sample_rate"] == 4000
