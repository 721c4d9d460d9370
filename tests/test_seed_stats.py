"""TOST and the t interval against hand computations and their defining dualities."""

import math

import numpy as np
import pytest
from scipy import stats

from analysis.seed_stats import t_interval, tost


def test_t_interval_is_mean_plus_minus_t_times_standard_error():
    x = [1.0, 2.0, 4.0, 7.0]
    r = t_interval(x)
    half = stats.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert (r.n, r.mean) == (4, 3.5)
    assert r.low == pytest.approx(3.5 - half) and r.high == pytest.approx(3.5 + half)
    assert math.isnan(t_interval([2.0]).low) and t_interval([]).n == 0


def test_tost_p_value_by_hand_with_welch_degrees_of_freedom():
    a, b = [0.010, 0.012, 0.011, 0.013, 0.009], [0.011, 0.0115, 0.0105, 0.012, 0.010]
    r = tost(a, b, margin=0.003)
    va, vb = np.var(a, ddof=1) / 5, np.var(b, ddof=1) / 5
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 4)
    diff = np.mean(a) - np.mean(b)
    p = max(stats.t.sf((diff + 0.003) / se, df), stats.t.cdf((diff - 0.003) / se, df))
    assert r.p == pytest.approx(p) and r.df == pytest.approx(df) and r.equivalent


@pytest.mark.parametrize("shift", [0.0, 0.001, 0.002, 0.0025, 0.003, 0.004, -0.0028])
def test_equivalent_exactly_when_the_90_percent_interval_lies_inside_the_margin(shift):
    rng = np.random.default_rng(1)
    a = rng.normal(0.011 + shift, 0.0008, 5)
    b = rng.normal(0.011, 0.0012, 5)
    r = tost(a, b, margin=0.003)
    assert r.equivalent == (-0.003 < r.low and r.high < 0.003)


def test_a_real_difference_beyond_the_margin_is_not_equivalent_and_bad_input_is_refused():
    assert not tost([0.02, 0.021, 0.019], [0.010, 0.011, 0.009], margin=0.003).equivalent
    with pytest.raises(ValueError):
        tost([0.01], [0.01, 0.02], margin=0.003)
    with pytest.raises(ValueError):
        tost([0.01, 0.02], [0.01, 0.02], margin=0)
