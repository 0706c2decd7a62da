"""A slide's outputs, written once its tiles are in: heatmap (OME-)TIFF, contours GeoJSON, overview and
top-tile PNGs, tile Parquet, summary JSON (with the slide-level PxAP against a mask), renamed into place as
one directory; and the MLflow run of kind `inference` over a whole `predict`."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pixelcam.errors import SlideError
from pixelcam.evaluation.slides.options import PredictOptions, SlideJob
from pixelcam.evaluation.slides.reader import SlideInfo, open_slide, read_region, slide_name
from pixelcam.storage.atomic import replace_with, write_json_atomic

SUMMARY = "predict.json"
DASHBOARD = "slides.html"


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


CONTOURS = "contours.geojson"


def contour_threshold(opts: PredictOptions, ck: Any) -> float:
    """The contours' map value: `--threshold`, else the run's tau (chosen on valpx)."""
    return float(opts.threshold if opts.threshold is not None else ck.meta["tau"])


def write_contours(wd: Path, heat: np.ndarray, opts: PredictOptions, ck: Any, level0_per_px: float) -> dict:
    """Write `contours.geojson` (QuPath annotations at level-0 coordinates) at `--threshold` or the run's
    tau; returns what the summary records of it."""
    from pixelcam.evaluation.slides.contours import MIN_THRESHOLD, ContourStyle, contours_geojson

    given = opts.threshold is not None
    tau = contour_threshold(opts, ck)
    style = ContourStyle(name=opts.cam_class or ck.method)  # QuPath's class: the mapped class or the method
    collection = contours_geojson(heat, max(tau, MIN_THRESHOLD), level0_per_px, style)
    write_json_atomic(wd / CONTOURS, collection)
    return {
        "file": CONTOURS,
        "threshold": tau,
        "threshold_from": "--threshold" if given else "the run's tau (chosen on valpx)",
        "regions": len(collection["features"]),
    }


def tile_tissue(job: SlideJob, x: int, y: int, cells: int) -> np.ndarray:
    """bool (cells, cells): the slide's tissue mask at the centres of the cells of the map of the tile at
    level position (x, y) (the mask is the thumbnail's, `tissue_scale` level-0 pixels per mask pixel)."""
    x0, y0 = job.grid.level0(np.array([[x, y]]))[0]
    centres = (np.arange(cells) + 0.5) * job.grid.tile / cells * job.grid.downsample
    h, w = job.tissue.shape
    cols = np.minimum(((x0 + centres) / job.tissue_scale).astype(np.int64), w - 1)
    rows = np.minimum(((y0 + centres) / job.tissue_scale).astype(np.int64), h - 1)
    return job.tissue[rows[:, None], cols[None, :]]


def read_top_tiles(job: SlideJob, opts: PredictOptions) -> list[tuple[tuple, np.ndarray]]:
    """The top-scoring tiles, best first: (their record in `job.top`, their pixels read from the slide)."""
    top = sorted(job.top, key=lambda t: t[:2], reverse=True)
    return [
        (t, read_region(job.handle, job.info, *job.grid.level0(np.array([t[2:4]]))[0], job.level, opts.tile))
        for t in top
    ]


def write_pictures(
    job: SlideJob, heat: np.ndarray, mask: np.ndarray | None, top: list[tuple[tuple, np.ndarray]]
) -> None:
    """overview.png (with the ROI outline when a mask was given) and top_tiles.png of `top`
    (`read_top_tiles`), whose maps are zero off tissue as the heatmap is."""
    from pixelcam.evaluation.slides.overview import overview_png, top_tiles_png

    (job.workdir / "overview.png").write_bytes(overview_png(job.thumb, job.tissue, heat, roi=mask))
    maps = [m * tile_tissue(job, x, y, m.shape[0]) for (*_, x, y, m), _ in top]
    caps = [f"p={s:.2f} map={m:.2f}" for (s, m, *_), _ in top]
    (job.workdir / "top_tiles.png").write_bytes(top_tiles_png([tile for _, tile in top], maps, caps))


def finish_slide(
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

    from pixelcam.evaluation.slides.heatmap import write_heatmap
    from pixelcam.evaluation.slides.zoom import write_slide_viewer
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
    info = job.info
    mask_path = find_mask(info, opts.masks) if opts.masks else None
    mask = read_mask(mask_path, heat.shape) if mask_path else None
    tau = contour_threshold(opts, ck)
    view = np.asarray(heat)

    top = read_top_tiles(job, opts)  # before the threads: only the viewer's reads the slide's handle
    # the files are independent and their encoders (zlib, JPEG, PNG, GEOS) release the GIL: written side by
    # side, they take about the longest one's time instead of their sum on a machine with a core to spare
    with ThreadPoolExecutor(max_workers=4) as pool:
        heatmap_job = pool.submit(write_heatmap, wd, opts.heatmap_format, view, heat_mpp, geometry)
        contours_job = pool.submit(write_contours, wd, view, opts, ck, level0_per_px)
        viewer_job = pool.submit(write_slide_viewer, job, view, mask, tau, level0_per_px)
        pictures_job = pool.submit(write_pictures, job, view, mask, top)
        pq.write_table(
            pa.Table.from_pylist(job.records) if job.records else pa.table({}), wd / "tiles.parquet"
        )
        pictures_job.result()
        heatmap_file, contours, viewer = heatmap_job.result(), contours_job.result(), viewer_job.result()

    covered = view > 0
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
        "heatmap_file": heatmap_file.name,
        "contours": contours,
        "viewer": viewer,
        "tile": opts.tile,
        "overlap": opts.overlap,
        "tiles": len(job.records),
        "tiles_on_grid": int(len(job.grid.all_positions())),
        "tissue_fraction": float(job.tissue.mean()),
        "heat_mean_on_tissue": float(view[covered].mean() / 255.0) if covered.any() else 0.0,
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
    if opts.masks and mask_path is None:
        summary["mask"] = None
    if mask is not None:
        summary["mask"] = mask_path
        if mask.any():
            summary["pxap"] = pxap(view.astype(np.float32)[None] / 255.0, mask[None])
            summary["roi_prior"] = float(mask.mean() * 100.0)
    write_json_atomic(wd / "summary.json", summary)
    del heat
    for f in ("heat.npy", "sum.npy", "weight.npy"):
        (wd / f).unlink(missing_ok=True)
    replace_with(wd, Path(opts.out) / info.name)
    return summary


def log_mlflow(report: dict[str, Any], out: Path) -> None:
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
