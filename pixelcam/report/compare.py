"""Reference vs variant (a baseline vs its NEGEV or PixelCAM model, NEGEV vs PixelCAM), one verdict per
pairing that never contradicts its own test.

Two quantities are shown side by side, each with its direction: the **per-image** PxAP (mean over the test
images that have both ROI and background; the paired t-test is on it, and it is what the paper's Table 2
tests) and the **pooled** PxAP (one precision-recall curve over all pixels of the split, the OOD tables'
number). A row counts as a win of the variant only when the t-test is significant in its favour *and* the
pooled PxAP does not drop; significant the other way with no pooled gain is a loss; a significant per-image
result with the pooled number moving the other way is "mixed"; the rest are not significant.
"""

from __future__ import annotations

import math
from typing import Any

from pixelcam.results import display_name

ALPHA = 0.05


def verdict(row: dict[str, Any], alpha: float = ALPHA) -> str:
    """'<variant> better' | '<reference> better' | 'mixed (...)' | 'not significant' | 'no test' for a row
    of `plots.paired_tests` (keys: mean_diff, p, baseline_pxap, pixelcam_pxap; the models named by
    `display_name` of the row's `pixelcam` and `baseline` labels: "PixelCAM", "NEGEV", "baseline")."""
    p, diff = row.get("p"), row.get("mean_diff")
    if p is None or diff is None or (isinstance(p, float) and math.isnan(p)):
        return "no test"
    if p >= alpha or diff == 0:
        return "not significant"
    pooled = (row.get("pixelcam_pxap") or 0.0) - (row.get("baseline_pxap") or 0.0)
    variant, reference = _names(row)
    if diff > 0:
        return f"{variant} better" if pooled >= 0 else "mixed (per-image up, pooled down)"
    return f"{reference} better" if pooled <= 0 else "mixed (per-image down, pooled up)"


def verdict_class(row: dict[str, Any]) -> str:
    """The CSS class of a row's verdict: "win" when the variant is better, "loss" when the reference is."""
    variant, reference = _names(row)
    return {f"{variant} better": "win", f"{reference} better": "loss"}.get(row.get("verdict", ""), "")


def _names(row: dict[str, Any]) -> tuple[str, str]:
    """(variant, reference) as verdicts name them; a row without labels compares a baseline with PixelCAM."""
    return display_name(row.get("pixelcam", "pixelcam-")), display_name(row.get("baseline", "cam"))


def format_paired_tests(rows: list[dict[str, Any]]) -> str:
    """The console's lines of `plots.paired_tests`: per comparison, mean per-image PxAP of both, t, df, p and
    the verdict, with the pooled PxAP (mean over seeds) beside."""
    if not rows:
        return "paired t-tests: none (no baseline with a NEGEV or PixelCAM model was evaluated)"
    lines = ["paired t-tests of the mean per-image PxAP (unit: image, df = images - 1; reference -> variant)"]
    for r in rows:
        test = (
            f"t {r['t']:.2f}, df {r['df']}, p {r['p']:.3g}"
            if r.get("p") is not None and not math.isnan(r["p"])
            else "no test"
        )
        per_image = (
            f"{r['baseline_image_pxap']:.2f} -> {r['pixelcam_image_pxap']:.2f}"
            if "baseline_image_pxap" in r
            else "n/a"
        )
        pooled = f"{_num(r.get('baseline_pxap'))} -> {_num(r.get('pixelcam_pxap'))}"
        lines.append(
            f"  {r['baseline']} -> {r['pixelcam']} on {r['source']} -> {r['target']}: per-image {per_image}, "
            f"{test}; pooled {pooled}: {r['verdict']}"
        )
    return "\n".join(lines)


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"
