"""A pairing is never coloured as a PixelCAM win against its own paired t-test (the quickstart once showed a
pooled 20.1 -> 47.0 in green beside a significant per-image drop of -3.27)."""

import pytest

from pixelcam.report.compare import verdict, verdict_class


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
        # NEGEV against its baseline, and PixelCAM against NEGEV: the verdict names the models compared
        (
            {"mean_diff": 5.0, "p": 0.01, "baseline_pxap": 40.0, "pixelcam_pxap": 50.0, "baseline": "cam",
             "pixelcam": "negev-cam"},
            "NEGEV better",
        ),
        (
            {"mean_diff": -5.0, "p": 0.01, "baseline_pxap": 50.0, "pixelcam_pxap": 40.0,
             "baseline": "negev-cam", "pixelcam": "pixelcam-cam"},
            "NEGEV better",
        ),
        (
            {"mean_diff": 5.0, "p": 0.01, "baseline_pxap": 40.0, "pixelcam_pxap": 50.0,
             "baseline": "negev-cam", "pixelcam": "pixelcam-cam.n-1"},
            "PixelCAM better",
        ),
    ],
)  # fmt: skip
def test_verdict_follows_the_test_and_both_directions(row, expected):
    v = verdict(row)
    assert v == expected
    colour = verdict_class({**row, "verdict": v})
    if colour == "win":  # green only with a significant positive per-image difference
        assert row["mean_diff"] > 0 and row["p"] < 0.05 and row["pixelcam_pxap"] >= row["baseline_pxap"]
    if colour == "loss":
        assert row["mean_diff"] < 0 and row["p"] < 0.05 and row["pixelcam_pxap"] <= row["baseline_pxap"]
    assert colour == {"PixelCAM better": "win", "baseline better": "loss"}.get(v, colour)
