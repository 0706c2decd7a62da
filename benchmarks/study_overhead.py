"""The platform's own cost next to the work a study runs: a study spec (default: the quickstart's) run as a
study, then the same trainings and evaluations as bare PyTorch loops, back to back in one process, on the
same data, epochs, seeds and cores. Prints study wall / bare wall (goal <= 1.25x on 2 cores for the
quickstart) and where each side's time goes.

The bare side is what a researcher's own script would do with this package's model, loss and metric code:
every split decoded once into memory; each model trained epoch by epoch on one process (all cores), validated
on valpx/valcl after each epoch and kept at its B-LOC (and B-CL) best in memory; PixelCAM on its baseline of
the same seed (pseudo-labels from the baseline's B-LOC model, initial weights from its B-CL model, as the
study does); every selected model on every target's test split; the seed-0 models' stain sweeps with the
same transforms. No Ray, Tune, MLflow, checkpoints, Parquet streaming or dashboard.

The study side's breakdown: its start (Ray, the parent run, the environment record), each step's wall time
(`state.json`), and inside the training steps each run's start-up (`startup_first_step_s`: train() to its
first SGD step), SGD epochs (`train_s`), per-epoch validation (`val_s`) and the rest of its MLflow run
(checkpoints, overlays, logging, teardown), summed over runs: runs overlap (`max_concurrent`), so these are
run-seconds, not wall.

Run: `.venv/bin/python benchmarks/study_overhead.py [--spec studies/quickstart.yaml] [--data data/synth]`
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from support.decoded import decode_train

from pixelcam.config import TrainConfig
from pixelcam.data.reader import PatchDataset, open_dataset
from pixelcam.evaluation.stain_sweep import stain_plan
from pixelcam.runtime.build import build_model, derived_seed, init_from_baseline
from pixelcam.runtime.data import EvalBatch, iter_split
from pixelcam.runtime.eval_loop import evaluate_batches
from pixelcam.runtime.pseudo_labels import PseudoLabeler
from pixelcam.runtime.transforms import Augment, normalize, unnormalize
from pixelcam.study.spec import StudySpec, load_spec
from pixelcam.study.stain import sweep_plan
from pixelcam.train.objectives import create_objective
from pixelcam.train.steps import train_epoch, validate

STUDY_STEPS = ("tune", "seeds", "evaluate", "stain", "ood", "dashboard")


class Phases:
    """Wall seconds per named phase, accumulated with `with phases("name"):`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._name = ""

    def __call__(self, name: str) -> Phases:
        self._name = name
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds[self._name] += time.perf_counter() - self._start


# ---- the bare side ---------------------------------------------------------------------------------------


def train_batches(data: dict[str, np.ndarray], cfg: TrainConfig, epoch: int) -> Any:
    """One epoch of augmented batches, shuffled by (seed, epoch)."""
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(data["label"]))
    augment = Augment(cfg.crop, cfg.seed, epoch)
    for i in range(0, len(order), cfg.batch_size):
        idx = order[i : i + cfg.batch_size]
        yield augment({k: v[idx] for k, v in data.items()})


class Selected:
    """A bare run's models at their B-LOC and B-CL bests (in memory), from `select_from_epoch` on."""

    def __init__(self) -> None:
        self.score = {"b-loc": float("-inf"), "b-cl": float("-inf")}
        self.state: dict[str, dict[str, torch.Tensor]] = {}

    def offer(self, model: torch.nn.Module, pxap: float, cl: float) -> None:
        for sel, score in (("b-loc", pxap), ("b-cl", cl)):
            if score >= self.score[sel]:  # ties: the latest epoch, as the study's default
                self.score[sel] = score
                self.state[sel] = copy.deepcopy(model.state_dict())


def pixelcam_parts(
    cfg: TrainConfig,
    model: torch.nn.Module,
    ds: PatchDataset,
    baseline: tuple[TrainConfig, Selected],
    device: str = "cpu",
) -> tuple[PseudoLabeler, Any]:
    """PixelCAM's labeler (the baseline's B-LOC model, frozen) and objective; `model` starts from the
    baseline's `init_from` model."""
    base_cfg, base = baseline
    frozen = load_selected(base_cfg, ds, base, cfg.pseudo_labels_checkpoint, device)
    names = ds.class_names(cfg.source)
    roi = set(ds.roi_classes(cfg.source))
    no_roi = {i for i, name in enumerate(names) if name not in roi}
    labeler = PseudoLabeler(
        frozen,
        cfg.sampler,
        cfg.n,
        cfg.seed,
        cfg.bg_area,
        no_roi_labels=no_roi,
        no_roi_seeds=cfg.no_roi_seeds,
        seed_grid=cfg.seed_grid,
        bg_sampling=cfg.bg_sampling,
    )
    if cfg.init_from != "none":
        init_from_baseline(model, base.state[cfg.init_from])
    return labeler, create_objective(cfg, no_roi)


def bare_train(
    cfg: TrainConfig,
    ds: PatchDataset,
    data: dict[str, Any],
    phases: Phases,
    baseline: tuple[TrainConfig, Selected] | None,
    device: str = "cpu",
) -> Selected:
    """Train one model as a plain loop; returns its selected states."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, len(ds.class_names(cfg.source)))
    labeler, objective = pixelcam_parts(cfg, model, ds, baseline, device) if baseline else (None, None)
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_decay)
    selected = Selected()
    for epoch in range(cfg.epochs):
        if labeler is not None:
            labeler.reseed(derived_seed(cfg.seed, "pseudo", 0, epoch))
        with phases("train epochs"):
            batches = train_batches(data["train", cfg.source], cfg, epoch)
            train_epoch(model, batches, opt, epoch, device, labeler, cfg.lam, objective=objective)
            sched.step()
        with phases("per-epoch validation"):
            val = validate(
                model,
                data["valpx", cfg.source],
                data["valcl", cfg.source],
                device,
                num_bins=cfg.num_bins,
                criterion=cfg.threshold_criterion,
                eval_size=cfg.eval_size,
            )
        if epoch >= cfg.select_from_epoch:
            selected.offer(model, val.valpx_pxap, val.valcl_cl)
    return selected


def load_selected(
    cfg: TrainConfig, ds: PatchDataset, selected: Selected, which: str, device: str = "cpu"
) -> torch.nn.Module:
    model = build_model(cfg, len(ds.class_names(cfg.source)))
    model.load_state_dict(selected.state[which])
    return model.to(device)


def decode_all(spec: StudySpec, ds: PatchDataset, targets: list[str], phases: Phases) -> dict[Any, Any]:
    """Every split the study reads, decoded once: train at the training size, the rest as eval batches."""
    cfg = spec.base_config(spec.methods[0], spec.sources[0])
    data: dict[Any, Any] = {}
    with phases("decode data (once)"):
        for source in spec.sources:
            data["train", source] = decode_train(ds, source, cfg.resize)
            for split in ("valpx", "valcl"):
                data[split, source] = list(iter_split(ds, source, split, cfg.eval_input_size, cfg.batch_size))
        for domain in set(targets) | set(spec.sources):
            data["test", domain] = list(iter_split(ds, domain, "test", cfg.eval_input_size, 32))
    return data


def bare_study(
    spec: StudySpec, ds: PatchDataset, targets: list[str], device: str = "cpu"
) -> tuple[float, dict[str, float]]:
    """The study's trainings and evaluations as plain loops on `device`: (wall seconds, seconds per phase)."""
    phases = Phases()
    start = time.perf_counter()
    data = decode_all(spec, ds, targets, phases)
    models: dict[tuple[str, str, int], tuple[TrainConfig, Selected]] = {}
    seeds = list(spec.seeds) or [spec.seed]
    for label in spec.all_methods():  # baselines first, then their PixelCAM models
        var = spec.variant(label)
        for source in spec.sources:
            for seed in seeds:
                cfg = spec.base_config(var.method, source, var.baseline).replace(**var.fixed, seed=seed)
                base = models[source, var.baseline, seed] if var.baseline else None
                models[source, label, seed] = (cfg, bare_train(cfg, ds, data, phases, base, device))
    with phases("final evaluation"):
        for cfg, selected in models.values():
            model = load_selected(cfg, ds, selected, spec.selection, device)
            for target in targets:
                evaluate_batches(model, data["test", target], device, eval_size=cfg.eval_size)
    if spec.stain_shift is not None:
        with phases("stain sweep"):
            for (source, _, seed), (cfg, selected) in models.items():
                if seed == spec.seed:
                    model = load_selected(cfg, ds, selected, spec.selection, device)
                    bare_stain(spec, ds, cfg, model, data, source, device)
    return time.perf_counter() - start, dict(phases.seconds)


def bare_stain(
    spec: StudySpec,
    ds: PatchDataset,
    cfg: TrainConfig,
    model: torch.nn.Module,
    data: dict[Any, Any],
    source: str,
    device: str = "cpu",
) -> None:
    """The stain step's sweep of one model, on the decoded test batches."""
    st = spec.stain_shift
    for domain, ref in sweep_plan(spec, ds.domains, source):
        plan = stain_plan(
            ds,
            domain,
            ref,
            st.method,
            st.mode,
            st.levels,
            st.max_strength,
            st.fit_images,
            cfg.eval_input_size,
        )
        for batch in data["test", domain]:
            x01 = unnormalize(batch.images)
            for transform, strength, _ in plan:
                moved = batch
                if transform is not None:
                    images = (
                        normalize(transform(x01, strength))
                        .float()
                        .contiguous(memory_format=torch.channels_last)
                    )
                    moved = EvalBatch(images, batch.labels, batch.masks, batch.image_ids)
                evaluate_batches(model, [moved], device, eval_size=cfg.eval_size)


# ---- the study side --------------------------------------------------------------------------------------


def run_the_study(spec_path: str, data: str, root: Path) -> tuple[float, Path]:
    """`pixelcam study run` in this process, its console kept quiet; (wall seconds, study directory)."""
    from pixelcam.study.runner import run_study

    lines: list[str] = []
    start = time.perf_counter()
    directory, _, _ = run_study(spec_path, storage=str(root / "studies"), data=data, log=lines.append)
    wall = time.perf_counter() - start
    import ray

    ray.shutdown()
    return wall, directory.local


def run_seconds(uri: str, experiment: str) -> dict[str, float]:
    """Run-seconds of the study's training runs (trials and seed runs), split as the module doc says."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    out: dict[str, float] = defaultdict(float)
    for run in [r for r in runs if r.data.tags.get("kind") in ("trial", "seed")]:
        m, rid = run.data.metrics, run.info.run_id
        model, first = m.get("startup_model_s", 0.0), m.get("startup_first_step_s", 0.0)
        train_s, val_s = _history_sum(client, rid, "train_s"), _history_sum(client, rid, "val_s")
        in_run = (run.info.end_time - run.info.start_time) / 1000  # the MLflow run: opened in train()
        parts = {
            "start-up: train() to model built": model,
            "first SGD step, input pipeline start": first - model,
            "SGD epochs (after the first step)": train_s - (first - model),
            "per-epoch validation": val_s,
            # what the run spent besides: checkpoints, overlays, MLflow logging, teardown (its MLflow run
            # opens inside train(), before the loop: the loop's start-up is taken out)
            "rest: checkpoints, logging, teardown": in_run
            - train_s
            - val_s
            - (model - m.get("startup_workers_s", 0.0)),
        }
        for k, v in parts.items():
            out[k] += v
        out["runs"] += 1
    return dict(out)


def _history_sum(client: Any, run_id: str, key: str) -> float:
    return sum(m.value for m in client.get_metric_history(run_id, key))


# ---- the report ------------------------------------------------------------------------------------------


def report(
    study_wall: float,
    steps: dict[str, float],
    runs: dict[str, float],
    bare_wall: float,
    bare: dict[str, float],
) -> None:
    print(
        f"\nstudy wall {study_wall:.1f} s, bare wall {bare_wall:.1f} s: "
        f"ratio {study_wall / bare_wall:.2f}x (goal <= 1.25x)"
    )
    print("\nstudy, wall seconds per step")
    print(f"  {'start (Ray, parent run, environment)':44}{study_wall - sum(steps.values()):>8.1f}")
    for name in STUDY_STEPS:
        print(f"  {name:44}{steps.get(name, 0.0):>8.1f}")
    runs = dict(runs)
    n = int(runs.pop("runs", 0))
    print(f"\nstudy, inside its {n} training runs (run-seconds, runs overlap)")
    for name, s in runs.items():
        print(f"  {name:44}{s:>8.1f}")
    print("\nbare loops, wall seconds per phase")
    for name, s in bare.items():
        print(f"  {name:44}{s:>8.1f}")
    print(f"  {'(other)':44}{bare_wall - sum(bare.values()):>8.1f}")


def gpu_spec(spec_path: str, root: Path) -> str:
    """The spec with its trials on the GPU: `resources.gpus_per_worker` 1 / max_concurrent (trials share it
    as the CPU run shares the cores), written beside the study."""
    raw = yaml.safe_load(Path(spec_path).read_text())
    budget = raw.get("budget", {})
    raw.setdefault("resources", {})["gpus_per_worker"] = round(1 / max(budget.get("max_concurrent", 1), 1), 3)
    path = root / Path(spec_path).name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def measure(spec_path: str, data: str, device: str = "cpu", repeat: int = 1) -> list[dict[str, Any]]:
    """Study then bare loops, `repeat` times on `device`, each reported; returns their figures."""
    data = str(Path(data).resolve())
    spec = load_spec(spec_path)
    spec.data = data
    ds = open_dataset(data)
    targets = list(spec.targets or ds.domains)
    print(
        f"{spec_path}: {len(spec.sources)} sources, models {spec.all_methods()}, seeds {list(spec.seeds)}, "
        f"{spec.budget.epochs} epochs, {os.cpu_count()} CPUs, {device}"
    )
    out = []
    for _ in range(repeat):
        root = Path(tempfile.mkdtemp(prefix="pixelcam-overhead-"))
        os.environ["MLFLOW_TRACKING_URI"] = uri = f"sqlite:///{root / 'mlflow.db'}"
        path = gpu_spec(spec_path, root) if device == "cuda" else spec_path
        study_wall, directory = run_the_study(path, data, root)
        steps = {
            k: v.get("seconds", 0.0)
            for k, v in json.loads((directory / "state.json").read_text())["steps"].items()
        }
        runs = run_seconds(uri, spec.mlflow_experiment())
        torch.set_num_threads(os.cpu_count() or 1)
        bare_wall, bare = bare_study(spec, ds, targets, device)
        report(study_wall, steps, runs, bare_wall, bare)
        out.append(
            {"study_s": study_wall, "bare_s": bare_wall, "ratio": study_wall / bare_wall, "steps": steps,
             "runs": runs, "bare": bare}
        )  # fmt: skip
    if len(out) > 1:
        ratios = [r["ratio"] for r in out]
        print(f"\nratios: {' '.join(f'{r:.2f}x' for r in ratios)} (median {statistics.median(ratios):.2f}x)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="studies/quickstart.yaml")
    ap.add_argument("--data", default="data/synth")
    ap.add_argument("--repeat", type=int, default=1, help="study then bare, this many times (ratios each)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda: trials, evaluation and "
                    "the bare loops on the GPU (gpus_per_worker 1 / max_concurrent)")  # fmt: skip
    args = ap.parse_args()
    if not Path(args.data, "manifest.json").is_file():
        raise SystemExit(f"{args.data}: no dataset (make one with `pixelcam data synth --out {args.data}`)")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("study_overhead: --device cuda, but torch sees no CUDA device")
    measure(args.spec, args.data, args.device, args.repeat)


if __name__ == "__main__":
    main()
