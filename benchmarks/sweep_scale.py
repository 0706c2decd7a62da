"""Sweeps at cloud scale, by simulation: a study of N stand-in trials (spec `stand_in: true`: each trial
opens, logs and ends its MLflow run and reports every epoch to Tune, without training) searched by Optuna's
TPE under ASHA on a local Ray, as `pixelcam study run` runs it. What is left is the platform's cost per
trial: Optuna ask/tell, Tune's bookkeeping, MLflow run creation and logging, the study's records, the
dashboard.

Prints the tune step's wall time per trial, the driver process's CPU time per trial (all its threads)
between trial 100 and trial N, the driver's resident memory at trial 100 and N and its peak, and the
dashboard's render time and size for the N-trial study. Targets (issue 32): driver time per trial <= 50 ms,
memory flat, the dashboard <= 10 s and <= 10 MB.

Run: `.venv/bin/python benchmarks/sweep_scale.py [--trials 1000] [--data data/synth] [--concurrent 4]`
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import resource
import tempfile
import time
from pathlib import Path

import yaml

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class Probe:
    """The study's console `log`: counts finished trials and samples the driver at chosen counts."""

    def __init__(self, marks: list[int], objects: bool = False) -> None:
        self.marks, self.done, self.samples = set(marks), 0, {}
        self.objects: dict[int, collections.Counter] | None = {} if objects else None

    def __call__(self, line: str) -> None:
        if line.startswith("[") and (" done: " in line or " stopped early " in line):
            self.done += 1
            if self.done in self.marks:
                self.samples[self.done] = (time.perf_counter(), cpu_s(), rss_mib())
                print(f"  {self.done} trials: driver RSS {rss_mib():.0f} MiB", flush=True)
                if self.objects is not None:
                    self.objects[self.done] = object_counts()
        elif line.startswith("=="):
            print(f"  {line}", flush=True)


def object_counts() -> collections.Counter:
    """Live garbage-collected Python objects by type (module.qualname): what a growing driver holds."""
    gc.collect()
    return collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


def print_growth(objects: dict[int, collections.Counter], top: int = 15) -> None:
    """The object types whose count grew most between the first and the last sample, per trial."""
    (n0, c0), (n1, c1) = min(objects.items()), max(objects.items())
    grown = (c1 - c0).most_common(top)
    print(f"\nPython objects grown from {n0} to {n1} trials (per trial), gc-tracked only:")
    for name, k in grown:
        print(f"  {k / (n1 - n0):8.2f}  {name}")


def spec_file(root: Path, data: str, trials: int, concurrent: int, epochs: int) -> Path:
    spec = {
        "name": "sweep-scale",
        "data": data,
        "sources": ["synth-colon"],
        "targets": ["synth-colon"],
        "methods": ["cam"],
        "pixelcam": False,
        "search": {
            "lr": {"low": 1.0e-4, "high": 1.0e-1, "log": True},
            "lr_decay": {"low": 0.1, "high": 0.9},
            "weight_decay": {"low": 1.0e-5, "high": 1.0e-2, "log": True},
        },
        "budget": {"trials": trials, "epochs": epochs, "grace_period": 1, "max_concurrent": concurrent},
        "resources": {"workers": 1, "cpus_per_worker": 0.25},
        "stand_in": True,
        "storage": str(root / "studies"),
    }
    path = root / "sweep-scale.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--data", default="data/synth")
    ap.add_argument("--concurrent", type=int, default=4, help="trials at once (budget.max_concurrent)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--objects", action="store_true", help="also count the driver's Python objects by type")
    args = ap.parse_args()
    if not Path(args.data, "manifest.json").is_file():
        raise SystemExit(f"{args.data}: no dataset (make one with `pixelcam data synth --out {args.data}`)")
    root = Path(tempfile.mkdtemp(prefix="pixelcam-sweep-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    from pixelcam.study.runner import run_study

    first = min(100, args.trials)
    probe = Probe([first, args.trials], objects=args.objects)
    print(
        f"{args.trials} stand-in trials, {args.epochs} epochs, {args.concurrent} at once, "
        f"{os.cpu_count()} CPUs"
    )
    start, cpu0 = time.perf_counter(), cpu_s()
    directory, _, _ = run_study(
        str(spec_file(root, str(Path(args.data).resolve()), args.trials, args.concurrent, args.epochs)),
        log=probe,
    )
    wall = time.perf_counter() - start
    state = (directory / "state.json").read_json()
    steps = {k: v.get("seconds", 0.0) for k, v in state["steps"].items()}
    rec = state["experiments"]["synth-colon__cam"]
    report(args.trials, probe, wall, cpu_s() - cpu0, steps, rec, directory.local / "dashboard.html")
    if probe.objects and len(probe.objects) > 1:
        print_growth(probe.objects)


def report(
    trials: int, probe: Probe, wall: float, cpu: float, steps: dict, rec: dict, dashboard: Path
) -> None:
    first = min(100, trials)
    (t1, c1, m1), (tn, cn, mn) = probe.samples[first], probe.samples[trials]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_trial = 1000 * steps["tune"] / trials
    print(
        f"\nstudy wall {wall:.1f} s (driver CPU {cpu:.1f} s); tune step {steps['tune']:.1f} s for "
        f"{trials} trials "
        f"({rec['trial_epochs']} trial-epochs run, ASHA stopping the weaker trials; stand-ins leave no model)"
    )
    print(f"tune step wall per trial        {per_trial:8.1f} ms   (target <= 50 ms)")
    if trials > first:
        n = trials - first
        print(f"driver CPU per trial {first}->{trials}   {1000 * (cn - c1) / n:8.1f} ms")
        print(f"wall per trial {first}->{trials}         {1000 * (tn - t1) / n:8.1f} ms")
    print(f"driver RSS at {first} / {trials} trials  {m1:6.0f} / {mn:.0f} MiB (peak {peak:.0f} MiB)")
    print(
        f"dashboard step {steps['dashboard']:.1f} s, {dashboard.stat().st_size / 2**20:.2f} MB   "
        "(targets <= 10 s, <= 10 MB)"
    )


if __name__ == "__main__":
    main()
