"""Where the training loop runs: the few things it asks of its surroundings, behind one small interface.

- `RayTrainSession`: inside Ray Train's workers (TorchTrainer): ranks, DDP, checkpoints reported to Ray
  Train, the dataset shard Ray Train splits, worker restarts after failures.
- `LocalSession`: a single-worker run in the calling process (the CLI's driver or a Tune trial's actor),
  without Ray Train's controller, worker and split-coordinator actors, whose start-up cost ~20 s per run on
  two cores; the input is the same Ray Data pipeline. Checkpoints are written into the run directory (a
  `Location`: local, or on an object store) whole (`Location.put_dir`: `meta.json` last); inside a Tune
  trial each epoch's metrics go to `tune.report` (ASHA sees them as before). A crash is not retried here:
  Tune's failure handling, the study or `--resume` continue the run from its latest checkpoint.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from pixelcam.runtime.checkpoint import META_FILE
from pixelcam.storage import Location


class RayTrainSession:
    def __init__(self) -> None:
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.device = ray.train.torch.get_device()

    @contextlib.contextmanager
    def latest_checkpoint(self) -> Iterator[Location | None]:
        import ray.train

        ckpt = ray.train.get_checkpoint()
        if ckpt is None:
            yield None
            return
        with ckpt.as_directory() as d:
            yield Location(d)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        import ray.train.torch

        return ray.train.torch.prepare_model(model)

    def shard(self) -> Any:
        import ray.train

        return ray.train.get_dataset_shard("train")

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None, name: str) -> None:
        import ray.train

        ckpt = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=ckpt, checkpoint_dir_name=name)


class LocalSession:
    """One process, rank 0 of 1; `dataset` is the run's Ray Data `train` dataset."""

    rank, world = 0, 1

    def __init__(self, run_dir: Location, dataset: Any, use_gpu: bool = False) -> None:
        from ray.data import DataContext

        DataContext.get_current().execution_options.preserve_order = True  # as Ray Train's split does
        self.run_dir, self.dataset = Location(run_dir), dataset
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
        # a resumed run (a retried trial, `--resume`) knows its earlier checkpoints with what they reported
        self.checkpoints: list[tuple[Location, dict[str, Any]]] = [
            (p, _reported(p)) for p in self.run_dir.glob("epoch_*") if (p / META_FILE).is_file()
        ]
        self.in_tune = _in_tune()

    @contextlib.contextmanager
    def latest_checkpoint(self) -> Iterator[Location | None]:
        yield self.checkpoints[-1][0] if self.checkpoints else None

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device)

    def shard(self) -> Any:
        return self.dataset

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None, name: str) -> None:
        if checkpoint_dir:
            (Path(checkpoint_dir) / REPORTED_FILE).write_text(json.dumps(metrics))
            target = self.run_dir / name
            # whole or not at all (an epoch re-run after a crash replaces it with the same values)
            target.put_dir(checkpoint_dir, last=(META_FILE,))
            self.checkpoints = [(p, m) for p, m in self.checkpoints if p != target] + [
                (target, dict(metrics))
            ]
        if self.in_tune:
            import ray.tune

            ray.tune.report(tune_metrics(metrics))


REPORTED_FILE = "reported.json"  # a local checkpoint's reported metrics (selection_rank included)
# What a run inside a Tune trial reports to Tune each epoch: what the study reads back (its searcher's and
# ASHA's score, the progress line, the records); the rest of an epoch's metrics go to MLflow only. Tune keeps
# a running analysis of every reported metric for every trial in the driver (a dict and two deques each:
# about half of a 1,000-trial sweep's driver memory growth with every metric reported).
TUNE_KEYS = ("epoch", "selected_score", "selection_rank", "loss", "valpx_pxap", "valcl_cl", "images_per_s")


def tune_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The part of an epoch's metrics a Tune trial reports (TUNE_KEYS)."""
    return {k: metrics[k] for k in TUNE_KEYS if k in metrics}


def _reported(checkpoint: Location) -> dict[str, Any]:
    """What a checkpoint of an earlier attempt reported; for checkpoints written before `reported.json`,
    rebuilt from its meta (the rank as the worker computes it: the selection metric, ties as the run did)."""
    if (checkpoint / REPORTED_FILE).is_file():
        return (checkpoint / REPORTED_FILE).read_json()
    from pixelcam.config import SELECTION_METRICS, tie_sign

    meta = (checkpoint / META_FILE).read_json()
    epoch = int(checkpoint.name.split("_")[1])
    metrics = dict(meta["metrics"]) | {"epoch": epoch}
    config = meta.get("config", {})
    key = SELECTION_METRICS[config.get("selection", "b-loc")]
    sign = tie_sign(config.get("checkpoint_ties", "earliest"))  # runs before the switch: the earliest
    metrics.setdefault("selection_rank", metrics[key] + sign * 1e-9 * epoch)
    return metrics


def _in_tune() -> bool:
    import warnings

    try:
        import ray.tune

        with warnings.catch_warnings():  # outside a trial Ray warns that there is no trial id, then says None
            warnings.simplefilter("ignore")
            return ray.tune.get_context().get_trial_id() is not None
    except (ImportError, RuntimeError, AttributeError):  # not inside a Tune trial (or no Tune session)
        return False
