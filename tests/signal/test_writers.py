"""Writing reads back as pod5/blow5: a conversion keeps signal, calibration and metadata."""

import numpy as np
import pytest

from nanoseq.errors import InputError
from nanoseq.signal.readers import read_signal
from nanoseq.signal.writers import write_signal


@pytest.mark.parametrize("suffix", [".pod5", ".blow5"])
def test_convert_fast5_reads(sample_dir, tmp_path, suffix):
    source = list(read_signal([sample_dir / "formats/multi_vbz.fast5"]))
    out = tmp_path / f"converted{suffix}"
    assert write_signal(iter(source), out) == len(source) == 4
    back = list(read_signal([out]))
    for a, b in zip(source, back, strict=True):
        assert (a.read_id, a.channel, a.mux, a.read_number, a.start_sample) == (
            b.read_id,
            b.channel,
            b.mux,
            b.read_number,
            b.start_sample,
        )
        np.testing.assert_array_equal(a.signal, b.signal)
        np.testing.assert_allclose(a.pa, b.pa, rtol=1e-5)
        assert b.sample_rate == a.sample_rate and b.run_id == a.run_id
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_failed_write_leaves_nothing(sample_dir, tmp_path):
    def broken():
        yield from read_signal([sample_dir / "formats/r1041_single.pod5"])
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_signal(broken(), tmp_path / "x.pod5")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="pod5 or .blow5"):
        write_signal([], tmp_path / "x.fast5")
