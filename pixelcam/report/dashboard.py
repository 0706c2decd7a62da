"""`pixelcam dashboard STUDY`: the study's dashboard (DESIGN.md 6) as one offline HTML file, with the same
figures logged as PNG artifacts of the study's MLflow parent run (`dashboard/*.png`, `dashboard/index.html`).
"""

from __future__ import annotations

import datetime as dt
import os

from pixelcam.environment import describe
from pixelcam.report import plots
from pixelcam.report.compare import verdict_class
from pixelcam.report.html import Section, render, table
from pixelcam.report.records import StudyRecords, load_records
from pixelcam.results import PRIOR_LABEL
from pixelcam.storage import Location

SECTION_IDS = (
    "ood",
    "pixelcam-vs-baseline",
    "stain-shift",
    "hyperparameters",
    "optuna-history",
    "cam-gallery",
    "separability",
)


def _cell(rec: StudyRecords, e, metric: str, target: str) -> object:
    """A table cell: mean ± 95 % CI over the model's seeds (its single value with one seed)."""
    agg = rec.cell(e.method, e.source, metric, target)
    return str(agg) if agg is not None else None


def build_sections(rec: StudyRecords) -> list[Section]:
    """Every section of the dashboard, in page order (a section without data says so)."""
    return [build(rec) for build in SECTION_BUILDERS]


def _ood_section(rec: StudyRecords) -> Section:
    """The OOD matrix: heat maps, the table over seeds, near-chance warnings."""
    ood = Section(
        "ood",
        "OOD matrix: PxAP and CL",
        "Each selected model on every target's test split; the "
        "diagonal (source = target) is the in-distribution result.",
    )
    for metric in ("pxap", "cl"):
        png = plots.ood_heatmap(rec, metric)
        if png:
            ood.images.append((f"{metric.upper()} heat map per method", png))
    if rec.evaluations:
        rows = [
            [f"{e.method} <- {e.source}" + (" !" if _at_chance(rec, e) else "")]
            + [_cell(rec, e, "pxap", t) for t in rec.targets]
            + [_cell(rec, e, "cl", t) for t in rec.targets]
            for e in rec.evaluations
        ]
        if rec.ood is not None and rec.ood.roi_prior:  # the floor: a constant map's PxAP
            prior = [rec.ood.prior_text(t) for t in rec.targets]
            rows.append([PRIOR_LABEL, *prior] + [""] * len(rec.targets))
        seeds = rec.seeds_of()
        ood.what += (
            f" Cells and heat maps: mean ± 95 % CI over {seeds} seeds."
            if seeds >= 2
            else " One seed per model: no CI."
        )
        ood.tables.append(
            table(
                ["model <- source"] + [f"PxAP {t}" for t in rec.targets] + [f"CL {t}" for t in rec.targets],
                rows,
            )
        )
        warnings = rec.chance_warnings()
        if warnings:
            ood.tables.insert(
                0,
                table(
                    ["WARNING: selected models near chance (! in the table)"],
                    [[w] for w in warnings],
                    ["loss"] * len(warnings),
                ),
            )
    return ood


def _at_chance(rec: StudyRecords, e) -> bool:
    """Whether any seed of the model is flagged near chance (its row is marked `!`)."""
    return bool(rec.chance_warnings(e.method, e.source))


def _paired_section(rec: StudyRecords) -> Section:
    """Baseline vs NEGEV and PixelCAM, NEGEV vs PixelCAM: per-image PxAP bars and paired t-tests."""
    tests = plots.paired_tests(rec)
    bars = Section(
        "pixelcam-vs-baseline",
        "Baseline vs NEGEV vs PixelCAM",
        "Each baseline against its NEGEV and PixelCAM variants, and PixelCAM against NEGEV, per source -> "
        "target pairing, on two quantities with their direction: the mean per-image PxAP over test images "
        "with both ROI and background (the paired two-sided t-test is on it, as the paper's Table 2; df = "
        "images - 1, the unit is an image, so t and p are not comparable with the paper's, whose t/p imply "
        "about 28 degrees of freedom) and the pooled PxAP of the OOD table. A row is green only when the "
        "test is significant (p < 0.05) for the variant and the pooled PxAP does not drop, red when it is "
        "significant for the reference; 'mixed' when the two quantities disagree.",
    )
    png = plots.paired_bars(rec, tests)
    if png:
        bars.images.append(("baseline vs PixelCAM bars of per-image PxAP with paired t-test p-values", png))
    if tests:
        bars.tables.append(
            table(
                [
                    "pairing",
                    "reference",
                    "variant",
                    "per-image PxAP reference",
                    "per-image PxAP variant",
                    "mean diff / image",
                    "t",
                    "df",
                    "p",
                    "images",
                    "pooled PxAP reference",
                    "pooled PxAP variant",
                    "verdict",
                ],
                [
                    [
                        f"{t['source']} -> {t['target']}",
                        t["baseline"],
                        t["pixelcam"],
                        t.get("baseline_image_pxap"),
                        t.get("pixelcam_image_pxap"),
                        t.get("mean_diff"),
                        t.get("t"),
                        t.get("df"),
                        t.get("p"),
                        t.get("n"),
                        t["baseline_pxap"],
                        t["pixelcam_pxap"],
                        t["verdict"],
                    ]
                    for t in tests
                ],
                [verdict_class(t) for t in tests],
            )
        )
    if not tests:
        bars.empty = "the study has no baseline with a PixelCAM variant"
    elif png is None:
        bars.empty = "no test image has both ROI and background: no per-image PxAP to compare"
    return bars


def _stain_section(rec: StudyRecords) -> Section:
    """PxAP and CL against the stain-shift level."""
    stain = Section(
        "stain-shift",
        "Staining robustness",
        "PxAP and CL as the test images move toward another "
        "domain's stain (level 0 = original, 10 = the reference's full stain); dE is the mean CIE76 "
        "colour difference to the original images. Each curve is the model of the study's own seed, so its "
        "level 0 is that seed's test value, not the mean over seeds of the OOD table.",
    )
    png = plots.stain_curves(rec)
    if png:
        stain.images.append(("PxAP and CL against stain-shift level", png))
        levels = [r["level"] for r in rec.stain[0]["rows"]]
        stain.tables.append(
            table(
                ["model <- source on domain (PxAP)"] + [str(lv) for lv in levels],
                [
                    [f"{r.get('label', r['method'])} <- {r['source']} on {r['domain']}"]
                    + [x["pxap"] for x in r["rows"]]
                    for r in rec.stain
                ],
            )
        )
    stain.empty = "no stain_shift section in this study's spec"
    return stain


def _hyper_section(rec: StudyRecords) -> Section:
    """PixelCAM trials' valpx PxAP against lambda and n."""
    hyper = Section(
        "hyperparameters",
        "Hyperparameters: lambda and n",
        "Best valpx PxAP (B-LOC) reached by every "
        "PixelCAM trial against its pixel-loss weight lambda and its number n of sampled pixels.",
    )
    png = plots.hyper_scatter(rec)
    if png:
        hyper.images.append(("valpx PxAP against lambda and n", png))
    hyper.empty = _not_searched(rec)
    return hyper


def _not_searched(rec: StudyRecords) -> str:
    """Why the sensitivity panel is empty, in one sentence."""
    fixed = {p: plots.searched(rec, p) for p in ("lam", "n")}
    if not any(fixed.values()):
        return "no PixelCAM trial in this study: nothing to plot against lambda and n"
    held = ", ".join(f"{p} = {v[0]:g}" for p, v in fixed.items() if len(v) == 1)
    return f"lambda and n were not searched (every PixelCAM trial used {held}): nothing to plot against them"


def _history_section(rec: StudyRecords) -> Section:
    """Each Tune experiment's trials in launch order."""
    hist = Section(
        "optuna-history",
        "Optuna optimisation history",
        "Per Tune experiment: each trial's best valpx "
        "PxAP in launch order and the best so far; trials stopped by ASHA show their score at stopping.",
    )
    png = plots.optuna_history(rec)
    if png:
        hist.images.append(("Optuna optimisation history per experiment", png))
    if rec.trials:
        hist.tables.append(
            table(
                ["experiment", "trial", "status", "epochs", "best valpx PxAP", "params"],
                [
                    [
                        t.key,
                        t.trial_id,
                        t.status,
                        t.epochs,
                        t.score,
                        ", ".join(
                            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in t.params.items()
                        ),
                    ]
                    for t in rec.trials
                ],
            )
        )
    hist.empty = (
        "every Tune experiment ran a single trial: there is no search history to draw"
        if rec.trials
        else "no trial was recorded in this study"
    )
    return hist


def _gallery_section(rec: StudyRecords) -> Section:
    """Maps of the first test images of each class."""
    gallery = Section(
        "cam-gallery",
        "CAM gallery",
        "Normal and cancer test images with the ground-truth ROI "
        "(yellow), each baseline's CAM and each PixelCAM map, per source -> target pairing.",
    )
    for src in rec.sources:
        for tgt in rec.targets:
            png = plots.cam_gallery(rec, src, tgt)
            if png:
                gallery.images.append((f"CAM gallery {src} -> {tgt}", png))
    return gallery


def _separability_section(rec: StudyRecords) -> Section:
    """Per-image FG/BG separability J histograms."""
    sep = Section(
        "separability",
        "FG/BG separability (J)",
        "Per-image J = tr(S_B)/tr(S_W) of foreground vs "
        "background encoder features on the in-domain test split, baseline vs PixelCAM (paper Fig. 3).",
    )
    png = plots.separability_hist(rec)
    if png:
        sep.images.append(("separability histograms baseline vs PixelCAM", png))
    return sep


SECTION_BUILDERS = (
    _ood_section,
    _paired_section,
    _stain_section,
    _hyper_section,
    _history_section,
    _gallery_section,
    _separability_section,
)


def build_dashboard(
    study: str | Location,
    out: str | os.PathLike | Location,
    uri: str | None = None,
    log_to_mlflow: bool = True,
    records: StudyRecords | None = None,
) -> Location:
    """Write the dashboard HTML to `out` (atomically; a local path or a URI); by default also log it and its
    PNGs to MLflow. `records`: the study's, already read back (else read here)."""
    rec = records or load_records(study, uri)
    sections = build_sections(rec)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = render(
        f"pixelcam study: {rec.name}",
        [
            f"sources {', '.join(rec.sources)}; targets {', '.join(rec.targets)}; "
            f"baselines {', '.join(rec.methods)}",
            f"{len(rec.trials)} trials, {len(rec.evaluations)} selected models; "
            f"MLflow parent run {rec.parent_run_id}",
            f"built {now} from {rec.tracking_uri}",
            "environment: "
            + (describe(rec.environment) if rec.environment else "not recorded with this study"),
        ],
        sections,
    )
    out = Location(out)
    out.write_text(page)
    if log_to_mlflow:
        from pixelcam.tracking import RunLogger

        log = RunLogger(rec.parent_run_id, rec.tracking_uri)
        for s in sections:
            for i, (_, png) in enumerate(s.images):
                log.data(png, f"dashboard/{s.id}{'' if i == 0 else f'-{i + 1}'}.png")
        log.data(page.encode(), "dashboard/index.html")
    return out
