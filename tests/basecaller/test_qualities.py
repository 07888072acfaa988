"""Base qualities: the table's pooled fit, the context, and how evaluation measures them."""

import numpy as np
import pytest

from nanoseq.basecaller.qualities import CONTEXT_BASES, context_qualities, pooled_qualities
from nanoseq.metrics import chance_measured_within, measured_q_interval, phred


def test_quality_bins_are_pooled_by_their_counts_where_the_error_rate_rises():
    """Bins are pooled (bases and errors summed) where the error rate does not fall, so a sparse
    bin without errors neither drags a well-measured one down nor is reported below it."""

    def q(errors, bases):
        return -10 * np.log10((errors + 0.5) / (bases + 1))

    fitted = pooled_qualities(np.array([1000, 1000, 150, 120]), np.array([100, 10, 0, 1]))
    np.testing.assert_allclose(fitted, [q(100, 1000), q(10, 1000), q(1, 270), q(1, 270)])
    # 2 errors in 2,000 bases (Q29), then 120 bases without an error (Q23.8 on their own)
    sparse = pooled_qualities(np.array([2000, 120]), np.array([2, 0]))
    np.testing.assert_allclose(sparse, [q(2, 2000), q(2, 2000)])


def test_a_base_s_context_is_the_mean_error_of_the_bases_around_it():
    raw = np.full(3 * CONTEXT_BASES, 30, np.uint8)
    raw[0] = 10  # one base wrong one time in ten among bases wrong one time in a thousand
    context = context_qualities(raw)
    ends = -10 * np.log10((0.1 + CONTEXT_BASES * 1e-3) / (CONTEXT_BASES + 1))
    assert context[0] == pytest.approx(ends)  # the first base sees itself and 100 after it
    assert context[CONTEXT_BASES] < context[CONTEXT_BASES + 1] == pytest.approx(30)
    assert context_qualities(np.zeros(0, np.uint8)).shape == (0,)


def test_a_measured_q_interval_holds_the_error_rates_the_errors_allow():
    """Clopper-Pearson: at the worst end the chance of so few errors, at the best end of so
    many, is 2.5 %."""
    from scipy.stats import binom

    low, high = measured_q_interval(2, 1500)
    assert binom.cdf(2, 1500, 10 ** (-low / 10)) == pytest.approx(0.025, abs=1e-3)
    assert binom.sf(1, 1500, 10 ** (-high / 10)) == pytest.approx(0.025, abs=1e-3)
    assert low < -10 * np.log10(2 / 1500) < high
    assert measured_q_interval(0, 1000)[1] == 60.0  # no error seen: no best end (capped)
    assert measured_q_interval(1000, 1000)[0] == 0.0


def test_the_chance_a_calibrated_bin_measures_within_2_q_is_what_sampling_gives():
    """Drawn: bins whose bases are each wrong as often as their Q says, measured as evaluation
    measures them; the share within 2 Q matches the chance computed. Sparse bins near the top
    miss often even so; bins of many errors almost never."""
    rng = np.random.default_rng(7)
    for q, bases in [(27, 1728), (25, 1460), (12, 3000)]:
        errors = rng.binomial(bases, 10 ** (-q / 10), size=20_000)
        drawn = np.mean([abs(phred(e / bases) - q) <= 2 for e in errors])
        assert chance_measured_within(q, bases) == pytest.approx(drawn, abs=0.015)
    assert 0.5 < chance_measured_within(27, 1728) < 0.56
    assert chance_measured_within(12, 3000) > 0.999
    assert chance_measured_within(20, 1000, within=0.1) < chance_measured_within(20, 1000)
