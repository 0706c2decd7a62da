"""Input pipeline vs training consumption: can Ray Data decode and augment faster than the model trains?

(a) the Ray Data pipeline alone (read_parquet -> PNG decode + resize in map_batches -> iter_torch_batches
with the Augment collate), images/s over full passes of the train split, 1 CPU given to Ray Data as in a
2-worker run on this machine; (b) the model's training rate on batches already in memory (forward, backward,
SGD step; same torch threads as one worker). Target: (a) / (b) >= 2 (the pipeline is never the bottleneck).

Run: `.venv/bin/python benchmarks/data_pipeline.py [--data data/synth] [--backbone resnet18]`
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import ray
import torch

from pixelcam.config import TrainConfig
from pixelcam.data.reader import open_dataset
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


if __name__ == "__main__":
    main()
