"""Dashboard figures and tables from hand-made StudyRecords (no MLflow): the paired t-test against scipy,
every figure a valid PNG, empty sections explained, the page self-contained."""

from __future__ import annotations

import html

import numpy as np
import pytest
from scipy import stats

from pixelcam.report import SECTION_IDS, build_sections
from pixelcam.report.html import render
from pixelcam.report.plots import paired_tests
from pixelcam.report.records import Evaluation, StudyRecords, Trial
from pixelcam.results import Gallery, ImageDetails

PNG = b"\x89PNG\r\n\x1a\n"


def _gallery(rng: np.random.Generator, size: int = 16) -> Gallery:
    return Gallery(
        image=rng.integers(0, 255, (4, size, size, 3), dtype=np.uint8),
        mask=(rng.random((4, size, size)) > 0.7).astype(np.uint8),
        map=rng.random((4, size, size)).astype(np.float16),
        label=np.array([0, 0, 1, 1]),
        image_id=np.array(["a", "b", "c", "d"]),
    )


def records(with_details: bool = True, stain: bool = True) -> StudyRecords:
    rng = np.random.default_rng(0)
    ids = [f"img{i}" for i in range(12)]
    evs = []
    for method, shift in (("cam", 0.0), ("pixelcam-cam", 8.0)):
        ev = Evaluation(
            method,
            "colon",
            f"run-{method}",
            {"colon": 20 + shift, "lymph": 10 + shift / 2},
            {"colon": 70.0, "lymph": 55.0},
        )
        if with_details:
            for tgt in ("colon", "lymph"):
                per = list(rng.normal(20 + shift, 5, 12))
                per[0] = float("nan")  # a normal image: AP undefined
                ev.details[tgt] = ImageDetails(
                    domain=tgt,
                    split="test",
                    image_ids=ids,
                    labels=[0] * 6 + [1] * 6,
                    pxap=per,
                    j=list(rng.gamma(2.0, 0.05 + shift / 100, 12)),
                )
                ev.gallery[tgt] = _gallery(rng)
        evs.append(ev)
    trials = [
        Trial(
            "colon__pixelcam-cam",
            "pixelcam-cam",
            "colon",
            f"t{i}",
            {"lr": 0.01, "lam": 10**-i, "n": 2.0 * i + 1},
            float(30 + i),
            2,
            i,
            "FINISHED",
        )
        for i in range(3)
    ] + [Trial("colon__cam", "cam", "colon", "t9", {"lr": 0.01}, 15.0, 1, 9, "KILLED")]
    sweep = (
        [
            {
                "label": m,
                "method": "cam",
                "source": "colon",
                "domain": "colon",
                "reference": "lymph",
                "stain": "reinhard",
                "images": 12,
                "rows": [
                    {"level": k, "strength": k / 2, "delta_e": 3.0 * k, "pxap": 30 - k, "cl": 70 - 2 * k}
                    for k in range(3)
                ],
            }
            for m in ("cam", "pixelcam-cam")
        ]
        if stain
        else []
    )
    return StudyRecords(
        "t", "parent", ["colon"], ["cam"], ["colon", "lymph"], evs, trials, sweep, "sqlite:///x"
    )


def test_paired_tests_match_scipy_ttest_rel():
    rec = records()
    rows = paired_tests(rec)
    assert [(r["source"], r["target"], r["baseline"], r["pixelcam"]) for r in rows] == [
        ("colon", "colon", "cam", "pixelcam-cam"),
        ("colon", "lymph", "cam", "pixelcam-cam"),
    ]
    for row in rows:
        a = np.asarray(rec.evaluation("cam", "colon").details[row["target"]].pxap)
        b = np.asarray(rec.evaluation("pixelcam-cam", "colon").details[row["target"]].pxap)
        keep = ~np.isnan(a) & ~np.isnan(b)
        ref = stats.ttest_rel(b[keep], a[keep])
        assert row["t"] == pytest.approx(ref.statistic) and row["p"] == pytest.approx(ref.pvalue)
        assert row["n"] == 11 and row["baseline_pxap"] == rec.evaluation("cam", "colon").pxap[row["target"]]


def test_every_section_has_figures_and_the_page_is_self_contained():
    sections = build_sections(records())
    assert [s.id for s in sections] == list(SECTION_IDS)
    for s in sections:
        assert s.images, s.id
        assert all(png.startswith(PNG) and len(png) > 2000 for _, png in s.images), s.id
    assert (
        len(next(s for s in sections if s.id == "cam-gallery").images) == 2
    )  # colon -> colon, colon -> lymph
    page = render("pixelcam study: t", ["x <y>"], sections)
    assert page.count("<section id=") == len(SECTION_IDS) and "x &lt;y&gt;" in page
    assert "http" not in page.replace("data:image/png", "") and "<script" not in page


def test_missing_data_is_said_not_drawn():
    sections = {s.id: s for s in build_sections(records(with_details=False, stain=False))}
    assert not sections["stain-shift"].images and "stain_shift" in sections["stain-shift"].empty
    assert not sections["cam-gallery"].images and not sections["separability"].images
    # without per-image PxAP no bars (they show the tested quantity); the table keeps the pooled PxAP
    bars = sections["pixelcam-vs-baseline"]
    assert not bars.images and bars.tables and "no test" in bars.tables[0]
    assert "no test image has both ROI and background" in bars.empty  # and the missing bars say why
    page = render("t", [], list(sections.values()))
    assert page.count('class="empty"') == 4


def test_unsearched_lambda_n_and_single_trials_say_so_instead_of_a_dot():
    rec = records()
    rec.trials = [t for t in rec.trials if t.trial_id == "t1"] + [
        t for t in rec.trials if t.key == "colon__cam"
    ]
    sections = {s.id: s for s in build_sections(rec)}
    hyper, hist = sections["hyperparameters"], sections["optuna-history"]
    assert not hyper.images and hyper.empty.startswith("lambda and n were not searched")
    assert "lam = 0.1" in hyper.empty and "n = 3" in hyper.empty
    assert not hist.images and "single trial" in hist.empty and hist.tables  # the trials' table stays
    page = render("t", [], list(sections.values()))
    assert "every Tune experiment ran a single trial" in page


def test_the_ood_panel_shows_the_ood_steps_aggregates_and_every_seeds_chance_flag():
    """Heat map, table and warnings come from the OOD matrix (mean over seeds), not the study seed's run."""
    from pixelcam.report.dashboard import build_sections as sections_of
    from pixelcam.results import OODCell, OODMatrix, OODRow

    rec = records()
    cells = {
        m: {
            t: OODCell(seeds=[0, 1], values=[v, v + 2], mean=v + 1, half_width=12.71, n=2)
            for t in ("colon", "lymph")
        }
        for m, v in (("pxap", 40.0), ("cl", 60.0))
    }
    warning = "cam <- colon (seed 1): valcl CL 51.0 is within 5 points of chance (50.0); read with care"
    rec.ood = OODMatrix(
        study="t",
        targets=["colon", "lymph"],
        seeds=[0, 1],
        rows=[
            OODRow(method="cam", source="colon", status="ok", cells=cells, near_chance=[warning]),
            OODRow(method="pixelcam-cam", source="colon", status="ok", cells=cells),
        ],
        warnings=[warning],
    )
    assert str(rec.cell("cam", "colon", "pxap", "lymph")) == "41.00 ± 12.71"  # the study seed's is 10.0
    ood = next(s for s in sections_of(rec) if s.id == "ood")
    page = render("t", [], [ood])
    assert "41.00 ± 12.71" in page and "61.00 ± 12.71" in page and "10.0" not in page.split("<table>")[-1]
    assert html.escape(warning) in page and "cam &lt;- colon !" in page
    assert "pixelcam-cam &lt;- colon !" not in page
    assert "mean ± 95 % CI over 2 seeds" in ood.what


def test_paired_rows_carry_per_image_means_and_a_verdict():
    rec = records()
    for row in paired_tests(rec):
        a = np.asarray(rec.evaluation("cam", "colon").details[row["target"]].pxap)
        b = np.asarray(rec.evaluation("pixelcam-cam", "colon").details[row["target"]].pxap)
        keep = ~np.isnan(a) & ~np.isnan(b)
        assert row["baseline_image_pxap"] == pytest.approx(a[keep].mean())
        assert row["pixelcam_image_pxap"] == pytest.approx(b[keep].mean())
        assert row["mean_diff"] == pytest.approx((b[keep] - a[keep]).mean())
        assert row["verdict"] in {"PixelCAM better", "baseline better", "not significant"} or row[
            "verdict"
        ].startswith("mixed")


def test_gallery_mixes_models_evaluated_at_different_sizes():
    """SAT trains at 128 px next to CNNs at 144 px: each model's map goes over its own copy of the image (the
    science study's dashboard failed on the broadcast before)."""
    from pixelcam.report.plots import cam_gallery

    rec = records()
    rng = np.random.default_rng(1)
    rec.evaluation("pixelcam-cam", "colon").gallery["lymph"] = _gallery(rng, size=12)
    png = cam_gallery(rec, "colon", "lymph")
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
