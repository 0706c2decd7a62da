"""One prepared GPU check, one command: every figure side by side from one run.

(a) Table-11 analogue: CAM time per image for every method at 224 px, batch 1 and batch 64, next to its own
    forward pass and the paper's RTX A6000 figures (PAPER_TABLES.md, Table 11);
(b) training images/s of ResNet-50 at 224 px: fp32 vs bf16, channels_last off/on (the platform's own
    `train_epoch` on GPU-resident batches), and the peak memory of one training step per backbone at the
    paper's batch size (32), which sizes `resources.gpus_per_worker` for packing trials on one GPU;
(c) the real training loop on a synthetic dataset, in-process with the train split streamed by Ray Data each
    epoch and kept on the device (`train_input`), and on Ray Train (1 worker, kept on the device), against a
    bare loop over the same images already decoded and augmented on the GPU (epoch ratio, input wait);
(d) slide inference (`pixelcam predict` on a synthetic pyramidal slide): tiles/s end to end with one GPU actor
    vs the bare forward pass over the same tiles;
(e) the quickstart study on the GPU vs the same trainings and evaluations as bare loops on it
    (benchmarks/study_overhead.py: ratio and where the rest goes).

It refuses to run without a GPU. `--smoke` runs every path on the CPU at tiny sizes (the test suite runs it).
Run: `python benchmarks/gpu_check.py [--out gpu_check.json]`; `--sections ab` runs a subset. Sections a-c
took 4-5 minutes on one H200 (2026-11-27); d and e are not measured on a GPU yet. Goals: a GPU epoch on the
device path in (c) <= 1.10x the bare loop's; the whole check under 8 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from support.timing import sync, timed

from pixelcam.models import create_wsol_model, list_methods
from pixelcam.models.precision import Precision
from pixelcam.runtime.pseudo_labels import PseudoLabeler
from pixelcam.train.steps import train_epoch

# The paper's Table 11 (one 224x224 image, NVIDIA RTX A6000; ResNet-50 for the CNN methods, DeiT-Tiny for
# SAT), in ms, as printed there (PAPER_TABLES.md). PixelCAM's rows are 8.4-9.2 ms over its three baselines,
# NEGEV's 10.3-12.3 ms.
PAPER_MS = {
    "deepmil": 9.1,
    "gradcampp": 40.9,
    "layercam": 37.9,
    "sat": 10.5,
    "pixelcam": "8.4-9.2",
    "negev": "10.3-12.3",  # w/ NEGEV over its three baselines (here on a CAM classifier)
    "unet": 10.1,
}
PAPER_NOTE = (
    "paper: pytorch-grad-cam style GradCAM++/LayerCAM backpropagate through the whole network; here dS/dA is "
    "taken through the head only (the map is the same for a GAP+linear head), so they cost ~one forward"
)


@dataclass(frozen=True)
class Sizes:
    size: int
    cam_batches: tuple[int, ...]
    cam_reps: tuple[int, ...]
    backbone: str
    train_batch: int
    train_steps: int
    warmup: int
    memory_backbones: tuple[str, ...]
    memory_batch: int
    synth_per_class: int
    synth_size: int
    epochs: int
    cpus_per_worker: float


FULL = Sizes(
    size=224,
    cam_batches=(1, 64),
    cam_reps=(30, 5),
    backbone="resnet50",
    train_batch=64,
    train_steps=30,
    warmup=5,
    memory_backbones=("resnet18", "resnet50", "vgg16", "inception_v3", "efficientnet_lite0", "deit_tiny_sat"),
    memory_batch=32,
    synth_per_class=600,
    synth_size=256,
    epochs=6,
    cpus_per_worker=8.0,
)
SMOKE = Sizes(
    size=64,
    cam_batches=(1, 4),
    cam_reps=(1, 1),
    backbone="resnet10t",
    train_batch=4,
    train_steps=2,
    warmup=1,
    memory_backbones=("resnet10t",),
    memory_batch=4,
    synth_per_class=12,
    synth_size=72,
    epochs=2,
    cpus_per_worker=1.0,
)


def method_backbone(method: str, backbone: str) -> str | None:
    return None if method == "sat" else backbone  # SAT has its own DeiT-Tiny


def section_a(sz: Sizes, device: torch.device) -> list[dict]:
    """CAM time per image vs the forward pass, per method and batch size (fp32, eval mode)."""
    rows = []
    print(f"\n(a) CAM cost per image at {sz.size} px, fp32 (Table 11 analogue); {PAPER_NOTE}")
    head = f"{'method':<10}{'batch':>6}{'params':>13}{'forward ms':>12}{'CAM ms':>9}{'CAM/fwd':>9}"
    print(f"  {head}{'paper ms':>10}")
    for method in list_methods():
        torch.manual_seed(0)
        bb = method_backbone(method, sz.backbone)
        model = (
            create_wsol_model(method, bb, num_classes=2) if bb else create_wsol_model(method, num_classes=2)
        )
        model = model.to(device).eval()
        params = sum(p.numel() for p in model.parameters())
        for batch, reps in zip(sz.cam_batches, sz.cam_reps):
            x = torch.randn(batch, 3, sz.size, sz.size, device=device)
            y = torch.randint(0, 2, (batch,), device=device)

            def forward(model=model, x=x):
                with torch.no_grad():
                    model(x)

            fwd = timed(forward, reps, device) / batch * 1e3
            cam = timed(lambda model=model, x=x, y=y: model.cam(x, y), reps, device) / batch * 1e3
            paper = PAPER_MS.get(method, "-")
            print(
                f"  {method:<10}{batch:>6}{params:>13,}{fwd:>12.2f}{cam:>9.2f}{cam / fwd:>8.2f}x{paper!s:>10}"
            )
            rows.append(
                {
                    "method": method,
                    "batch": batch,
                    "params": params,
                    "forward_ms": fwd,
                    "cam_ms": cam,
                    "paper_ms": paper,
                }
            )
        del model
    return rows


def _train_rate(
    backbone: str, method: str, num: Precision, batch: int, steps: int, warmup: int, size: int
) -> tuple[float, float]:
    """(images/s, peak MiB) of `train_epoch` over GPU-resident random batches."""
    device = num.device
    torch.manual_seed(0)
    model = (
        create_wsol_model(method, backbone, num_classes=2)
        if backbone
        else create_wsol_model(method, num_classes=2)
    )
    model = num.model(model)
    labeler = None
    if method == "pixelcam":  # PixelCAM trains next to its frozen baseline (CAMs for the pseudo-labels)
        labeler = PseudoLabeler(num.model(create_wsol_model("cam", backbone, num_classes=2)), "pb", 5, 0)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator(device=device).manual_seed(0)
    data = [
        {
            "image": torch.randn(batch, 3, size, size, device=device, generator=g),
            "label": torch.randint(0, 2, (batch,), device=device, generator=g),
        }
        for _ in range(min(steps, 8))
    ]
    train_epoch(model, data[:warmup] or data[:1], opt, 0, device, labeler, precision=num)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs = [data[i % len(data)] for i in range(steps)]
    stats = train_epoch(model, runs, opt, 1, device, labeler, precision=num)
    sync(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    del model, opt, data, runs, labeler
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return stats.images / stats.seconds, peak


def section_b(sz: Sizes, device: torch.device) -> dict:
    """Training images/s (precision x memory format) and peak memory per backbone."""
    out = {"throughput": [], "memory": []}
    print(
        f"\n(b) training {sz.backbone} at {sz.size} px, batch {sz.train_batch}: images/s (train_epoch, "
        f"{sz.train_steps} steps after {sz.warmup} warm-up)"
    )
    print(f"  {'precision':<10}{'channels_last':>14}{'images/s':>10}{'vs fp32':>9}{'peak MiB':>10}")
    base = None
    for precision in ("fp32", "bf16"):
        for cl in (False, True):
            rate, peak = _train_rate(
                sz.backbone,
                "cam",
                Precision(precision, device, cl),
                sz.train_batch,
                sz.train_steps,
                sz.warmup,
                sz.size,
            )
            base = base or rate
            print(f"  {precision:<10}{cl!s:>14}{rate:>10.1f}{rate / base:>8.2f}x{peak:>10.0f}")
            out["throughput"].append(
                {"precision": precision, "channels_last": cl, "images_per_s": rate, "peak_mib": peak}
            )
    print(
        f"\n  peak memory of one training step, batch {sz.memory_batch} at {sz.size} px (MiB; PixelCAM "
        f"adds its frozen baseline) -> gpus_per_worker for packing"
    )
    print(f"  {'backbone':<20}{'method':<10}{'fp32':>8}{'bf16+CL':>9}{'img/s fp32':>11}{'img/s bf16+CL':>14}")
    for backbone in sz.memory_backbones:
        methods = ("sat",) if backbone == "deit_tiny_sat" else ("cam", "pixelcam")
        for method in methods:
            bb = None if method == "sat" else backbone
            size = 299 if backbone == "inception_v3" and sz is FULL else sz.size
            r32, m32 = _train_rate(bb, method, Precision("fp32", device), sz.memory_batch, 3, 1, size)
            r16, m16 = _train_rate(bb, method, Precision("bf16", device, True), sz.memory_batch, 3, 1, size)
            print(f"  {backbone:<20}{method:<10}{m32:>8.0f}{m16:>9.0f}{r32:>11.1f}{r16:>14.1f}")
            out["memory"].append(
                {
                    "backbone": backbone,
                    "method": method,
                    "size": size,
                    "fp32_mib": m32,
                    "bf16_cl_mib": m16,
                    "fp32_images_per_s": r32,
                    "bf16_cl_images_per_s": r16,
                }
            )
    return out


def section_c(sz: Sizes, device: torch.device, root: Path) -> dict:
    """The real loop (Ray Train, 1 worker; in-process executor) vs a bare GPU-resident loop, same numerics."""
    import numpy as np

    from pixelcam.config import TrainConfig
    from pixelcam.data.reader import open_dataset
    from pixelcam.data.synth import SynthConfig, generate_synthetic
    from pixelcam.runtime.cluster import init_ray
    from pixelcam.train.runner import train

    data = root / "synth"
    t = time.perf_counter()
    generate_synthetic(
        data, SynthConfig(domains=["synth-colon"], per_class=sz.synth_per_class, size=sz.synth_size)
    )
    ds = open_dataset(data)
    n_train = sum(ds.counts("synth-colon")["train"].values())
    print(
        f"\n(c) the training loop: synth-colon, {n_train} train images at {sz.synth_size} -> crop "
        f"{sz.size} px, {sz.backbone}, bf16 + channels_last, batch {sz.train_batch}, {sz.epochs} epochs "
        f"(dataset written in {time.perf_counter() - t:.1f} s)"
    )
    on_gpu = device.type == "cuda"
    cfg = TrainConfig(
        method="cam",
        backbone=sz.backbone,
        data=str(data),
        source="synth-colon",
        resize=sz.synth_size,
        crop=sz.size,
        epochs=sz.epochs,
        batch_size=sz.train_batch,
        lr=1e-3,
        num_workers=1,
        use_gpu=on_gpu,
        cpus_per_worker=sz.cpus_per_worker,
        precision="bf16",
        channels_last=True,
        storage=str(root / "runs"),
        max_failures=0,
    )
    init_ray(num_cpus=os.cpu_count(), quiet=True)
    rows = {}
    for key, executor, train_input in LOOPS:
        t = time.perf_counter()
        run = cfg.replace(executor=executor, train_input=train_input, name=f"check-{key}")
        res = train(run, mlflow=False, dataset=ds)
        wall = time.perf_counter() - t
        steady = res.history[1:] or res.history
        ips = float(np.mean([h["images_per_s"] for h in steady]))
        rows[key] = {
            "images_per_s": ips,
            "input_wait_s": float(np.mean([h["input_wait_s"] for h in steady])),
            "epoch_s": n_train / ips,
            "run_wall_s": wall,
            "selected_valcl_cl": res.metrics.get("valcl_cl"),
        }
    rows["bare"] = bare_loop(cfg, ds, device, n_train)
    print(f"  {'loop':<34}{'images/s':>10}{'s/epoch':>9}{'input wait':>12}{'vs bare':>9}{'run wall s':>12}")
    for key, label in [("bare", "bare (on the device)")] + [(k, LOOP_NAMES[k]) for k, _, _ in LOOPS]:
        r = rows[key]
        r["vs_bare"] = r["epoch_s"] / rows["bare"]["epoch_s"]
        wall = f"{r['run_wall_s']:.1f}" if "run_wall_s" in r else "-"
        print(
            f"  {label:<34}{r['images_per_s']:>10.1f}{r['epoch_s']:>9.2f}"
            f"{100 * r['input_wait_s'] / r['epoch_s']:>11.0f}%{r['vs_bare']:>8.2f}x{wall:>12}"
        )
    print("  (goal: an epoch on the device path <= 1.10x the bare loop's)")
    return rows


# (key, executor, train_input) of the real loops section (c) runs; Ray Train streaming measured 1.40-1.63x
# before the device path (benchmarks/results/gpu_check-h200-2026-11-27.log)
LOOPS = (
    ("local_stream", "local", "stream"),
    ("local_device", "local", "device"),
    ("ray_device", "ray_train", "device"),
)
LOOP_NAMES = {
    "local_stream": "in-process, streamed (Ray Data)",
    "local_device": "in-process, kept on the device",
    "ray_device": "Ray Train 1 worker, on the device",
}


def bare_loop(cfg, ds, device: torch.device, n_train: int) -> dict:
    """The same model, numerics and step function over the same images, decoded and augmented once, already
    on the device: the ceiling an input path can approach."""
    import numpy as np
    from support.decoded import decode_train

    from pixelcam.runtime.build import build_model
    from pixelcam.runtime.transforms import Augment

    num = Precision("bf16", device, True)
    torch.manual_seed(cfg.seed)
    model = num.model(build_model(cfg, 2))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    data = decode_train(ds, cfg.source, cfg.resize)
    augment = Augment(cfg.crop, cfg.seed, 0)
    batches = []
    for i in range(0, len(data["label"]), cfg.batch_size):
        b = augment({k: v[i : i + cfg.batch_size] for k, v in data.items()})
        batches.append({k: v.to(device) for k, v in b.items()})
    secs = []
    for epoch in range(cfg.epochs):
        sync(device)
        stats = train_epoch(model, batches, opt, epoch, device, precision=num)
        sync(device)
        secs.append(stats.seconds)
    epoch_s = float(np.mean(secs[1:] or secs))
    return {"images_per_s": n_train / epoch_s, "input_wait_s": 0.0, "epoch_s": epoch_s}


def section_d(sz: Sizes, device: torch.device, root: Path) -> dict:
    """Slide inference: synthetic pyramidal slides through `pixelcam predict` (Ray Data, one model actor on
    the device) vs the bare forward pass over the same tiles (benchmarks/wsi_inference.py's functions). Two
    slide sizes: the larger's rate between 10 % and 90 % of its tiles is the steady state; the extra tiles of
    the larger per extra second cross-check it (the pipeline's fixed start-up cancels)."""
    import ray

    from pixelcam.data.synth import SynthConfig, generate_synthetic
    from pixelcam.evaluation.slides.synthetic import write_synthetic_slide

    sys.path.insert(0, str(Path(__file__).parent))
    from wsi_inference import end_to_end, forward_only, make_checkpoint, tiles_of

    backbone = "efficientnet_lite0" if device.type == "cuda" else sz.backbone
    sizes, tile, batch = ((4096, 8192), 224, 128) if device.type == "cuda" else ((512, 1024), 64, 8)
    generate_synthetic(
        root / "wsi-ds", SynthConfig(domains=["synth-colon"], per_class=12, size=64), workers=1
    )
    ck = make_checkpoint(root / "wsi", backbone)
    runs = []
    try:
        for size in sizes:
            slide = root / "wsi" / f"slide{size}.tif"
            write_synthetic_slide(slide, root / "wsi-ds", "synth-colon", size, patch=128)
            r = end_to_end(
                ck, slide, root / "wsi" / f"out{size}", tile=tile, batch_size=batch,
                gpus_per_actor=1.0 if device.type == "cuda" else 0.0,
            )  # fmt: skip
            runs.append(r)
    finally:
        # --smoke checks that every path runs: section (e)'s study then joins this Ray (one local start, ~12
        # CPU-s, fewer); on the device it starts its own, as a user's study does, and (e) measures that too
        if device.type == "cuda":
            ray.shutdown()
    images, _ = tiles_of(slide, tile, 32)
    bare = forward_only(ck, images, batch, device.type, threads=2)
    small, big = runs
    two_sizes = (big["tiles"] - small["tiles"]) / max(big["seconds"] - small["seconds"], 1e-9)
    steady = big["steady_tiles_per_s"] or two_sizes  # the rate between 10 % and 90 % of the larger's tiles
    print(
        f"\n(d) slide inference: {backbone}, synthetic slides {sizes[0]} and {sizes[1]} px, "
        f"tiles of {tile} px"
    )
    print(
        f"  forward only {bare:.1f} tiles/s; end to end {big['tiles_per_s']:.1f} tiles/s on "
        f"{big['tiles']} tiles "
        f"({big['tiles_per_s'] / bare:.2f}x); steady state {steady:.1f} tiles/s ({steady / bare:.2f}x; "
        f"the two sizes' difference {two_sizes / bare:.2f}x)"
    )
    return {
        "backbone": backbone, "slides_px": list(sizes), "tiles": [r["tiles"] for r in runs],
        "forward_only": bare, "end_to_end": big["tiles_per_s"], "steady_state": steady,
        "two_sizes": two_sizes, "first_batch_s": big["first_batch_s"],
    }  # fmt: skip


def section_e(sz: Sizes, device: torch.device, root: Path) -> dict:
    """The quickstart study on the device vs the same trainings and evaluations as bare loops on it
    (benchmarks/study_overhead.py). --smoke: a one-source, one-seed, two-epoch version on section (c)'s
    data, without the stain sweep."""
    import yaml

    from pixelcam.data.synth import SynthConfig, generate_synthetic

    sys.path.insert(0, str(Path(__file__).parent))
    from study_overhead import measure

    spec = Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml"
    t = time.perf_counter()
    if sz is SMOKE:
        data = root / "synth"  # section (c)'s
        if not (data / "manifest.json").is_file():
            generate_synthetic(data, SynthConfig(domains=["synth-colon"], per_class=12, size=72))
        raw = yaml.safe_load(spec.read_text())
        raw.update(sources=["synth-colon"], pixelcam=False, seeds=[0], stain_shift=None)
        raw["budget"]["epochs"] = 2
        raw["train"].update(resize=64, crop=56, batch_size=8, pretrained=False)
        spec = root / "quickstart-smoke.yaml"
        spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    else:
        data = root / "quickstart-data"
        generate_synthetic(data, SynthConfig(), workers=os.cpu_count())
    print(
        f"\n(e) the quickstart study vs its bare loops on {device} "
        f"(data ready after {time.perf_counter() - t:.1f} s)"
    )
    figures = measure(str(spec), str(data), device.type)[0]
    return {k: figures[k] for k in ("study_s", "bare_s", "ratio", "steps", "runs", "bare")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="every path on the CPU at tiny sizes")
    ap.add_argument("--sections", default="abcde", help="which of a, b, c, d, e to run (default all)")
    ap.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device is visible (torch.cuda.is_available() is False): run it on a GPU "
            "machine, or with --smoke to check every path on the CPU",
            file=sys.stderr,
        )
        return 2
    sz = SMOKE if args.smoke else FULL
    device = torch.device("cpu" if args.smoke else "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the training worker does on CUDA
        name = f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    else:
        name = f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"gpu_check{' --smoke' if args.smoke else ''}: {name}; torch {torch.__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    report: dict = {"device": name, "smoke": args.smoke, "sizes": asdict(sz), "torch": torch.__version__}
    failed = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pixelcam-gpu-check-") as tmp:
        for key, fn in (
            ("a", lambda: section_a(sz, device)),
            ("b", lambda: section_b(sz, device)),
            ("c", lambda: section_c(sz, device, Path(tmp))),
            ("d", lambda: section_d(sz, device, Path(tmp))),
            ("e", lambda: section_e(sz, device, Path(tmp))),
        ):
            if key not in args.sections:
                continue
            t = time.perf_counter()
            try:
                report[key] = fn()
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others' figures
                failed.append(key)
                report[key] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"\n({key}) FAILED: {type(exc).__name__}: {exc}")
                traceback.print_exc(limit=6)
            print(f"  [section {key}: {time.perf_counter() - t:.1f} s]", flush=True)
    report["seconds"] = time.perf_counter() - started
    print(
        f"\ngpu_check: {report['seconds']:.0f} s in all"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    if args.out:
        with contextlib.suppress(OSError):
            Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
