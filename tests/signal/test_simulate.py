"""Simulated reads: the pore-model source and reads pieced together from real Tombo events."""

import numpy as np
import pytest

from nanoseq.errors import InputError
from nanoseq.signal.labels import Region, make_chunks, tombo_reads
from nanoseq.signal.simulate import (
    PA_SCALE,
    PA_SHIFT,
    EventLibrary,
    kmer_indices,
    labelled,
    load_pore_model,
    random_genome,
    simulate_reads,
)


@pytest.fixture(scope="module")
def tombo_read(sample_dir):
    (read,) = tombo_reads([sample_dir / "labelled/tombo_lambda.fast5"])
    return read


def real_events(read, offset, region=None):
    """Every event of the read as (its 6-mer's index, the event's base at ``offset``; its
    samples), where the whole 6-mer is inside ``region``."""
    codes = read.bases.astype(np.int64) - 1
    region = region or Region()
    events = set()
    for j in range(offset, len(codes) - 6 + offset):
        window = slice(j - offset, j - offset + 6)
        if region.allows(read.positions[window]).all():
            kmer = int(kmer_indices(codes[window], 6)[0])
            events.add((kmer, read.signal[read.starts[j] : read.starts[j + 1]].tobytes()))
    return events


def library_events(library):
    events = set()
    for kmer in range(4**library.k):
        for e in range(library.first[kmer], library.first[kmer + 1]):
            samples = library.samples[library.bounds[e] : library.bounds[e + 1]]
            events.add((kmer, samples.tobytes()))
    return events


def test_library_files_each_real_event_under_its_kmer(tombo_read):
    library = EventLibrary.from_reads([tombo_read])
    assert library.k == 6 and library.offset == 2  # fitted: R9.4.1's level follows this 6-mer
    assert library_events(library) == real_events(tombo_read, 2)


def test_library_keeps_only_events_inside_the_region(tombo_read):
    region = Region(keep=(0, 38_000))
    library = EventLibrary.from_reads([tombo_read], region)
    events = library_events(library)
    assert events == real_events(tombo_read, library.offset, region)
    assert 500 < len(events) < 1200  # the read starts at 36,891: about 1,100 bases are in


def test_unseen_kmers_borrow_a_seen_kmer_with_the_same_central_bases(tombo_read):
    library = EventLibrary.from_reads([tombo_read])
    counts = np.diff(library.first)
    seen = counts > 0
    assert 0 < (~seen).sum()  # one read leaves k-mers unseen
    stand_in = library.stand_in
    assert np.array_equal(stand_in[seen], np.flatnonzero(seen))
    assert seen[stand_in].all()
    digit = lambda m, j: (m // 4 ** (5 - j)) % 4  # noqa: E731
    unseen = np.flatnonzero(~seen)
    # the labelled base (place 2) and its neighbours are kept before farther places change
    assert all(digit(m, 2) == digit(stand_in[m], 2) for m in unseen)
    assert np.mean([digit(m, 3) == digit(stand_in[m], 3) for m in unseen]) > 0.9


def test_pieced_together_read_is_real_events_of_its_own_kmers(tombo_read):
    library = EventLibrary.from_reads([tombo_read])
    fragment = random_genome(800, seed=3)["random"]
    read = library.simulate(fragment, np.random.default_rng(2))
    n = len(fragment) - 5
    assert read.bases == fragment[2 : 2 + n] and len(read.starts) == n
    kmers = kmer_indices(np.searchsorted(np.array(list("ACGT")), np.array(list(fragment))), 6)
    events = {}
    for kmer, samples in library_events(library):
        events.setdefault(kmer, []).append(np.frombuffer(samples, np.float32))
    ends = np.append(read.starts[1:], len(read.pa))
    for kmer, start, end in zip(kmers, read.starts, ends, strict=True):
        samples = (read.pa[start:end] - PA_SHIFT) / PA_SCALE
        assert any(
            len(real) == len(samples) and np.allclose(real, samples, atol=1e-4)
            for real in events[library.stand_in[kmer]]
        )


def test_both_sources_make_training_chunks(tombo_read):
    genome = random_genome(20_000)
    for source in (load_pore_model(), EventLibrary.from_reads([tombo_read])):
        reads = simulate_reads(genome, source, 4, 1500)
        arrays = make_chunks((labelled(r) for r in reads), size=3600)
        assert len(arrays.chunks) >= 6
        assert abs(np.median(arrays.chunks)) < 0.3  # normalised like real reads
        density = arrays.reference_lengths / 3.6
        assert 60 < np.median(density) < 140  # bases per 1,000 samples, as in real R9.4.1


def test_a_library_needs_events_in_its_region(tombo_read):
    with pytest.raises(InputError, match="region"):
        EventLibrary.from_reads([tombo_read], Region(keep=(0, 1_000)))
    with pytest.raises(InputError, match="no labelled events"):
        EventLibrary.from_reads([])
