"""Training chunks from Tombo events and from BAM move tables, with the reference split."""

import numpy as np
import pytest

from nanoseq.errors import InputError
from nanoseq.io import read_fasta
from nanoseq.signal.labels import (
    ChunkSet,
    Region,
    make_chunks,
    move_table_reads,
    parse_region,
    tombo_reads,
)
from nanoseq.signal.normalize import Normalisation
from nanoseq.signal.settings import SignalSettings

DECODE = np.array(list("NACGT"))


def test_tombo_labels_match_the_reference(sample_dir):
    (read,) = tombo_reads([sample_dir / "labelled/tombo_lambda.fast5"])
    lam = read_fasta(sample_dir / "reads/lambda.fasta")["Lambda_NEB"]
    # + strand read: base i sits at reference position positions[i] (Tombo bases = reference)
    bases = "".join(DECODE[read.bases])
    assert read.positions[0] == 36891
    assert bases[:500] == lam[36891 : 36891 + 500]
    assert np.all(np.diff(read.starts) > 0)
    assert abs(np.median(read.signal)) < 0.1  # normalised
    assert read.settings == SignalSettings("dna_r9.4.1_e8", 4000.0, Normalisation("med_mad"))


def test_region_split(sample_dir):
    path = [sample_dir / "labelled/tombo_lambda.fast5"]
    every = make_chunks(tombo_reads(path), size=3600)
    kept = make_chunks(tombo_reads(path), size=3600, region=Region(keep=(0, 38_000)))
    dropped = make_chunks(tombo_reads(path), size=3600, region=Region(drop=(38_000, 48_502)))
    heldout = make_chunks(tombo_reads(path), size=3600, region=Region(keep=(38_000, 48_502)))
    # the read covers 36,891..48,499: ~1,100 bases before the split, the rest after it
    assert 0 < len(kept.chunks) < len(heldout.chunks) < len(every.chunks)
    assert len(kept.chunks) == len(dropped.chunks)
    assert len(kept.chunks) + len(heldout.chunks) <= len(every.chunks)
    lengths = kept.reference_lengths
    assert kept.chunks.shape == (len(lengths), 3600) and kept.chunks.dtype == np.float32
    assert kept.references.shape[1] == lengths.max()
    assert set(np.unique(kept.references)) <= {0, 1, 2, 3, 4}
    assert all(
        (row[:n] > 0).all() and (row[n:] == 0).all()
        for row, n in zip(kept.references, lengths, strict=True)
    )
    assert 250 < lengths.mean() < 600  # ~9 samples per base at 4 kHz


def test_save_load_round_trip_with_settings(sample_dir, tmp_path, caplog):
    reads = tombo_reads([sample_dir / "labelled/tombo_lambda.fast5"], Normalisation("quantile"))
    chunk_set = make_chunks(reads, size=3600, step=1800, region=Region(keep=(0, 48_000)))
    chunk_set.save(tmp_path)
    loaded = ChunkSet.load(tmp_path)
    for name in ChunkSet.ARRAYS:
        np.testing.assert_array_equal(getattr(chunk_set, name), getattr(loaded, name))
    assert loaded.settings == SignalSettings("dna_r9.4.1_e8", 4000, Normalisation("quantile"))
    assert loaded.chunk_size == 3600
    assert loaded.source["files"] == ["tombo_lambda.fast5"] and loaded.source["step"] == 1800
    assert loaded.source["keep"] == [0, 48_000] and loaded.source["folder"] == str(tmp_path)
    (tmp_path / "settings.json").unlink()  # another tool's chunks: bonito's three arrays
    assert ChunkSet.load(tmp_path).settings == SignalSettings()
    assert "no settings.json" in caplog.text
    (tmp_path / "references.npy").unlink()
    with pytest.raises(InputError, match="missing references.npy"):
        ChunkSet.load(tmp_path)


def test_move_table_labels(shared_nanopore):
    folder = shared_nanopore / "r1041_human"
    reads = list(move_table_reads([folder / "can_reads.pod5"], folder / "can_mappings.bam"))
    assert len(reads) == 14
    truth = read_fasta(folder / "can_reads.truth.fasta")
    import edlib

    for read in reads:
        called = "".join(DECODE[read.bases])
        assert np.all(np.diff(read.starts) > 0) and read.starts[-1] < len(read.signal)
        # the Guppy calls placed by the move table are close to the truth under each read
        ref = truth[read.read_id]
        result = edlib.align(called, ref, mode="HW", task="distance")
        assert result["editDistance"] / len(called) < 0.25
    arrays = make_chunks(iter(reads), size=3600)
    assert len(arrays.chunks) > 50


def test_bad_region_and_empty_result(sample_dir):
    with pytest.raises(InputError, match="START-END"):
        parse_region("38000")
    with pytest.raises(InputError, match="below its end"):
        parse_region("5-1")
    with pytest.raises(InputError, match="no training chunks"):
        make_chunks(
            tombo_reads([sample_dir / "labelled/tombo_lambda.fast5"]),
            region=Region(keep=(0, 1000)),
        )


def test_join_chunks_pads_references_and_refuses_other_sizes_and_settings():
    def chunk_set(n, size, width, settings=None):
        references = np.arange(1, n * width + 1, dtype=np.uint8).reshape(n, width) % 4 + 1
        settings = settings or SignalSettings()
        return ChunkSet(np.ones((n, size), np.float32), references, np.full(n, width), settings)

    joined = ChunkSet.join([chunk_set(2, 100, 3), chunk_set(1, 100, 5)])
    assert joined.chunks.shape == (3, 100) and joined.references.shape == (3, 5)
    assert joined.references[:2, 3:].sum() == 0  # padding
    assert joined.reference_lengths.tolist() == [3, 3, 5]
    with pytest.raises(InputError, match="chunk_size 100 vs 120"):
        ChunkSet.join([chunk_set(1, 100, 3), chunk_set(1, 120, 3)])
    fast = SignalSettings(sample_rate=5000)
    with pytest.raises(InputError, match="prepared differently: sample_rate 4000.0 vs 5000.0"):
        ChunkSet.join([chunk_set(1, 100, 3), chunk_set(1, 100, 3, fast)])


def test_reads_of_other_settings_make_no_chunk_set(sample_dir):
    reads = [
        *tombo_reads([sample_dir / "labelled/tombo_lambda.fast5"]),
        *tombo_reads([sample_dir / "labelled/tombo_lambda.fast5"], Normalisation("quantile")),
    ]
    with pytest.raises(InputError, match="tombo_lambda.fast5: reads of different settings"):
        make_chunks(iter(reads), size=3600)
