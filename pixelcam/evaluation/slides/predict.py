"""`pixelcam predict`: a trained model over whole slides, one heatmap per slide.

Per slide: open and check it, pick the level (`level`, or the one nearest `mpp`), detect tissue on a
thumbnail, lay tiles on tissue; every slide's tiles go through one Ray Data pipeline (`pipeline.run_tiles`),
whose output batches are stitched as they arrive. Outputs per slide, in `OUT/NAME/`: `heatmap.ome.tif`
(pyramidal OME-TIFF; `heatmap.tif` with `heatmap_format="tiff"`), `contours.geojson` (QuPath annotations
at tau), `overview.png`, `top_tiles.png`, `tiles.parquet` and `summary.json`; they are written into a
temporary sibling directory and renamed into place, so a slide's directory is complete or absent. A slide
that cannot be read is named and skipped; the others complete. `OUT/predict.json` lists every slide's
outcome and `OUT/slides.html` is the slide dashboard. With masks (one binary mask per slide), the
slide-level PxAP of the heatmap against it.
"""

from __future__ import annotations

import heapq
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelcam.errors import ConfigError, SlideError
from pixelcam.evaluation.slides.options import PredictOptions, SlideJob, check_options
from pixelcam.evaluation.slides.outputs import DASHBOARD, SUMMARY, finish_slide, log_mlflow
from pixelcam.evaluation.slides.reader import choose_level, open_slide, slide_name, thumbnail
from pixelcam.evaluation.slides.tiles import TileGrid
from pixelcam.evaluation.slides.tissue import tissue_mask
from pixelcam.storage.atomic import remove_stale_temporaries, temporary_prefix, write_json_atomic

__all__ = ["PredictOptions", "predict_slides"]

TOP_TILE_TISSUE = 0.8  # tissue fraction a tile needs to be among the top-scoring tiles shown


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
    job = SlideJob(index, slide, info, level, grid, positions, fractions, thumb, tissue, scale, workdir)
    job.stitcher = Stitcher(grid, opts.stride, workdir)
    return job


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
    from pixelcam.runtime.checkpoint import load_checkpoint, resolve_checkpoint_dir

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    began = time.perf_counter()
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
    try:  # whatever stops the run (an error, Ctrl-C, SIGTERM), no working directory is left behind
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
        total = sum(len(j.positions) for j in jobs)
        timing = _stream(jobs, opts, checkpoint, class_names, cam_class, score_class, log)
        outputs_began = time.perf_counter()
        for job in jobs:
            try:
                results[job.info.name] = finish_slide(
                    job, opts, ck, class_names, score_class, total, timing.seconds
                )
                log(f"predict: {job.info.name}: wrote {out / job.info.name}")
            except SlideError as exc:
                results[job.info.name] = {"path": job.info.path, "error": str(exc)}
                log(f"predict: failed {job.info.path}: {exc}")
        outputs_s = time.perf_counter() - outputs_began
    finally:
        for job in jobs:
            job.stitcher.close()
            shutil.rmtree(job.workdir, ignore_errors=True)
    failed = sorted(n for n, r in results.items() if "error" in r)
    report = {
        "options": asdict(opts),
        "checkpoint": checkpoint,
        "method": ck.method,
        "class_names": class_names,
        "tiles": total,
        "seconds": timing.seconds,  # the pipeline: its start to its last batch
        "outputs_s": outputs_s,  # every slide's files: heatmap, contours, overview, top tiles, viewer, ...
        "total_s": time.perf_counter() - began,  # the whole command but its MLflow record
        "tiles_per_s": total / timing.seconds if timing.seconds else None,
        "first_batch_s": timing.first_batch_s,
        "steady_tiles_per_s": timing.steady_tiles_per_s,  # between 10 % and 90 % of the tiles
        "slides": results,
        "failed": failed,
    }
    write_json_atomic(out / SUMMARY, report)
    from pixelcam.report.slides import build_slides_dashboard

    build_slides_dashboard(out, out / DASHBOARD)
    if opts.mlflow:
        log_mlflow(report, out)
    return report


@dataclass(frozen=True)
class StreamTiming:
    """When the pipeline's batches arrived: seconds from its start to its last batch and to its first, and
    the steady rate (tiles/s between 10 % and 90 % of the tiles: start-up and tail left out; None for a run
    of fewer than STEADY_MIN_BATCHES batches, too short to have one)."""

    seconds: float = 0.0
    first_batch_s: float = 0.0
    steady_tiles_per_s: float | None = None


STEADY_MIN_BATCHES = 8
STEADY_WINDOW = (0.1, 0.9)


def steady_rate(
    arrivals: Sequence[tuple[float, int]], window: tuple[float, float] = STEADY_WINDOW
) -> float | None:
    """Tiles/s between the first batch that brings the count to `window[0]` of the total and the first that
    brings it to `window[1]`, from (seconds since start, tiles so far) per batch, in arrival order."""
    if len(arrivals) < STEADY_MIN_BATCHES:
        return None
    total = arrivals[-1][1]
    lo = next(a for a in arrivals if a[1] >= window[0] * total)
    hi = next(a for a in arrivals if a[1] >= window[1] * total)
    return (hi[1] - lo[1]) / (hi[0] - lo[0]) if hi[0] > lo[0] else None


def _stream(
    jobs: list[SlideJob],
    opts: PredictOptions,
    checkpoint: str,
    class_names: list[str],
    cam_class: int | None,
    score_class: int,
    log: Callable[[str], None],
) -> StreamTiming:
    """Every job's tiles through the Ray Data pipeline, stitched as batches arrive; returns when they
    arrived."""
    from pixelcam.evaluation.slides.pipeline import Resources, run_tiles
    from pixelcam.runtime.cluster import init_ray

    total = sum(len(j.positions) for j in jobs)
    if not total:
        return StreamTiming()
    import ray

    init_ray(quiet=True)
    res = Resources.plan(opts.actors, opts.gpus_per_actor, opts.cpus_per_actor, ray.cluster_resources())
    start = time.perf_counter()
    done, shown, arrivals = 0, -1, []
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
        consume_batch(batch, jobs, class_names, score_class, opts.top_k)
        done += len(batch["slide"])
        arrivals.append((time.perf_counter() - start, done))
        if 10 * done // total > shown:
            shown = 10 * done // total
            log(f"predict: {done}/{total} tiles ({done / max(arrivals[-1][0], 1e-9):.1f} tiles/s)")
    return StreamTiming(
        time.perf_counter() - start, arrivals[0][0] if arrivals else 0.0, steady_rate(arrivals)
    )


def consume_batch(
    batch: dict[str, np.ndarray], jobs: list[SlideJob], class_names: list[str], score_class: int, top_k: int
) -> None:
    """Stitch one output batch into its slides and keep tile records and the top-k tiles."""
    probs = batch["probs"]
    for i in range(len(batch["slide"])):
        job = jobs[int(batch["slide"][i])]  # a job's index is its place in `jobs`
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
