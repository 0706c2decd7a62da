"""The commands behind `pixelcam predict` and `pixelcam data synth-slide` (whole-slide images): like
`commands`, each imports what it needs and returns the exit code."""

from __future__ import annotations

import argparse
import sys

from pixelcam.errors import ConfigError

MAX_SYNTH_SLIDE = 16384  # its coarsest level is built from one level-0 strip of the whole slide (0.8 GB)


def cmd_synth_slide(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.size > MAX_SYNTH_SLIDE:  # before anything is read or allocated
        raise ConfigError(
            f"--size {args.size}: a synthetic slide is at most {MAX_SYNTH_SLIDE} px a side (built in memory)"
        )

    from pixelcam.data import open_dataset
    from pixelcam.evaluation.slides.synthetic import write_synthetic_slide

    ds = open_dataset(args.data)
    if args.domain not in ds.domains:
        raise ConfigError(f"--domain {args.domain!r}: {args.data} has {', '.join(ds.domains)}")
    if not args.out.lower().endswith((".tif", ".tiff")):
        raise ConfigError(f"--out {args.out}: expected a .tif file name")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    mask = write_synthetic_slide(args.out, ds, args.domain, args.size, patch=args.patch, seed=args.seed)
    print(f"wrote {args.out} ({args.size} px, 0.5 um/px at level 0) and its ROI mask {mask}")
    return 0


def expand(patterns: list[str], flag: str) -> list[str]:
    """Paths of shell-style patterns (`*`, `?`, `[`) in order, each once; ConfigError naming the flag for a
    pattern that matches nothing."""
    import glob

    out: list[str] = []
    for p in patterns:
        hits = sorted(glob.glob(p)) if any(c in p for c in "*?[") and "://" not in p else [p]
        if not hits:
            raise ConfigError(f"{flag}: {p!r} matches no file")
        out.extend(h for h in hits if h not in out)
    return out


def slide_paths(slide_patterns: list[str], mask_patterns: list[str]) -> tuple[list[str], list[str]]:
    """(slides, masks): a mask that a `--slides` pattern also matches (`slides/*.tif` beside
    `slides/*_mask.tif`) is a mask, not a slide."""
    masks = expand(mask_patterns, "--mask")
    slides = [s for s in expand(slide_patterns, "--slides") if s not in set(masks)]
    if not slides:
        raise ConfigError("--slides: every file it matches is a --mask")
    return slides, masks


def cmd_predict(args: argparse.Namespace) -> int:
    """Slides -> heatmaps; exit 0 when every slide was done, 1 when any was skipped (named on stderr)."""
    from pixelcam.evaluation.slides.predict import PredictOptions, predict_slides
    from pixelcam.storage.lock import exclusive

    slides, masks = slide_paths(args.slides, args.masks)

    opts = PredictOptions(
        checkpoint=args.checkpoint,
        out=args.out,
        mpp=args.mpp,
        level=args.level,
        tile=args.tile,
        overlap=args.overlap,
        stride=args.stride,
        batch_size=args.batch_size,
        actors=args.actors,
        gpus_per_actor=args.gpus_per_actor,
        cpus_per_actor=args.cpus_per_actor,
        precision=args.precision,
        cam_class=args.cam_class,
        min_tissue=args.min_tissue,
        masks=masks,
        top_k=args.top_k,
        heatmap_format=args.heatmap_format,
        threshold=args.threshold,
        overwrite=args.overwrite,
        mlflow=not args.no_mlflow,
    )
    with exclusive(args.out, "prediction output"):  # one writer per output directory
        report = predict_slides(slides, opts)
    done = len(report["slides"]) - len(report["failed"])
    rate = f", {report['tiles_per_s']:.1f} tiles/s" if report["tiles_per_s"] else ""
    if report.get("steady_tiles_per_s"):  # what a larger slide would run at, start-up left out
        rate += f", {report['steady_tiles_per_s']:.1f} at steady state"
    print(f"predict: {done} of {len(report['slides'])} slides -> {args.out} ({report['tiles']} tiles{rate})")
    for name in report["failed"]:
        print(f"predict: FAILED {name}: {report['slides'][name]['error']}", file=sys.stderr)
    return 1 if report["failed"] else 0
