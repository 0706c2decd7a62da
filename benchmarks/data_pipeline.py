"""Input pipeline vs training consumption: can Ray Data decode and augment faster than the model trains?

(a) the Ray Data pipeline alone (read_parquet -> PNG decode + resize in map_batches -> iter_torch_batches
with the Augment collate), images/s over full passes of the train split, 1 CPU given to Ray Data as in a
2-worker run on this machine; (b) the model's training rate on batches already in memory (forward, backward,
SGD step; same torch threads as one worker). Target: (a) / (b) >= 2 (the pipeline is never the bottleneck).
(c) what building a run's cached train dataset costs (wall and machine-wide CPU-s, from /proc/stat, so the
Ray processes count), with the split read here and handed over (`from_arrow`, under `READ_HERE_BYTES`) and
with `read_parquet`, alternated in one run. Target: the first <= 1/2 of the second.

Run: `.venv/bin/python benchmarks/data_pipeline.py [--data data/synth] [--backbone resnet18]`
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import ray
import torch

from pixelcam.config import TrainConfig
from pixelcam.data.reader import open_dataset
from pixelcam.runtime import data as runtime_data
from pixelcam.runtime.build import build_model
from pixelcam.runtime.data import train_dataset
from pixelcam.runtime.transforms import Augment
from pixelcam.train.steps import train_epoch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/synth")
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    cfg = TrainConfig(backbone=args.backbone, data=str(Path(args.data).resolve()), batch_size=16)
    ds = open_dataset(cfg.data)
    ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR")
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    rd = train_dataset(ds, cfg.source, cfg.resize)
    rates = []
    for p in range(args.passes):
        t, n = time.perf_counter(), 0
        for batch in rd.iter_torch_batches(batch_size=cfg.batch_size, collate_fn=Augment(cfg.crop, 0, p)):
            n += len(batch["label"])
        rates.append(n / (time.perf_counter() - t))
    build = build_cost(ds, cfg.source, cfg.resize, args.passes)
    ray.shutdown()
    pipeline = max(rates[1:]) if len(rates) > 1 else rates[0]

    torch.set_num_threads(1)  # one 0.5-CPU worker of a 2-worker run gets one thread
    torch.manual_seed(0)
    model = build_model(cfg, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    batches = [
        {"image": torch.randn(16, 3, cfg.crop, cfg.crop, generator=g), "label": torch.randint(0, 2, (16,))}
        for _ in range(6)
    ]
    train_epoch(model, batches[:2], opt, 0)  # warm-up
    stats = train_epoch(model, batches, opt, 1)
    consume = stats.images_per_s
    print(f"{cfg.backbone} at {cfg.crop}px, batch {cfg.batch_size}")
    print(
        f"Ray Data decode+augment (1 CPU): {pipeline:8.1f} images/s  "
        f"(passes: {', '.join(f'{r:.0f}' for r in rates)})"
    )
    print(
        f"training consumption (1 thread): {consume:8.1f} images/s per worker; 2 workers ~ {2 * consume:.1f}"
    )
    print(
        f"pipeline / consumption: {pipeline / consume:.1f}x per worker, {pipeline / (2 * consume):.1f}x for "
        f"2 workers (target >= 2)"
    )
    (here_wall, here_cpu), (there_wall, there_cpu) = build["here"], build["read_parquet"]
    print(
        f"building the cached train dataset: read here {here_wall:.2f} s, {here_cpu:.2f} CPU-s; read_parquet "
        f"{there_wall:.2f} s, {there_cpu:.2f} CPU-s (median of {args.passes}): {here_cpu / there_cpu:.2f}x "
        f"the CPU (target <= 0.5)"
    )


def _machine_cpu_s() -> float:
    """CPU-seconds all processes of this machine have used (Linux /proc/stat: user, nice, system, irqs)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return sum(int(fields[i]) for i in (1, 2, 3, 6, 7)) / os.sysconf("SC_CLK_TCK")


def build_cost(ds, source: str, resize: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall s, machine CPU-s) of building the materialised train dataset each way, alternated."""
    import statistics

    threshold = runtime_data.READ_HERE_BYTES
    runs: dict[str, list[tuple[float, float]]] = {"here": [], "read_parquet": []}
    for _ in range(repeats):
        for way, limit in (("here", threshold), ("read_parquet", 0)):
            runtime_data.READ_HERE_BYTES = limit
            t, c = time.perf_counter(), _machine_cpu_s()
            train_dataset(ds, source, resize, cache=True)
            runs[way].append((time.perf_counter() - t, _machine_cpu_s() - c))
            time.sleep(2)  # the pool's actors wind down outside the next measurement
    runtime_data.READ_HERE_BYTES = threshold
    return {k: tuple(statistics.median(x[i] for x in v) for i in (0, 1)) for k, v in runs.items()}


if __name__ == "__main__":
    main()
