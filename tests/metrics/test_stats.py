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
