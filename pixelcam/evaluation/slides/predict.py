"""`pixelcam predict`: a trained model over whole slides, one heatmap per slide.

Per slide: open and check it, pick the level (`level`, or the one nearest `mpp`), detect tissue on a
thumbnail, lay tiles on tissue; every slide's tiles go through one Ray Data pipeline (`pipeline.run_tiles`),
whose output batches are stitched as they arrive. Outputs per slide, in `OUT/NAME/`: `heatmap.tif`
(pyramidal), `overview.png`, `top_tiles.png`, `tiles.parquet` and `summary.json`; they are written into a
temporary sibling directory and renamed into place, so a slide's directory is complete or absent. A slide
that cannot be read is named and skipped; the others complete. `OUT/predict.json` lists every slide's
outcome and `OUT/slides.html` is the slide dashboard. With masks (one binary mask per slide), the
slide-level PxAP of the heatmap against it.
"""

from __future__ import annotations

import heapq
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelcam.errors import ConfigError, SlideError
from pixelcam.evaluation.slides.reader import (
    SlideInfo,
    choose_level,
    open_slide,
    read_region,
    slide_name,
    thumbnail,
)
from pixelcam.evaluation.slides.tiles import TileGrid
from pixelcam.evaluation.slides.tissue import tissue_mask
from pixelcam.io import remove_stale_temporaries, temporary_prefix, write_json_atomic

SUMMARY = "predict.json"
DASHBOARD = "slides.html"
TOP_TILE_TISSUE = 0.5  # tissue fraction a tile needs to be among the top-scoring tiles shown


@dataclass
class PredictOptions:
    """Settings of one `pixelcam predict` (recorded in every summary)."""

    checkpoint: str
    out: str
    mpp: float | None = None
    level: int | None = None
    tile: int = 224
    overlap: int = 32
    stride: int = 16
    batch_size: int = 32
    actors: int = 1
    gpus_per_actor: float = 0.0
    cpus_per_actor: float | None = None
    precision: str | None = None
    cam_class: str | None = None
    min_tissue: float = 0.05
    masks: list[str] = field(default_factory=list)
    top_k: int = 8
    overwrite: bool = False
    mlflow: bool = True


@dataclass
class SlideJob:
    """A slide prepared for the pipeline (its stitcher and tile records fill as batches arrive)."""

    index: int
    info: SlideInfo
    level: int
    grid: TileGrid
    positions: np.ndarray
    tissue_fractions: np.ndarray
    thumb: np.ndarray
    tissue: np.ndarray
    tissue_scale: float
    workdir: Path
    stitcher: Any = None
    records: list[dict[str, Any]] = field(default_factory=list)
    top: list[tuple[float, int, int, int, np.ndarray]] = field(default_factory=list)
    error: str | None = None


def find_mask(slide: SlideInfo, masks: Sequence[str]) -> str | None:
    """The mask of `slide` among `masks`: the file whose name (without extension) is the slide's name, or
    the slide's name + `_mask` / `.mask` / `_tumor`."""
    wanted = {slide.name + s for s in ("", "_mask", ".mask", "_tumor", "-mask")}
    for m in masks:
        if slide_name(m) in wanted:
            return m
    return None


def read_mask(path: str, shape: tuple[int, int]) -> np.ndarray:
    """bool (H, W) = `shape`: a binary mask image or (pyramidal) TIFF, nearest-resized to the heatmap."""
    from PIL import Image

    try:
        try:
            slide, info = open_slide(path)
            lvl = int(np.argmin([abs(w - shape[1]) for w, _ in info.dimensions]))
            w, h = info.dimensions[lvl]
            arr = np.asarray(slide.read_region((0, 0), lvl, (w, h)))
            arr = arr[..., 0] if arr.ndim == 3 else arr
        except SlideError:  # a plain image (PNG, single-level TIFF)
            Image.MAX_IMAGE_PIXELS = None
            with Image.open(path) as im:
                arr = np.asarray(im.convert("L"))
    except (OSError, ValueError) as exc:
        raise SlideError(f"{path}: mask cannot be read ({type(exc).__name__}: {exc})") from None
    img = Image.fromarray((arr > 0).astype(np.uint8) * 255)
    return np.asarray(img.resize((shape[1], shape[0]), Image.NEAREST)) > 0


def _prepare(index: int, path: str, opts: PredictOptions, out: Path) -> SlideJob:
    from pixelcam.evaluation.slides.stitch import Stitcher

    slide, info = open_slide(path)
    level = choose_level(info, opts.mpp, opts.level)
    target = out / info.name
    if target.exists() and not opts.overwrite:
        raise SlideError(f"{path}: {target} exists (pass --overwrite to replace it)")
    thumb, scale = thumbnail(slide, info)
    tissue = tissue_mask(thumb)
    w, h = info.dimensions[level]
    grid = TileGrid(level, w, h, info.downsamples[level], opts.tile, opts.overlap)
    positions, fractions = grid.tissue_positions(tissue, scale, opts.min_tissue)
    remove_stale_temporaries(target)
    workdir = Path(out / (temporary_prefix(target) + "work"))
    if workdir.exists():
        shutil.rmtree(workdir)
    job = SlideJob(index, info, level, grid, positions, fractions, thumb, tissue, scale, workdir)
    job.stitcher = Stitcher(grid, opts.stride, workdir)
    return job


def check_options(opts: PredictOptions) -> None:
    """ConfigError naming the flag for settings no slide could run with (before anything is read)."""
    if opts.tile < 8:
        raise ConfigError(f"--tile {opts.tile}: expected >= 8 pixels")
    if not 0 <= opts.overlap < opts.tile:
        raise ConfigError(f"--overlap {opts.overlap}: expected 0 <= overlap < --tile ({opts.tile})")
    if opts.tile % opts.stride or opts.overlap % opts.stride:
        raise ConfigError(
            f"--heatmap-stride {opts.stride}: must divide --tile ({opts.tile}) and --overlap ({opts.overlap})"
        )
    if not 0.0 <= opts.min_tissue <= 1.0:
        raise ConfigError(f"--min-tissue {opts.min_tissue}: expected a fraction in [0, 1]")


def _class_index(name: str | None, class_names: list[str]) -> int | None:
    if name is None:
        return None
    if name in class_names:
        return class_names.index(name)
    raise ConfigError(f"--class {name!r}: the checkpoint's classes are {class_names}")


def predict_slides(
    slides: Sequence[str], opts: PredictOptions, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run `opts.checkpoint` over `slides`; returns (and writes to OUT/predict.json) {options, slides:
    {name: summary or {"error": ...}}, failed: [...]}. Raises only for errors that concern every slide
    (checkpoint, options); a slide's own failure is recorded and the others go on."""
    from pixelcam.evaluation.slides.pipeline import Resources, run_tiles
    from pixelcam.train.checkpoint import load_checkpoint, resolve_checkpoint_dir
    from pixelcam.train.cluster import init_ray

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if not slides:
        raise ConfigError("--slides matched no file")
    check_options(opts)
    checkpoint = str(resolve_checkpoint_dir(opts.checkpoint))
    ck = load_checkpoint(checkpoint)
    class_names = list(ck.meta.get("class_names", []))
    cam_class = _class_index(opts.cam_class, class_names)
    score_class = cam_class if cam_class is not None else max(len(class_names) - 1, 0)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [slide_name(p) for p in slides]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"--slides: two slides would write the same output {dup[0]!r} (rename one)")

    results: dict[str, Any] = {}
    jobs: list[SlideJob] = []
    for path in slides:
        try:
            job = _prepare(len(jobs), path, opts, out)
        except SlideError as exc:
            results[slide_name(path)] = {"path": str(path), "error": str(exc)}
            log(f"predict: skipped {path}: {exc}")
            continue
        jobs.append(job)
        log(
            f"predict: {job.info.name}: level {job.level} ({job.grid.width}x{job.grid.height} px), "
            f"{len(job.positions)} tiles on tissue of {len(job.grid.all_positions())}"
        )

    elapsed = first_batch_s = 0.0
    total = sum(len(j.positions) for j in jobs)
    if total:
        import ray

        init_ray(quiet=True)
        res = Resources.plan(opts.actors, opts.gpus_per_actor, opts.cpus_per_actor, ray.cluster_resources())
        start = time.perf_counter()
        done, shown = 0, -1
        batches = run_tiles(
            [j.info.path for j in jobs],
            [(j.index, j.level, j.positions, j.grid.level0(j.positions), j.tissue_fractions) for j in jobs],
            checkpoint,
            tile=opts.tile,
            stride=opts.stride,
            batch_size=opts.batch_size,
            resources=res,
            precision=opts.precision,
            cam_class=cam_class,
        )
        for batch in batches:
            if not done:  # Ray Data's start-up, the actors' model loading and the first batch
                first_batch_s = time.perf_counter() - start
            _consume(batch, jobs, class_names, score_class, opts.top_k)
            done += len(batch["slide"])
            if 10 * done // total > shown:
                shown = 10 * done // total
                rate = done / max(time.perf_counter() - start, 1e-9)
                log(f"predict: {done}/{total} tiles ({rate:.1f} tiles/s)")
        elapsed = time.perf_counter() - start
    for job in jobs:
        try:
            results[job.info.name] = _finish(job, opts, ck, class_names, score_class, total, elapsed)
            log(f"predict: {job.info.name}: wrote {out / job.info.name}")
        except SlideError as exc:
            results[job.info.name] = {"path": job.info.path, "error": str(exc)}
            log(f"predict: failed {job.info.path}: {exc}")
        finally:
            job.stitcher.close()
            shutil.rmtree(job.workdir, ignore_errors=True)
    failed = sorted(n for n, r in results.items() if "error" in r)
    report = {
        "options": asdict(opts),
        "checkpoint": checkpoint,
        "method": ck.method,
        "class_names": class_names,
        "tiles": total,
        "seconds": elapsed,
        "tiles_per_s": total / elapsed if elapsed else None,
        "first_batch_s": first_batch_s,
        "slides": results,
        "failed": failed,
    }
    write_json_atomic(out / SUMMARY, report)
    from pixelcam.report.slides import build_slides_dashboard

    build_slides_dashboard(out, out / DASHBOARD)
    if opts.mlflow:
        _log_mlflow(report, out)
    return report


def _consume(
    batch: dict[str, np.ndarray], jobs: list[SlideJob], class_names: list[str], score_class: int, top_k: int
) -> None:
    """Stitch one output batch into its slides and keep tile records and the top-k tiles."""
    by_index = {j.index: j for j in jobs}
    probs = batch["probs"]
    for i in range(len(batch["slide"])):
        job = by_index[int(batch["slide"][i])]
        if job.error:
            continue
        if batch["error"][i]:
            job.error = str(batch["error"][i])
            continue
        x, y = int(batch["x"][i]), int(batch["y"][i])
        job.stitcher.add(x, y, batch["map"][i])
        rec = {
            "slide": job.info.name,
            "level": job.level,
            "x": x,
            "y": y,
            "x0": int(batch["x0"][i]),
            "y0": int(batch["y0"][i]),
            "tissue": float(batch["tissue"][i]),
            "map_mean": float(batch["map_mean"][i]),
            "map_max": float(batch["map_max"][i]),
            "map_area": float(batch["map_area"][i]),
        }
        if probs.shape[1]:
            rec["pred"] = class_names[int(probs[i].argmax())]
            rec.update({f"prob_{c}": float(probs[i, k]) for k, c in enumerate(class_names)})
        job.records.append(rec)
        if rec["tissue"] < TOP_TILE_TISSUE:  # edge tiles mostly on glass are not what a reader wants to see
            continue
        score = float(probs[i, score_class]) if probs.shape[1] else rec["map_mean"]
        item = (score, rec["map_mean"], x, y, batch["map"][i])
        if len(job.top) < top_k:
            heapq.heappush(job.top, item)
        elif item[:2] > job.top[0][:2]:
            heapq.heapreplace(job.top, item)


def _finish(
    job: SlideJob,
    opts: PredictOptions,
    ck: Any,
    class_names: list[str],
    score_class: int,
    total: int,
    elapsed: float,
) -> dict[str, Any]:
    """Write the slide's outputs into its working directory, then rename it to OUT/NAME."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pixelcam.evaluation.slides.heatmap import write_heatmap_tiff
    from pixelcam.evaluation.slides.overview import overview_png, top_tiles_png
    from pixelcam.metrics.pxap import pxap

    if job.error:
        raise SlideError(job.error)
    if len(job.records) != len(job.positions):
        raise SlideError(f"{job.info.path}: {len(job.records)} of {len(job.positions)} tiles came back")
    wd = job.workdir
    heat = np.lib.format.open_memmap(wd / "heat.npy", "w+", np.uint8, job.stitcher.shape)
    job.stitcher.finish(heat, job.tissue, job.tissue_scale)
    heat_mpp = job.info.level_mpp(job.level)
    heat_mpp = None if heat_mpp is None else heat_mpp * opts.stride
    level0_per_px = job.grid.downsample * opts.stride
    geometry = {
        "slide": job.info.path,
        "level": job.level,
        "level0_per_pixel": level0_per_px,
        "mpp": heat_mpp,
    }
    write_heatmap_tiff(wd / "heatmap.tif", np.asarray(heat), heat_mpp, geometry)
    (wd / "overview.png").write_bytes(overview_png(job.thumb, job.tissue, np.asarray(heat)))
    slide, info = open_slide(job.info.path)
    top = sorted(job.top, key=lambda t: t[:2], reverse=True)
    tiles = [
        read_region(slide, info, *job.grid.level0(np.array([[x, y]]))[0], job.level, opts.tile)
        for *_, x, y, _ in top
    ]
    caps = [f"p={s:.2f} map={m:.2f}" for s, m, *_ in top]
    (wd / "top_tiles.png").write_bytes(top_tiles_png(tiles, [t[4] for t in top], caps))
    pq.write_table(pa.Table.from_pylist(job.records) if job.records else pa.table({}), wd / "tiles.parquet")

    covered = np.asarray(heat) > 0
    summary: dict[str, Any] = {
        "slide": info.name,
        "path": info.path,
        "backend": info.backend,
        "level": job.level,
        "level_size": [job.grid.width, job.grid.height],
        "downsample": job.grid.downsample,
        "mpp": info.level_mpp(job.level),
        "heatmap": {
            "size": [heat.shape[1], heat.shape[0]],
            "level0_per_pixel": level0_per_px,
            "mpp": heat_mpp,
        },
        "tile": opts.tile,
        "overlap": opts.overlap,
        "tiles": len(job.records),
        "tiles_on_grid": int(len(job.grid.all_positions())),
        "tissue_fraction": float(job.tissue.mean()),
        "heat_mean_on_tissue": float(np.asarray(heat)[covered].mean() / 255.0) if covered.any() else 0.0,
        "method": ck.method,
        "normalization": ck.meta.get("normalization", "minmax"),
        "map_class": class_names[score_class] if opts.cam_class else "predicted",
        "score_class": class_names[score_class] if class_names else None,
        "seconds_shared": elapsed,
        "tiles_per_s_all_slides": total / elapsed if elapsed else None,
    }
    if job.records and "pred" in job.records[0]:
        key = f"prob_{class_names[score_class]}"
        p = np.array([r[key] for r in job.records])
        summary.update(
            score_mean=float(p.mean()),
            score_max=float(p.max()),
            positive_tile_fraction=float((p >= 0.5).mean()),
        )
    mask_path = find_mask(info, opts.masks) if opts.masks else None
    if opts.masks and mask_path is None:
        summary["mask"] = None
    if mask_path:
        mask = read_mask(mask_path, heat.shape)
        summary["mask"] = mask_path
        if mask.any():
            summary["pxap"] = pxap(np.asarray(heat, np.float32)[None] / 255.0, mask[None])
            summary["roi_prior"] = float(mask.mean() * 100.0)
    write_json_atomic(wd / "summary.json", summary)
    del heat
    for f in ("heat.npy", "sum.npy", "weight.npy"):
        (wd / f).unlink(missing_ok=True)
    _replace_dir(wd, Path(opts.out) / info.name)
    return summary


def _replace_dir(src: Path, dst: Path) -> None:
    """Rename `src` to `dst`; an existing `dst` (--overwrite) is moved aside first and removed after."""
    old = None
    if dst.exists():
        old = dst.with_name(temporary_prefix(dst) + "old")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _log_mlflow(report: dict[str, Any], out: Path) -> None:
    """One MLflow run of kind `inference`: options as params, per-slide metrics, summaries and overviews."""
    from pixelcam.tracking import RunKind, slide_metric, start_run

    opts = report["options"]
    params = {k: v for k, v in opts.items() if k not in ("masks",)}
    params.update(method=report["method"], checkpoint=report["checkpoint"], slides=len(report["slides"]))
    run = start_run(RunKind.INFERENCE, f"predict-{out.name}", experiment="pixelcam-inference", params=params)
    metrics = {"tiles": report["tiles"], "failed_slides": len(report["failed"])}
    if report["tiles_per_s"]:
        metrics["tiles_per_s"] = report["tiles_per_s"]
    for name, s in report["slides"].items():
        if "error" in s:
            continue
        for key in ("tiles", "score_mean", "positive_tile_fraction", "pxap", "roi_prior"):
            if s.get(key) is not None:
                metrics[slide_metric(key, name)] = s[key]
        for f in ("overview.png", "top_tiles.png", "summary.json"):
            if (out / name / f).exists():
                run.data((out / name / f).read_bytes(), f"slides/{name}/{f}")
    run.metrics(metrics)
    run.data((out / SUMMARY).read_bytes(), SUMMARY)
    run.data((out / DASHBOARD).read_bytes(), DASHBOARD)
    run.finish(
        "FAILED" if report["failed"] and len(report["failed"]) == len(report["slides"]) else "FINISHED"
    )
