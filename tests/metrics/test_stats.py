import numpy as np
import pytest
from scipy import stats

from pixelcam.metrics import paired_ttest


def test_paired_ttest_matches_scipy_and_hand_values():
    rng = np.random.default_rng(0)
    a = rng.normal(50, 10, 30)
    b = a + rng.normal(2, 3, 30)
    r = paired_ttest(a, b)
    ref = stats.ttest_rel(b, a)
    assert r.t == pytest.approx(ref.statistic) and r.p == pytest.approx(ref.pvalue) and r.n == 30
    # d = (1, 2, 3): mean 2, sd 1, t = 2 / (1 / sqrt 3)
    assert paired_ttest([0, 0, 0], [1, 2, 3]).t == pytest.approx(2 * np.sqrt(3))
    assert paired_ttest([1, 2], [1, 2]).p == 1.0
    with pytest.raises(ValueError, match=">= 2 pairs"):
        paired_ttest([1.0], [2.0])


def test_mean_ci_matches_scipy_t_interval():
    from pixelcam.metrics import mean_ci

    values = [61.2, 58.4, 64.9]
    ci = mean_ci(values)
    lo, hi = stats.t.interval(0.95, df=2, loc=np.mean(values), scale=stats.sem(values))
    assert ci.mean == pytest.approx(np.mean(values)) and ci.n == 3
    assert (ci.mean - ci.half_width, ci.mean + ci.half_width) == pytest.approx((lo, hi))
    assert str(ci) == f"{np.mean(values):.2f} ± {(hi - lo) / 2:.2f}"
    one = mean_ci([70.0, float("nan")])  # NaN dropped; one value has no interval
    assert one.n == 1 and one.mean == 70.0 and np.isnan(one.half_width) and str(one) == "70.00"
    with pytest.raises(ValueError, match="at least one value"):
        mean_ci([])
