"""Baseline vs PixelCAM, one verdict per pairing that never contradicts its own test.

Two quantities are shown side by side, each with its direction: the **per-image** PxAP (mean over the test
images that have both ROI and background; the paired t-test is on it, and it is what the paper's Table 2
tests) and the **pooled** PxAP (one precision-recall curve over all pixels of the split, the OOD tables'
number). A row counts as a PixelCAM win only when the t-test is significant in PixelCAM's favour *and* the
pooled PxAP does not drop; significant the other way with no pooled gain is a loss; a significant per-image
result with the pooled number moving the other way is "mixed"; the rest are not significant.
"""

from __future__ import annotations

import math
from typing import Any

ALPHA = 0.05
VERDICT_CLASS = {"PixelCAM better": "win", "baseline better": "loss"}  # CSS class per verdict; others plain


def verdict(row: dict[str, Any], alpha: float = ALPHA) -> str:
    """'PixelCAM better' | 'baseline better' | 'mixed (...)' | 'not significant' | 'no test' for a row of
    `plots.paired_tests` (keys: mean_diff, p, baseline_pxap, pixelcam_pxap)."""
    p, diff = row.get("p"), row.get("mean_diff")
    if p is None or diff is None or (isinstance(p, float) and math.isnan(p)):
        return "no test"
    if p >= alpha or diff == 0:
        return "not significant"
    pooled = (row.get("pixelcam_pxap") or 0.0) - (row.get("baseline_pxap") or 0.0)
    if diff > 0:
        return "PixelCAM better" if pooled >= 0 else "mixed (per-image up, pooled down)"
    return "baseline better" if pooled <= 0 else "mixed (per-image down, pooled up)"
