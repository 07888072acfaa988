import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nanoseq.errors import InputError
from nanoseq.signal.normalize import med_mad, normalise, quantile, standardise, trim_start

signals = arrays(
    np.float32,
    st.integers(1, 500),
    elements=st.floats(0, 400, width=32),
)


def strand(n, rng, mean=90.0, sd=15.0):
    return rng.normal(mean, sd, n).astype(np.float32)


def test_med_mad_known():
    shift, scale = med_mad(np.array([1, 2, 3, 4, 100], dtype=np.float32))
    assert shift == 3.0
    assert scale == pytest.approx(1.4826)
    assert med_mad(np.array([1, 2, 3, 4, 100]), factor=1.0) == (3.0, 1.0)


def test_med_mad_gaussian():
    shift, scale = med_mad(strand(200_000, np.random.default_rng(0)))
    assert shift == pytest.approx(90, abs=0.2)
    assert scale == pytest.approx(15, abs=0.2)


def test_quantile_rule():
    shift, scale = quantile(np.arange(101, dtype=np.float32))  # q20 = 20, q90 = 90
    assert shift == pytest.approx(0.51 * 110)
    assert scale == pytest.approx(0.53 * 70)
    # lower bounds: shift >= 10, scale >= 1
    assert quantile(np.array([0.0, 1.0, 2.0], dtype=np.float32)) == (10.0, 1.0)


def test_constant_signal_scale_guards():
    assert med_mad(np.full(50, 80.0, dtype=np.float32)) == (80.0, 1.0)
    # a spread of one subnormal float (found by hypothesis): constant too, no overflow to inf
    tiny = np.array([1, 1, 1, 1, 1, 1e-45, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0], np.float32)
    assert med_mad(tiny)[1] == 1.0 and np.isfinite(normalise(tiny, "med_mad")[0]).all()
    assert quantile(np.full(50, 100.0, dtype=np.float32)) == (pytest.approx(102.0), 1.0)
    out, shift, scale = normalise(np.full(50, 80.0, dtype=np.float32))
    assert np.all(out == 0) and scale == 1.0


@settings(max_examples=200, deadline=None)
@given(signals, st.sampled_from(["med_mad", "quantile"]))
def test_normalise_matches_its_shift_and_scale(signal, method):
    out, shift, scale = normalise(signal, method)
    assert out.dtype == np.float32 and out.shape == signal.shape
    assert scale >= 1.0 or (method == "med_mad" and scale > 0)
    np.testing.assert_allclose(
        out, (signal.astype(np.float64) - shift) / scale, rtol=1e-5, atol=1e-5
    )
    if method == "med_mad":
        assert np.median(out) == pytest.approx(0.0, abs=1e-4)


def test_normalise_pa():
    signal = np.array([70.0, 90.0, 110.0], dtype=np.float32)
    out, shift, scale = normalise(signal, "pa", mean=90.0, sd=20.0)
    np.testing.assert_array_equal(out, [-1.0, 0.0, 1.0])
    assert (shift, scale) == (90.0, 20.0)
    np.testing.assert_array_equal(standardise(signal, 90.0, 20.0), out)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "zscore"},
        {"method": "pa"},
        {"method": "pa", "mean": 90.0},
        {"method": "pa", "mean": 90.0, "sd": 0.0},
    ],
)
def test_normalise_bad_arguments(kwargs):
    with pytest.raises(InputError):
        normalise(np.ones(10, dtype=np.float32), **kwargs)


def test_empty_or_2d_signal():
    with pytest.raises(InputError):
        normalise(np.ones(0, dtype=np.float32))
    with pytest.raises(InputError):
        med_mad(np.ones((2, 3), dtype=np.float32))


def test_trim_start_finds_open_pore():
    rng = np.random.default_rng(1)
    signal = np.concatenate([rng.normal(220, 5, 2000), strand(8000, rng)]).astype(np.float32)
    assert abs(trim_start(signal) - 2000) <= 40
    # a few low samples right at the start do not hide the open pore
    signal[:30] = 0.0
    assert abs(trim_start(signal) - 2000) <= 40
    # a boundary inside a window is found to the sample (no strand sample above threshold here)
    signal = np.concatenate([np.full(1013, 220.0), np.full(5000, 90.0)]).astype(np.float32)
    signal[1013::2] += 10.0
    assert trim_start(signal) == 1013


def test_trim_start_nothing_to_trim():
    rng = np.random.default_rng(2)
    assert trim_start(strand(10_000, rng)) == 0
    assert trim_start(np.full(5000, 90.0, dtype=np.float32)) == 0
    assert trim_start(np.ones(10, dtype=np.float32)) == 0
    # a high stretch that starts well into the read is not an open-pore start
    late = np.concatenate([strand(1000, rng), np.full(500, 220.0), strand(5000, rng)])
    assert trim_start(late.astype(np.float32)) == 0


def test_trim_start_capped():
    rng = np.random.default_rng(3)
    signal = np.concatenate([rng.normal(220, 5, 4000), strand(6000, rng)]).astype(np.float32)
    assert trim_start(signal) == 3000  # 0.3 of 10000
    assert trim_start(signal, max_fraction=0.5) == pytest.approx(4000, abs=40)


@settings(max_examples=200, deadline=None)
@given(signals)
def test_trim_start_bounds(signal):
    trim = trim_start(signal)
    assert 0 <= trim <= 0.3 * signal.size


def test_a_normalisation_is_a_value_that_travels():
    from nanoseq.signal.normalize import Normalisation

    signal = np.random.default_rng(0).normal(90, 12, 5000).astype(np.float32)
    pa = Normalisation("pa", mean=92.5, sd=23.0)
    x, shift, scale = pa(signal)
    assert (shift, scale) == (92.5, 23.0)
    np.testing.assert_allclose(x, (signal - 92.5) / 23.0, rtol=1e-5)
    assert Normalisation.from_dict(pa.to_dict()) == pa
    assert Normalisation.from_dict("quantile") == Normalisation("quantile")  # older metadata
    assert Normalisation().to_dict() == {"method": "med_mad"}
    for bad in [dict(method="pa"), dict(method="med_mad", mean=1.0, sd=1.0), dict(method="z")]:
        with pytest.raises(InputError):
            Normalisation(**bad)
    with pytest.raises(InputError, match="sd > 0"):
        Normalisation("pa", mean=90.0, sd=0.0)
