"""Ray Train overhead and worker scaling: the same training epochs as a bare PyTorch loop, in-process on Ray
Data (the `local` executor a single-worker run or study trial uses), in-process with the split kept in memory
(`train_input: device`, here the CPU's memory), on Ray Train with 1 worker, and on Ray Train with 2 workers,
measured side by side in one run.

All four train the same model (same config, seed) on the same Parquet `train` split. Epoch time covers
input (decode + augment) and SGD, measured inside the loop; the first epoch (pipeline and allocator warm-up)
is left out. Start-up is printed separately, split as each run logs it (`startup_*_s`: until the training
loop runs, the model is built, the first SGD step is done, counted from the `train()` call) and the rest of
the run's wall time outside its epochs (validation, checkpoints, teardown): it is paid once per run, not per
epoch. Targets: steady state Ray Train (1 worker) / bare loop <= 1.10; start-up of a local run <= 5 s.

`--cpus N` gives the training N compute threads (the bare loop, the in-process run, the workers' CPUs) and
Ray as many logical CPUs as on an N-core machine, on a machine that has more: Ray's own processes (GCS,
raylet, Train's controller) then run on spare cores, which a 2-core machine has none of. Without MLflow
installed the per-epoch rates come from the run's history and the start-up split is left out.

Run: `.venv/bin/python benchmarks/train_throughput.py [--data data/synth] [--epochs 4] [--cpus N]`
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pixelcam.config import TrainConfig
from pixelcam.data.decode import decode_batch
from pixelcam.data.reader import open_dataset
from pixelcam.runtime.build import build_model
from pixelcam.runtime.transforms import Augment
from pixelcam.train.steps import train_epoch


def bare_loop(cfg: TrainConfig) -> list[float]:
    """Seconds per epoch of a single-process loop: pyarrow batches -> decode -> augment -> SGD."""
    ds = open_dataset(cfg.data)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, len(ds.class_names(cfg.source)))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    times = []
    for epoch in range(cfg.epochs):

        def batches(epoch: int = epoch):
            for rb in ds.iter_batches(
                [cfg.source], ["train"], ["image_id", "label", "image"], cfg.batch_size
            ):
                cols = {k: np.asarray(rb.column(k).to_pylist(), dtype=object) for k in rb.schema.names}
                dec = decode_batch(cols, cfg.resize)
                yield Augment(cfg.crop, cfg.seed, epoch)(dec)

        stats = train_epoch(model, batches(), opt, epoch)
        times.append(stats.seconds)
    return times


def ray_run(
    cfg: TrainConfig,
    workers: int,
    root: Path,
    cpus: int,
    executor: str = "ray_train",
    train_input: str = "stream",
) -> tuple[list[float], float, dict[str, float]]:
    """Seconds per epoch (from the images/s each epoch reports), the whole run's wall time and its start-up
    split (`startup_workers_s`, `startup_model_s`, `startup_first_step_s`; empty without MLflow)."""
    from pixelcam.train.runner import train

    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        MlflowClient = None  # noqa: N806
    # Same compute threads as the bare loop (`cpus` split over the workers); Ray Data gets one more logical
    # CPU for its decode tasks, which share the cores exactly as the bare loop's inline decoding does.
    start = time.perf_counter()
    res = train(
        cfg.replace(
            num_workers=workers,
            cpus_per_worker=cpus / workers,
            executor=executor,
            train_input=train_input,
            name=f"bench-{executor}-{workers}w-{train_input}",
            storage=str(root / "runs"),
        ),
        mlflow=MlflowClient is not None,
    )
    wall = time.perf_counter() - start
    n = sum(open_dataset(cfg.data).counts(cfg.source)["train"].values())
    n -= n % workers  # equal shards drop the remainder
    if MlflowClient is None:
        return [n / h["images_per_s"] for h in res.history], wall, {}
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    ips = [
        m.value
        for m in sorted(client.get_metric_history(res.mlflow_run_id, "images_per_s"), key=lambda m: m.step)
    ]
    metrics = client.get_run(res.mlflow_run_id).data.metrics
    startup = {k[len("startup_") : -2]: v for k, v in metrics.items() if k.startswith("startup_")}
    return [n / v for v in ips], wall, startup


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/synth")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="compute threads (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(args.cpus)  # the bare loop's and the in-process run's; Ray sets its workers' own
    root = Path(tempfile.mkdtemp(prefix="pixelcam-bench-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    cfg = TrainConfig(
        method="cam",
        backbone=args.backbone,
        data=str(Path(args.data).resolve()),
        epochs=args.epochs,
        batch_size=16,
        lr=0.01,
        resize=128,
        crop=112,
    )
    print(
        f"data {cfg.data}, {cfg.backbone} at {cfg.crop}px, batch {cfg.batch_size}, {cfg.epochs} epochs, "
        f"{args.cpus} of {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"
    )
    bare = bare_loop(cfg)
    import ray

    ray.init(address="local", num_cpus=args.cpus + 1, include_dashboard=False, logging_level="ERROR")
    runs = {
        "in-process (local), 1": ray_run(cfg, 1, root, args.cpus, "local"),
        "in-process, in memory": ray_run(cfg, 1, root, args.cpus, "local", "device"),
        "Ray Train, 1 worker": ray_run(cfg, 1, root, args.cpus),
        "Ray Train, 2 workers": ray_run(cfg, 2, root, args.cpus),
    }
    b = statistics.mean(bare[1:])
    n = sum(open_dataset(cfg.data).counts(cfg.source)["train"].values())
    print(f"{'':24}{'s/epoch':>9}{'images/s':>10}{'vs bare':>9}   start-up: loop / model / 1st step, rest")
    print(f"{'bare PyTorch loop':24}{b:>9.2f}{n / b:>10.1f}{1.0:>8.2f}x")
    for name, (epochs, wall, st) in runs.items():
        r = statistics.mean(epochs[1:])
        rest = wall - sum(epochs) - st.get("first_step", 0.0)
        print(
            f"{name:24}{r:>9.2f}{n / r:>10.1f}{r / b:>8.2f}x   {st.get('workers', 0):.1f} / "
            f"{st.get('model', 0):.1f} / {st.get('first_step', 0):.1f} s, {rest:.1f} s (wall {wall:.1f} s)"
        )
    r1 = statistics.mean(runs["Ray Train, 1 worker"][0][1:])
    r2 = statistics.mean(runs["Ray Train, 2 workers"][0][1:])
    print(f"Ray Train overhead (1 worker / bare, steady state): {r1 / b:.2f}x   (target <= 1.10)")
    print(f"scaling 1 -> 2 workers: {r1 / r2:.2f}x faster per epoch")


if __name__ == "__main__":
    main()
