"""A pairing is never coloured as a PixelCAM win against its own paired t-test (the quickstart once showed a
pooled 20.1 -> 47.0 in green beside a significant per-image drop of -3.27)."""

import pytest

from pixelcam.report.compare import VERDICT_CLASS, verdict


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"mean_diff": 5.0, "p": 0.01, "baseline_pxap": 40.0, "pixelcam_pxap": 50.0}, "PixelCAM better"),
        (
            {"mean_diff": -3.27, "p": 0.004, "baseline_pxap": 20.1, "pixelcam_pxap": 47.0},
            "mixed (per-image down, pooled up)",
        ),
        (
            {"mean_diff": 2.0, "p": 0.01, "baseline_pxap": 50.0, "pixelcam_pxap": 45.0},
            "mixed (per-image up, pooled down)",
        ),
        ({"mean_diff": -4.0, "p": 0.001, "baseline_pxap": 50.0, "pixelcam_pxap": 45.0}, "baseline better"),
        ({"mean_diff": 9.0, "p": 0.2, "baseline_pxap": 20.0, "pixelcam_pxap": 60.0}, "not significant"),
        ({"baseline_pxap": 20.0, "pixelcam_pxap": 60.0}, "no test"),
    ],
)
def test_verdict_follows_the_test_and_both_directions(row, expected):
    v = verdict(row)
    assert v == expected
    if VERDICT_CLASS.get(v) == "win":  # green only with a significant positive per-image difference
        assert row["mean_diff"] > 0 and row["p"] < 0.05 and row["pixelcam_pxap"] >= row["baseline_pxap"]
