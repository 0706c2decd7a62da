"""Whole-slide inference throughput and memory (`pixelcam predict`), figures side by side from one run.

(1) tiles/s end to end (Ray Data read tasks + model actor pool + stitching, pipeline start to last tile) vs
    the bare forward pass (`model.predict` on the same tiles, already read, same batch and threads);
(1') the steady state, target >= 0.9x the forward pass: `pixelcam predict` on the 16k slide at level 0
    (~3,000 tiles) in a fresh process, `--repeats` times, each between two forward-pass measurements whose
    mean it is compared with (the machine's speed drifts between runs): the pipeline's rate between 10 % and
    90 % of the tiles (start-up and tail left out), and the rate with every output written (heatmap
    OME-TIFF, contours, overview, top tiles, viewer, tile table): tiles / (tiles at the steady rate + the
    outputs' seconds); the median of the runs; and, as a cross-check, the difference of two slide sizes
    (extra tiles per extra second);
(2) 1 vs 2 model actors on the CPU;
(3) peak RSS of the driver (where the stitching happens) for a 4k and a 16k slide, each in a fresh process:
    target flat (the accumulators are memory-mapped, the heatmap is written band by band);
(4) with a GPU (`--gpu`): tiles/s with one GPU actor vs the bare forward on the GPU.

The model is PixelCAM on the default backbone (EfficientNet-Lite0, ImageNet weights); its weights do not
change the cost. Slides are synthetic pyramidal TIFFs (`pixelcam.evaluation.slides.synthetic`).
Run: `.venv/bin/python benchmarks/wsi_inference.py [--backbone efficientnet_lite0] [--repeats 3] [--gpu]`
(about 7 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_checkpoint(root: Path, backbone: str) -> Path:
    from pixelcam.models import create_wsol_model
    from pixelcam.runtime.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = create_wsol_model("pixelcam", backbone, pretrained=backbone == "efficientnet_lite0")  # offline
    meta = {
        "method": "pixelcam",
        "backbone": backbone,
        "class_names": ["normal", "cancer"],
        "source": "synth",
        "resize": 224,
        "epoch": 0,
        "tau": 0.5,
        "metrics": {},
        "normalization": "none",
    }
    return save_checkpoint(root / "ck", model, meta)


def tiles_of(slide: Path, tile: int, overlap: int, level: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(tile images (N, tile, tile, 3), level-0 positions) on tissue, as `predict` lays them."""
    from pixelcam.evaluation.slides.reader import open_slide, read_region, thumbnail
    from pixelcam.evaluation.slides.tiles import TileGrid
    from pixelcam.evaluation.slides.tissue import tissue_mask

    s, info = open_slide(slide)
    thumb, scale = thumbnail(s, info)
    w, h = info.dimensions[level]
    grid = TileGrid(level, w, h, info.downsamples[level], tile, overlap)
    pos, _ = grid.tissue_positions(tissue_mask(thumb), scale)
    pos0 = grid.level0(pos)
    return np.stack([read_region(s, info, x, y, level, tile) for x, y in pos0]), pos0


def forward_only(checkpoint: Path, images: np.ndarray, batch: int, device: str, threads: int) -> float:
    """Tiles/s of the bare forward (`predict`: logits and maps) over `images`, after one warm-up batch."""
    from pixelcam.runtime.checkpoint import load_checkpoint
    from pixelcam.runtime.transforms import to_tensor

    torch.set_num_threads(threads)
    model = load_checkpoint(checkpoint).build_model().to(device).eval()
    with torch.no_grad():
        model.predict(to_tensor(images[:batch]).to(device))
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for i in range(0, len(images), batch):
            model.predict(to_tensor(images[i : i + batch]).to(device))
        if device == "cuda":
            torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - t)


def end_to_end(checkpoint: Path, slide: Path, out: Path, **kw) -> dict:
    """`predict_slides` on one slide: its report (tiles, pipeline seconds, tiles/s)."""
    from pixelcam.evaluation.slides.predict import PredictOptions, predict_slides

    opts = PredictOptions(checkpoint=str(checkpoint), out=str(out), mlflow=False, overwrite=True, **kw)
    return predict_slides([str(slide)], opts, log=lambda msg: None)


RSS_SCRIPT = """
import json, resource, sys
from pixelcam.evaluation.slides.predict import PredictOptions, predict_slides
opts = PredictOptions(checkpoint=sys.argv[1], out=sys.argv[3], mlflow=False, overwrite=True,
                      level=int(sys.argv[4]))
r = predict_slides([sys.argv[2]], opts, log=lambda m: None)
print(json.dumps({"tiles": r["tiles"], "seconds": r["seconds"], "total_s": r["total_s"],
                  "outputs_s": r["outputs_s"], "steady_tiles_per_s": r["steady_tiles_per_s"],
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_rss(checkpoint: Path, slide: Path, out: Path, level: int) -> dict:
    """One `predict` run in a fresh process, as a user's command: its driver's peak RSS, tile count and
    timings (pipeline, outputs, whole command; the steady rate)."""
    res = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(checkpoint), str(slide), str(out), str(level)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def memory_and_steady_state(ck: Path, slides: dict[int, Path], root: Path, level: int, bare: float) -> dict:
    """(3) driver peak RSS per slide size, and the steady rate from the two runs' difference (a cross-check
    of (1'))."""
    small, big = sorted(slides)
    fig: dict = {}
    rss = {}
    for size, p in slides.items():
        rss[size] = peak_rss(ck, p, root / f"rss{size}", level)
    fig["rss"] = rss
    print(f"\n(3) driver peak RSS, level {level}, fresh process per slide")
    for size, r in rss.items():
        print(
            f"  {size:>6} px slide: {r['tiles']:>5} tiles, {r['seconds']:.0f} s, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
    a, b = rss[small]["peak_rss_mib"], rss[big]["peak_rss_mib"]
    print(
        f"  ratio {b / a:.2f}x for {(big / small) ** 2:.0f}x the pixels and "
        f"{rss[big]['tiles'] / max(rss[small]['tiles'], 1):.1f}x the tiles (target: flat)"
    )
    # cross-check of (1'): the pipeline's fixed cost (actor start, model load, first blocks) cancels between
    # the two runs, so the extra tiles per extra second is a steady rate too (noisier: two short runs' jitter)
    extra = rss[big]["tiles"] - rss[small]["tiles"]
    marginal = extra / max(rss[big]["seconds"] - rss[small]["seconds"], 1e-9)
    whole = extra / max(rss[big]["total_s"] - rss[small]["total_s"], 1e-9)
    fig["two_sizes"] = {
        "tiles_per_s": marginal,
        "vs_forward": marginal / bare,
        "with_outputs_tiles_per_s": whole,
    }
    print(
        f"  cross-check of (1'), the two runs' difference: {extra} extra tiles at {marginal:.1f} tiles/s = "
        f"{marginal / bare:.2f}x the forward pass; with every output, command start to end: "
        f"{whole / bare:.2f}x"
    )
    return fig


def plain_actor(checkpoint: Path, images: np.ndarray, batch: int, cpus: float) -> float:
    """Tiles/s of `TileModel` (the pipeline's model step) called in a plain Ray actor of the pipeline's CPUs
    over tiles already in the object store, after a warm-up batch: what the model step costs in a Ray
    worker without Ray Data around it."""
    import ray

    from pixelcam.evaluation.slides.pipeline import bound_model

    @ray.remote(num_cpus=cpus)
    class Plain:
        def __init__(self) -> None:
            self.model = bound_model(checkpoint=str(checkpoint), stride=16, threads=max(1, round(cpus)))()

        def rate(self, tiles: np.ndarray) -> float:
            parts = [tiles[i : i + batch] for i in range(0, len(tiles), batch)]
            self.model({"image": parts[0]})
            t = time.perf_counter()
            for part in parts:
                self.model({"image": part})
            return len(tiles) / (time.perf_counter() - t)

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        return float(ray.get(Plain.remote().rate.remote(ray.put(images))))
    finally:
        ray.shutdown()


def steady_state(ck: Path, slide: Path, images: np.ndarray, root: Path, args: argparse.Namespace) -> dict:
    """(1') `--repeats` runs of `predict` on `slide` at `--steady-level` in a fresh process, each between two
    measurements of the bare forward pass: each run's steady rate and rate with every output against the
    mean of its own two forward passes."""
    runs = []
    for i in range(args.repeats):
        before = forward_only(ck, images, args.batch_size, "cpu", threads=2)
        r = peak_rss(ck, slide, root / f"steady{i}", args.steady_level)
        # the forward pass measured before and after the run: their mean cancels a drift of the machine's
        # speed during it (this shared VM's moves by 10 % within minutes)
        after = forward_only(ck, images, args.batch_size, "cpu", threads=2)
        bare = (before + after) / 2
        steady = r["steady_tiles_per_s"]
        with_outputs = r["tiles"] / (r["tiles"] / steady + r["outputs_s"])
        runs.append(
            {
                **r,
                "forward_only": bare,
                "forward_before_after": [before, after],
                "vs_forward": steady / bare,
                "with_outputs_vs_forward": with_outputs / bare,
            }
        )
    print(
        f"\n(1') steady state: {args.sizes[1]} px slide at level {args.steady_level}, {runs[0]['tiles']} "
        "tiles, a fresh process per run, each between two forward-pass measurements (target >= 0.9x)"
    )
    head = (
        ("forward (before/after)", 24),
        ("steady", 9),
        ("vs fwd", 8),
        ("outputs s", 11),
        ("with outputs", 14),
    )
    print(f"  {'run':<5}" + "".join(f"{h:>{w}}" for h, w in head) + f"{'command s':>11}")
    for i, r in enumerate(runs, 1):
        print(
            f"  {i:<5}{r['forward_only']:>12.1f} ({'/'.join(f'{v:.1f}' for v in r['forward_before_after'])})"
            f"{r['steady_tiles_per_s']:>9.1f}{r['vs_forward']:>7.2f}x"
            f"{r['outputs_s']:>11.1f}{r['with_outputs_vs_forward']:>13.2f}x{r['total_s']:>11.1f}"
        )
    med = {k: float(np.median([r[k] for r in runs])) for k in ("vs_forward", "with_outputs_vs_forward")}
    print(
        f"  median of {len(runs)}: the pipeline {med['vs_forward']:.2f}x the forward pass, with every output "
        f"written {med['with_outputs_vs_forward']:.2f}x (tiles/s in the table; outputs s: every file "
        "after the last tile)"
    )
    # where the gap goes: the same model step in a plain Ray actor (no Ray Data), beside a forward pass
    bare = forward_only(ck, images, args.batch_size, "cpu", threads=2)
    plain = plain_actor(ck, images, args.batch_size, cpus=1.5)
    print(
        f"  the model step alone in a plain Ray actor of the pipeline's 1.5 CPUs: {plain:.1f} tiles/s = "
        f"{plain / bare:.2f}x the forward pass ({bare:.1f}) measured just before"
    )
    return {"runs": runs, "median": med, "level": args.steady_level, "plain_actor": plain, "plain_bare": bare}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--tile", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--sizes", type=int, nargs=2, default=(4096, 16384), help="slides for the RSS check")
    ap.add_argument("--rss-level", type=int, default=1, help="level analysed in the RSS check")
    ap.add_argument(
        "--steady-level", type=int, default=0, help="level of the big slide the steady state runs at"
    )
    ap.add_argument("--repeats", type=int, default=3, help="steady-state runs, each beside its forward pass")
    ap.add_argument("--gpu", action="store_true", help="also measure one GPU actor (needs CUDA)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    import ray

    from pixelcam.data.synth import SynthConfig, generate_synthetic
    from pixelcam.evaluation.slides.synthetic import write_synthetic_slide

    fig: dict = {"backbone": args.backbone, "tile": args.tile, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory(prefix="pixelcam-wsi-bench-") as tmp:
        root = Path(tmp)
        generate_synthetic(
            root / "ds", SynthConfig(domains=["synth-colon"], per_class=12, size=64), workers=1
        )
        ck = make_checkpoint(root, args.backbone)
        small, big = args.sizes
        t = time.perf_counter()
        slides = {n: root / f"slide{n}.tif" for n in (small, big)}
        for n, p in slides.items():
            write_synthetic_slide(p, root / "ds", "synth-colon", n, patch=128)
        print(f"slides {small} and {big} px written in {time.perf_counter() - t:.1f} s")

        images, _ = tiles_of(slides[small], args.tile, 32)
        n = len(images)
        bare = forward_only(ck, images, args.batch_size, "cpu", threads=2)
        rows = []
        for actors in (1, 2):
            r = end_to_end(
                ck,
                slides[small],
                root / f"out{actors}",
                tile=args.tile,
                batch_size=args.batch_size,
                actors=actors,
            )
            rows.append((actors, r["tiles"], r["tiles_per_s"], r["first_batch_s"]))
        ray.shutdown()
        fig["cpu"] = {
            "tiles": n,
            "forward_only": bare,
            "end_to_end": {a: v for a, _, v, _ in rows},
            "first_batch_s": {a: v for a, _, _, v in rows},
        }
        print(
            f"\n(1, 2) {small} px slide at level 0, {n} tiles of {args.tile} px, batch {args.batch_size}, CPU"
        )
        print(f"  {'path':<30}{'tiles/s':>9}{'vs forward':>12}{'first batch after':>19}")
        print(f"  {'forward only (2 threads)':<30}{bare:>9.1f}{1.0:>11.2f}x")
        for actors, tiles, rate, first in rows:
            assert tiles == n, (tiles, n)
            print(f"  {f'end to end, {actors} actor(s)':<30}{rate:>9.1f}{rate / bare:>11.2f}x{first:>18.1f}s")

        fig.update(memory_and_steady_state(ck, slides, root, args.rss_level, bare))
        fig["steady_state"] = steady_state(ck, slides[big], images, root, args)

        if args.gpu:
            if not torch.cuda.is_available():
                print("\n(4) --gpu: no CUDA device is visible", file=sys.stderr)
                return 2
            gbare = forward_only(ck, images, args.batch_size, "cuda", threads=2)
            r = end_to_end(
                ck,
                slides[small],
                root / "gpu",
                tile=args.tile,
                batch_size=args.batch_size,
                gpus_per_actor=1.0,
            )
            ray.shutdown()
            fig["gpu"] = {"forward_only": gbare, "end_to_end": r["tiles_per_s"]}
            print(
                f"\n(4) GPU: forward only {gbare:.1f} tiles/s, end to end {r['tiles_per_s']:.1f} tiles/s "
                f"({r['tiles_per_s'] / gbare:.2f}x)"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
