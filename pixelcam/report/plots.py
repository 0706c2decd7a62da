"""The dashboard's figures, drawn with matplotlib's object API (no pyplot state) from `StudyRecords`.

Every function returns PNG bytes, or None when the study has nothing to show for it.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import Any

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pixelcam.metrics import paired_ttest
from pixelcam.models.factory import method_class
from pixelcam.report.compare import verdict
from pixelcam.report.records import StudyRecords
from pixelcam.results import label_parts

DPI = 90


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def ood_heatmap(rec: StudyRecords, metric: str) -> bytes | None:
    """One panel per model label: source (rows) x target (columns) of PxAP or CL, the mean over seeds (the
    value the OOD table and `ood.csv` hold) annotated with its 95 % CI half-width; one colour bar."""
    labels = rec.labels()
    if not labels or not rec.targets:
        return None
    cols = min(4, len(labels))
    rows = math.ceil(len(labels) / cols)
    fig = Figure(
        figsize=(3.2 * cols + 0.8, 0.9 + 0.75 * len(rec.sources) * rows + 0.6 * rows), layout="constrained"
    )
    axes = []
    for i, label in enumerate(labels):
        ax = fig.add_subplot(rows, cols, i + 1)
        axes.append(ax)
        image = _heat_panel(ax, rec, label, metric)
        ax.set_title(label, fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.9, label=f"{metric.upper()} (%)")
    seeds = rec.seeds_of()
    over = f"mean ± 95 % CI over {seeds} seeds" if seeds >= 2 else "one seed"
    fig.suptitle(f"{metric.upper()} (%), {over}: rows source, columns target (test split)", fontsize=10)
    return _png(fig)


def _heat_panel(ax: Any, rec: StudyRecords, label: str, metric: str) -> Any:
    """One model's source x target grid of means, each cell annotated `mean` and `± half-width`."""
    grid = np.full((len(rec.sources), len(rec.targets)), np.nan)
    text = np.full(grid.shape, "-", dtype=object)
    for r, src in enumerate(rec.sources):
        for c, tgt in enumerate(rec.targets):
            agg = rec.cell(label, src, metric, tgt)
            if agg is not None:
                grid[r, c] = agg.mean
                text[r, c] = f"{agg.mean:.1f}" + (
                    f"\n± {agg.half_width:.1f}" if agg.half_width is not None else ""
                )
    image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    for (r, c), txt in np.ndenumerate(text):
        color = "white" if np.isnan(grid[r, c]) or grid[r, c] < 55 else "black"
        ax.text(c, r, txt, ha="center", va="center", color=color, fontsize=9, fontweight="bold")
    ax.set_xticks(range(len(rec.targets)), rec.targets, rotation=20, fontsize=8)
    ax.set_yticks(range(len(rec.sources)), rec.sources, fontsize=8)
    return image


def _seed_mean_images(evals: list, target: str) -> tuple[list[str], np.ndarray] | None:
    """(image ids, per-image PxAP averaged over the seeds' evaluations) on `target`, or None."""
    dets = [e.details.get(target) for e in evals]
    if not dets or any(d is None for d in dets) or any(d.image_ids != dets[0].image_ids for d in dets):
        return None
    with warnings.catch_warnings():  # an image without ROI and background has NaN in every seed: stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return dets[0].image_ids, np.nanmean(np.asarray([d.pxap for d in dets], float), axis=0)


def comparisons(rec: StudyRecords, base: str) -> list[tuple[str, str]]:
    """(reference, variant) label pairs of one baseline's models: each NEGEV or PixelCAM variant against the
    baseline, then PixelCAM against NEGEV (the paper's Tables 1-3 and 11 compare all three)."""
    of = {label: label_parts(label) for label in rec.labels()}
    negev = [label for label, parts in of.items() if parts == ("negev", base)]
    pixelcam = [label for label, parts in of.items() if parts == ("pixelcam", base)]
    return [(base, v) for v in negev + pixelcam] + [(n, p) for n in negev for p in pixelcam]


def paired_tests(rec: StudyRecords) -> list[dict[str, Any]]:
    """Each comparison of `comparisons` per source->target: pooled PxAP (mean over seeds with `seeds`,
    with its 95 % CI), mean per-image PxAP, the paired t-test of per-image PxAP (images whose mask has both
    FG and BG; with seeds, each image's PxAP averaged over the seeds first; df = images - 1, unit: image) and
    the verdict. Keys `baseline`/`pixelcam` hold the reference's and the variant's labels."""
    out = []
    for src in rec.sources:
        for base in rec.methods:
            for ref, label in comparisons(rec, base):
                bs, ps = rec.seed_evaluations(ref, src), rec.seed_evaluations(label, src)
                if bs and ps:
                    out += [_paired_row(rec, src, tgt, ref, label, bs, ps) for tgt in rec.targets]
    return out


def _paired_row(
    rec: StudyRecords, src: str, tgt: str, base: str, label: str, bs: list, ps: list
) -> dict[str, Any]:
    """One pairing's row of `paired_tests`."""
    row: dict[str, Any] = {
        "source": src,
        "target": tgt,
        "baseline": base,
        "pixelcam": label,
        "seeds": min(len(bs), len(ps)),
        "unit": "image",
    }
    for side, model in (("baseline", base), ("pixelcam", label)):
        ci = rec.over_seeds(model, src, "pxap", tgt)
        row[f"{side}_pxap"] = ci.mean if ci else None
        row[f"{side}_pxap_ci"] = ci.half_width if ci else None
    a, b = _seed_mean_images(bs, tgt), _seed_mean_images(ps, tgt)
    if a is not None and b is not None and a[0] == b[0]:
        row.update(_per_image_test(a[1], b[1]))
    row["verdict"] = verdict(row)
    return row


def _per_image_test(xa: np.ndarray, xb: np.ndarray) -> dict[str, float]:
    """Mean per-image PxAP of both over images where both are defined, and the paired t-test."""
    out: dict[str, float] = {}
    both = ~(np.isnan(xa) | np.isnan(xb))
    if both.any():
        out.update(baseline_image_pxap=float(xa[both].mean()), pixelcam_image_pxap=float(xb[both].mean()))
    try:
        t = paired_ttest(xa, xb)
        out.update(t=t.t, p=t.p, n=t.n, df=t.n - 1, mean_diff=t.mean_diff)
    except ValueError:
        pass  # fewer than 2 images with both FG and BG
    return out


def paired_bars(rec: StudyRecords, tests: list[dict[str, Any]]) -> bytes | None:
    """Grouped bars of the tested quantity, mean per-image PxAP, of reference vs variant per comparison and
    pairing (baseline vs NEGEV or PixelCAM, NEGEV vs PixelCAM), the t-test p-value above each pair; the
    pooled PxAP of each is a black tick on its bar."""
    rows = [t for t in tests if "baseline_image_pxap" in t]
    if not rows:
        return None
    fig = Figure(figsize=(max(6.0, 1.1 * len(rows) + 2), 3.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["baseline_image_pxap"] for r in rows], 0.4, label="reference (left)", color="#8c8c8c")
    ax.bar(x + 0.2, [r["pixelcam_image_pxap"] for r in rows], 0.4, label="variant (right)", color="#d6604d")
    pooled = [
        (i + dx, r[k])
        for i, r in enumerate(rows)
        for dx, k in ((-0.2, "baseline_pxap"), (0.2, "pixelcam_pxap"))
        if r[k] is not None
    ]
    if pooled:
        ax.scatter(
            *zip(*pooled, strict=True), marker="_", s=300, color="black", label="pooled PxAP", zorder=3
        )
    for i, r in enumerate(rows):
        top = max(
            r["baseline_image_pxap"],
            r["pixelcam_image_pxap"],
            r["baseline_pxap"] or 0,
            r["pixelcam_pxap"] or 0,
        )
        ax.text(i, top + 1.5, f"p={r['p']:.2g}" if "p" in r else "p=n/a", ha="center", fontsize=8)
    ax.set_xticks(
        x,
        [f"{r['baseline']} |\n{r['pixelcam']}\n{r['source']}\n-> {r['target']}" for r in rows],
        fontsize=7,
        rotation=0,
    )
    ax.set_ylabel("mean per-image test PxAP (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Reference | variant: mean per-image PxAP (paired t-test p above)", fontsize=10)
    return _png(fig)


def stain_curves(rec: StudyRecords) -> bytes | None:
    """PxAP and CL against the stain-shift level, one line per model (and evaluated domain)."""
    if not rec.stain:
        return None
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
    for rep in rec.stain:
        lv = [r["level"] for r in rep["rows"]]
        style = "--" if method_class(rep["method"]).is_baseline() else "-"
        name = f"{rep.get('label', rep['method'])} <- {rep['source']} on {rep['domain']}"
        for ax, metric in zip(axes, ("pxap", "cl")):
            ax.plot(lv, [r[metric] for r in rep["rows"]], style, marker="o", ms=3, label=name)
    for ax, title in zip(axes, ("PxAP (%)", "CL (%)")):
        ax.set_xlabel("stain-shift level (0 = original stain)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # levels are whole numbers
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    rep0 = rec.stain[0]
    fig.suptitle(f"Stain shift ({rep0['stain']}) toward {rep0['reference']}'s stain", fontsize=10)
    return _png(fig)


def searched(rec: StudyRecords, param: str) -> list[float]:
    """The distinct values PixelCAM trials took for `param` (one value: it was not searched)."""
    return sorted({t.params[param] for t in rec.trials if isinstance(t.params.get(param), float)})


def hyper_scatter(rec: StudyRecords) -> bytes | None:
    """Best valpx PxAP of every PixelCAM trial against lambda (log scale) and n, for those of the two that
    took at least two values (a single value draws one uninformative dot)."""
    params = [(p, log) for p, log in (("lam", True), ("n", False)) if len(searched(rec, p)) >= 2]
    if not params:
        return None
    trials = [t for t in rec.trials if any(isinstance(t.params.get(p), float) for p, _ in params)]
    fig = Figure(figsize=(5 * len(params), 3.6), layout="constrained")
    for i, (param, log) in enumerate(params):
        ax = fig.add_subplot(1, len(params), i + 1)
        for key in dict.fromkeys(t.key for t in trials):
            pts = [
                (t.params[param], t.score)
                for t in trials
                if t.key == key and isinstance(t.params.get(param), float)
            ]
            if pts:
                ax.scatter(*zip(*pts), s=28, label=key.replace("__", " / "))
        if log:
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # n is a count
        ax.set_xlabel("lambda" if param == "lam" else "n (pixels per class)")
        ax.set_ylabel("best valpx PxAP (%)")
        ax.grid(alpha=0.3)
    fig.axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle("PixelCAM sensitivity: B-LOC PxAP of each trial", fontsize=10)
    return _png(fig)


def optuna_history(rec: StudyRecords) -> bytes | None:
    """Per Tune experiment with two trials or more: each trial's best valpx PxAP in launch order and the
    best so far."""
    keys = [k for k in dict.fromkeys(t.key for t in rec.trials) if sum(t.key == k for t in rec.trials) >= 2]
    if not keys:
        return None
    cols = min(4, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows), layout="constrained")
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        scores = [t.score for t in rec.trials if t.key == key]
        ax.plot(range(1, len(scores) + 1), scores, "o", ms=4, label="trial")
        ax.step(range(1, len(scores) + 1), np.maximum.accumulate(scores), where="post", label="best so far")
        ax.set_title(key.replace("__", " / "), fontsize=8)
        ax.set_xlabel("trial", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("valpx PxAP", fontsize=8)
        ax.ticklabel_format(axis="y", useOffset=False)  # PxAP values, not offsets from 17.5
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    fig.suptitle("Optuna optimisation history (TPE + ASHA)", fontsize=10)
    return _png(fig)


def _heat(maps: np.ndarray) -> np.ndarray:
    import matplotlib

    return matplotlib.colormaps["jet"](np.clip(maps.astype(np.float32), 0, 1))[..., :3]


def cam_gallery(rec: StudyRecords, source: str, target: str) -> bytes | None:
    """Rows: gallery images of `target`'s test split; columns: input, ground truth, then each baseline's CAM
    and its PixelCAM map (models trained on `source`)."""
    models = [
        label for label in rec.labels() if (ev := rec.evaluation(label, source)) and target in ev.gallery
    ]
    if not models:
        return None
    gal0 = rec.evaluation(models[0], source).gallery[target]
    n = len(gal0)
    if n == 0:
        return None
    cols = 2 + len(models)
    fig = Figure(figsize=(1.55 * cols, 1.6 * n), layout="constrained")
    for r in range(n):
        img = gal0.image[r]
        panels = [
            ("input", img),
            ("ground truth", np.where(gal0.mask[r][..., None] > 0, [1.0, 0.9, 0.1], img / 255.0)),
        ]
        for label in models:
            g = rec.evaluation(label, source).gallery[target]
            # over the model's own copy of the image: models trained at another `resize` (SAT at 128 px next
            # to CNNs at 144) have their gallery, and maps, at their own size
            panels.append((label, 0.55 * _heat(g.map[r]) + 0.45 * g.image[r] / 255.0))
        for c, (title, arr) in enumerate(panels):
            ax = fig.add_subplot(n, cols, r * cols + c + 1)
            ax.imshow(arr)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=7)
            if c == 0:
                ax.set_ylabel("cancer" if int(gal0.label[r]) == 1 else "normal", fontsize=7)
    fig.colorbar(
        ScalarMappable(Normalize(0, 1), "jet"),
        ax=fig.axes,
        shrink=0.5,
        aspect=30,
        label="map value (0 background, 1 foreground)",
    )
    fig.suptitle(f"CAMs: trained on {source}, {target} test images", fontsize=9)
    return _png(fig)


def separability_hist(rec: StudyRecords) -> bytes | None:
    """Per-image FG/BG separability J of the encoder features, baseline vs PixelCAM, in-domain test splits."""
    pairs = []
    for src in rec.sources:
        for base in rec.methods:
            b = rec.evaluation(base, src)
            for label in rec.labels():
                p = rec.evaluation(label, src) if label_parts(label) == ("pixelcam", base) else None
                if b and p and src in b.details and src in p.details:
                    pairs.append((src, base, label, b.details[src].j, p.details[src].j))
    if not pairs:
        return None
    cols = min(4, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig = Figure(figsize=(3.4 * cols, 2.8 * rows), layout="constrained")
    for i, (src, base, label, jb, jp) in enumerate(pairs):
        ax = fig.add_subplot(rows, cols, i + 1)
        jb = np.asarray([v for v in jb if v is not None and math.isfinite(v)])
        jp = np.asarray([v for v in jp if v is not None and math.isfinite(v)])
        both = np.concatenate([jb, jp]) if jb.size + jp.size else np.zeros(1)
        bins = np.linspace(0, max(float(both.max()), 1e-6), 16)
        ax.hist(jb, bins=bins, alpha=0.6, label=f"{base} (mean {jb.mean() if jb.size else float('nan'):.3f})")
        ax.hist(
            jp, bins=bins, alpha=0.6, label=f"{label} (mean {jp.mean() if jp.size else float('nan'):.3f})"
        )
        ax.set_title(f"{src} (in-domain test)", fontsize=8)
        ax.set_xlabel("J = tr(S_B) / tr(S_W)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_ylabel("images", fontsize=8)
        # below the axes: inside, the legend hides the bars of small splits
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncols=1, frameon=False)
    fig.suptitle(
        "FG/BG separability of the encoder's pixel features (higher = easier to separate)", fontsize=9
    )
    return _png(fig)
