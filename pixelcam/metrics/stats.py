"""Paired t-test of per-image scores (e.g. per-image PxAP of a baseline vs its PixelCAM variant)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairedTTest:
    """t statistic, two-sided p-value, mean difference (b - a) and the number of pairs."""

    t: float
    p: float
    mean_diff: float
    n: int


def paired_ttest(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> PairedTTest:
    """Two-sided paired t-test of H0: mean(b - a) = 0; t = mean(d) / (sd(d) / sqrt(n)), df = n - 1."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"expected two 1-D sequences of equal length, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    d = (b - a)[keep]
    n = int(d.size)
    if n < 2:
        raise ValueError(f"a paired t-test needs >= 2 pairs without NaN, got {n}")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        return PairedTTest(t, 1.0 if mean == 0 else 0.0, mean, n)
    t = mean / (sd / math.sqrt(n))
    return PairedTTest(t, float(2 * stats.t.sf(abs(t), df=n - 1)), mean, n)
