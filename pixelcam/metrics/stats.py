"""Paired t-test of per-image scores (e.g. per-image PxAP of a baseline vs its PixelCAM variant)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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
    from scipy import stats  # here: importing scipy.stats costs every process that imports metrics 0.35 s

    return PairedTTest(t, float(2 * stats.t.sf(abs(t), df=n - 1)), mean, n)


@dataclass(frozen=True)
class MeanCI:
    """Mean of n values and the half-width of its two-sided confidence interval (Student t, n - 1 df);
    NaN half-width for a single value."""

    mean: float
    half_width: float
    n: int

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.2f}"
        return f"{self.mean:.2f} ± {self.half_width:.2f}"


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> MeanCI:
    """Mean ± t_{(1+level)/2, n-1} * sd / sqrt(n) over seeds (or any repeated runs); NaNs are dropped."""
    x = np.asarray(values, np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        raise ValueError("mean_ci needs at least one value")
    if x.size == 1:
        return MeanCI(float(x[0]), float("nan"), 1)
    sd = float(x.std(ddof=1))
    from scipy import stats

    hw = float(stats.t.ppf((1 + level) / 2, df=x.size - 1) * sd / math.sqrt(x.size))
    return MeanCI(float(x.mean()), hw, int(x.size))
