"""A no-op stand-in for a trial's training (spec `stand_in: true`, for `benchmarks/sweep_scale.py` only).

It does a trial's bookkeeping and nothing else: its MLflow run opened as a training run's is (`open_run`:
tags, parameters, config and manifest artifacts, its run directory with `pixelcam_run.json`), one metrics
row per epoch, one Tune report per epoch (so ASHA stops it as it would a training), the run ended. The
score is a smooth function of the searched values, so the searcher has something to climb. No model is
trained or written: the study's experiments then have no checkpoint and its later steps have nothing to
evaluate. What it measures: the driver's cost per trial (Optuna ask/tell, Tune's bookkeeping, MLflow, the
study's records) at a scale no one trains on a laptop.
"""

from __future__ import annotations

import math
from typing import Any

from pixelcam.config import TrainConfig
from pixelcam.data.reader import PatchDataset
from pixelcam.storage import Location
from pixelcam.tracking import RunKind, RunLogger
from pixelcam.train.run_tracking import open_run
from pixelcam.train.session import tune_metrics


def stand_in_score(values: dict[str, Any], epoch: int) -> float:
    """A PxAP-like score in (0, 100): rising over epochs, highest where numeric values sit near 1e-2."""
    numbers = [abs(float(v)) for v in values.values() if isinstance(v, int | float) and v]
    fit = sum(1.0 / (1.0 + (math.log10(v) + 2.0) ** 2) for v in numbers) / len(numbers) if numbers else 0.5
    return 100.0 * fit * (1.0 - math.exp(-(epoch + 1) / 2.0))


def stand_in_metrics(cfg: TrainConfig, values: dict[str, Any], epoch: int) -> dict[str, float]:
    """The per-epoch metrics a training logs (`train.worker.EPOCH_METRICS`), with the stand-in's score."""
    from pixelcam.train.worker import EPOCH_METRICS

    metrics = dict.fromkeys(EPOCH_METRICS, 0.0)
    score = stand_in_score(values, epoch)
    metrics.update(valpx_pxap=score, valcl_cl=score, tau=0.5, lr=cfg.lr)
    return metrics


def run_stand_in(
    cfg: TrainConfig,
    dataset: PatchDataset,
    values: dict[str, Any],
    parent_run_id: str | None,
    mlflow_uri: str | None,
    tags: dict[str, str],
) -> None:
    """One stand-in trial inside its Tune actor (see the module's docstring)."""
    import ray.tune

    run_dir = Location(cfg.storage) / cfg.run_name()
    run_dir.mkdir()
    uri, run_id = open_run(cfg, run_dir, dataset, False, RunKind.TRIAL, parent_run_id, tags, mlflow_uri)
    log = RunLogger(run_id, uri)
    best = -math.inf
    for epoch in range(cfg.epochs):
        metrics = stand_in_metrics(cfg, values, epoch)
        log.metrics(metrics, step=epoch)
        if epoch >= cfg.select_from_epoch:
            best = max(best, metrics[cfg.selection_metric])
        score = best if best > -math.inf else metrics[cfg.selection_metric]
        ray.tune.report(tune_metrics({**metrics, "epoch": epoch, "selected_score": score}))
    log.finish("FINISHED")
