"""ASHA vs no early stopping on the quickstart search space: trial-epochs spent and best B-LOC PxAP reached.

One experiment (CAM on synth-colon, the quickstart's lr / lr_decay space), the same seeded Optuna TPE
sampler, N trials of E epochs, once with ASHA (grace period 2, reduction factor 2) and once with FIFO (every
trial runs all epochs). Target: ASHA spends >= 2x fewer trial-epochs for the same best PxAP within noise.

Run: `.venv/bin/python benchmarks/asha_vs_fifo.py [--trials 6] [--epochs 6]`
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from pixelcam.study.runner import Study
from pixelcam.study.spec import load_spec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default="studies/quickstart.yaml")
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pixelcam-asha-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    rows = {}
    for mode in ("asha", "fifo"):
        spec = load_spec(args.spec)
        spec.name = f"asha-bench-{mode}"
        spec.data = str(Path(spec.data).resolve())
        spec.sources, spec.methods, spec.pixelcam = spec.sources[:1], ["cam"], False
        spec.budget.trials, spec.budget.epochs = args.trials, args.epochs
        d = root / spec.name
        d.mkdir()
        (d / "spec.yaml").write_text(Path(args.spec).read_text())
        study = Study(spec, d, log=lambda s: None)
        study.early_stopping = mode == "asha"
        import ray

        from pixelcam.train.runner import init_ray

        init_ray()
        study._mlflow()
        start = time.perf_counter()
        rec = study.tune(spec.sources[0], "cam", concurrency=1)
        rows[mode] = (rec["trial_epochs"], rec.get("score", float("nan")), time.perf_counter() - start)
        ray.shutdown()
    print(f"{args.trials} trials x {args.epochs} epochs, CAM on {spec.sources[0]}, quickstart space")
    print(f"{'':8}{'trial-epochs':>14}{'best valpx PxAP':>18}{'wall s':>10}")
    for mode, (ep, best, wall) in rows.items():
        print(f"{mode:8}{ep:>14}{best:>18.2f}{wall:>10.0f}")
    a, f = rows["asha"], rows["fifo"]
    print(
        f"ASHA spends {f[0] / max(a[0], 1):.2f}x fewer trial-epochs (target >= 2); best PxAP {a[1]:.2f} vs "
        f"{f[1]:.2f} ({a[1] - f[1]:+.2f}); wall {f[2] / a[2]:.2f}x faster"
    )


if __name__ == "__main__":
    main()
