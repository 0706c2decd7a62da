"""The driver side of a training run: check inputs, start Ray, open the MLflow run, launch the TorchTrainer,
pick the selected checkpoint and record it.

`train(cfg)` -> TrainResult. The run lives in `<storage>/<name>` (Ray Train's checkpoints, `selected.json`,
`pixelcam_run.json` with the MLflow run id); `train(cfg, resume=True)` continues it from its latest checkpoint
(Ray Train finds the run snapshot by name) and keeps logging into the same MLflow run.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pixelcam.config import ConfigError, TrainConfig
from pixelcam.data.reader import is_uri, open_dataset
from pixelcam.models.factory import BASELINES
from pixelcam.train.checkpoint import (
    SELECTED_FILE,
    CheckpointError,
    latest_meta,
    load_checkpoint,
    resolve_pseudo_label_source,
    selected_in_run,
    write_json_atomic,
)
from pixelcam.train.data import check_splits, train_dataset

RUN_FILE = "pixelcam_run.json"
CPU_FOR_DATA = 1.0  # CPUs left to Ray Data's decode tasks when workers are sized automatically
CACHE_FRACTION = 0.25  # decoded train images are cached when they take at most this share of the object store


class TrainError(RuntimeError):
    """The run failed (diverged, crashed past its retries, or cannot be scheduled)."""


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path  # the selected checkpoint (B-LOC or B-CL)
    epoch: int
    metrics: dict[str, float]
    tau: float
    mlflow_run_id: str | None


def init_ray(num_cpus: int | None = None) -> None:
    """Connect to the cluster in RAY_ADDRESS (jobs) or start a local Ray instance; quiet logging defaults."""
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")  # otherwise each worker print shows twice
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    import ray
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False  # one progress line per epoch instead
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:
        ray.init(address="local", num_cpus=num_cpus, configure_logging=True, logging_level="WARNING")


def worker_resources(cfg: TrainConfig, cluster: dict[str, float]) -> dict[str, float]:
    """Resources of one Train worker. CPU runs default to sharing all CPUs but one, which Ray Data keeps
    (workers holding every CPU starve the input pipeline and the run hangs)."""
    if cfg.use_gpu:
        res = {"GPU": 1.0}
        if cfg.cpus_per_worker:
            res["CPU"] = cfg.cpus_per_worker
        return res
    if cfg.cpus_per_worker:
        return {"CPU": cfg.cpus_per_worker}
    free = max(cluster.get("CPU", 1.0) - CPU_FOR_DATA, 0.5)
    return {"CPU": max(0.5, math.floor(2 * free / cfg.num_workers) / 2)}


def check_schedulable(need: dict[str, float], num_workers: int, cluster: dict[str, float]) -> None:
    """Raise TrainError at once when the workers can never fit (instead of Ray retrying forever)."""
    short = {
        k: (v * num_workers, cluster.get(k, 0.0))
        for k, v in need.items()
        if v * num_workers > cluster.get(k, 0.0)
    }
    if short:
        desc = ", ".join(f"{k}: needs {a:g}, cluster has {b:g}" for k, (a, b) in short.items())
        raise TrainError(f"cannot schedule {num_workers} workers x {need}: {desc}")


def _prepare_pixelcam(cfg: TrainConfig, num_classes: int) -> tuple[TrainConfig, str]:
    """Resolve the baseline checkpoint; its backbone is the default and must match an explicit one."""
    ckpt = resolve_pseudo_label_source(str(cfg.pseudo_labels_from))
    base = load_checkpoint(ckpt)
    if base.method not in BASELINES:
        raise CheckpointError(
            f"{ckpt}: a {base.method!r} checkpoint; PixelCAM's pseudo-labels come from a baseline "
            f"{list(BASELINES)}"
        )
    if cfg.backbone is None:
        cfg = cfg.replace(backbone=base.meta["backbone"])
    elif cfg.backbone != base.meta["backbone"]:
        raise ConfigError(
            f"backbone {cfg.backbone!r} differs from the baseline's {base.meta['backbone']!r} ({ckpt}); "
            f"PixelCAM starts from the baseline's backbone"
        )
    if len(base.meta["class_names"]) != num_classes:
        raise CheckpointError(
            f"{ckpt}: {len(base.meta['class_names'])} classes, the source has {num_classes}"
        )
    return cfg, str(ckpt.resolve())


def _mlflow_run(
    cfg: TrainConfig,
    run_dir: Path,
    ds_hash: str,
    resume: bool,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
    uri: str | None = None,
) -> tuple[str, str]:
    from pixelcam.train.tracking import RunLogger, ensure_experiment, flat_params, start_run, tracking_uri

    uri = uri or tracking_uri()
    state_file = run_dir / RUN_FILE
    if resume and state_file.is_file():
        run_id = json.loads(state_file.read_text())["mlflow_run_id"]
        RunLogger(run_id, uri).client.update_run(run_id, status="RUNNING")
        return uri, run_id
    exp = ensure_experiment(cfg.experiment, uri)
    tags = {
        "method": cfg.method,
        "backbone": cfg.resolved_backbone(),
        "source": cfg.source,
        "selection": cfg.selection,
        "kind": "train",
        "dataset_hash": ds_hash,
        "pixelcam.run_dir": str(run_dir),
        **cfg.tags,
        **(extra_tags or {}),
    }
    params = flat_params({k: v for k, v in cfg.to_dict().items() if k != "tags"})
    params["dataset_hash"] = ds_hash
    run_id = start_run(exp, cfg.run_name(), tags, params, uri, parent_run_id=parent_run_id)
    log = RunLogger(run_id, uri)
    log.text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), "config.yaml")
    log.text(json.dumps(open_dataset(cfg.data).manifest, indent=2, sort_keys=True), "dataset_manifest.json")
    write_json_atomic(state_file, {"mlflow_run_id": run_id, "tracking_uri": uri})
    return uri, run_id


def train(
    cfg: TrainConfig,
    resume: bool = False,
    mlflow: bool = True,
    callbacks: list | None = None,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
    mlflow_uri: str | None = None,
) -> TrainResult:
    """Run (or resume) one training run on Ray Train; returns the selected checkpoint and its metrics.

    `callbacks` go to Ray Train (a Tune trial passes TuneReportCallback); `parent_run_id` and `extra_tags`
    nest the MLflow run under a study, whose tracking URI a trial passes as `mlflow_uri` (a Tune trial runs
    in a directory of its own, where the default store `./mlflow.db` would be another one).
    """
    import ray.train
    from ray.data import ExecutionOptions
    from ray.train.torch import TorchTrainer

    data = cfg.data if is_uri(cfg.data) else str(Path(cfg.data).resolve())
    cfg = cfg.replace(data=data, storage=str(Path(cfg.storage).resolve()))
    cfg.validate()
    ds = open_dataset(cfg.data)
    check_splits(ds, cfg.source, ("train", "valcl", "valpx"))
    num_classes = len(ds.class_names(cfg.source))
    baseline_dir = None
    if cfg.is_pixelcam:
        cfg, baseline_dir = _prepare_pixelcam(cfg, num_classes)

    run_dir = Path(cfg.storage) / cfg.run_name()
    if run_dir.exists() and not resume:
        raise TrainError(f"{run_dir} exists: pass --resume to continue that run, or choose another --name")
    if resume and not run_dir.exists():
        raise TrainError(f"{run_dir}: nothing to resume (no such run directory)")
    run_dir.mkdir(parents=True, exist_ok=True)

    init_ray()
    need = worker_resources(cfg, ray.cluster_resources())
    check_schedulable(need, cfg.num_workers, ray.cluster_resources())

    uri, run_id = (
        _mlflow_run(cfg, run_dir, ds.hash, resume, parent_run_id, extra_tags, mlflow_uri)
        if mlflow
        else (None, None)
    )
    payload = {
        "config": cfg.to_dict(),
        "mlflow_uri": uri,
        "mlflow_run_id": run_id,
        "baseline_dir": baseline_dir,
    }
    trainer = TorchTrainer(
        _entry,
        train_loop_config=payload,
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.num_workers, use_gpu=cfg.use_gpu, resources_per_worker=need
        ),
        run_config=ray.train.RunConfig(
            name=cfg.run_name(),
            storage_path=cfg.storage,
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures, controller_failure_limit=3),
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute="selection_rank", checkpoint_score_order="max"
            ),
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
            callbacks=callbacks,
        ),
        datasets={"train": train_dataset(ds, cfg.source, cfg.resize, cache=_cache(cfg, ds))},
        dataset_config=ray.train.DataConfig(
            datasets_to_split=["train"], execution_options=ExecutionOptions(preserve_order=True)
        ),
    )
    try:
        try:
            result = trainer.fit()
        except Exception as exc:
            raise TrainError(f"training run {cfg.run_name()} failed: {_root_message(exc)}") from exc
        out = result.return_value or {}
        if "error" in out:
            raise TrainError(f"training run {cfg.run_name()} stopped: {out['error']}")
        selected = _selected(result, run_dir)
    except BaseException as exc:
        if run_id:
            _close_interrupted(uri, run_id, run_dir, cfg.epochs, exc)
        raise
    if run_id:
        _log_selected(uri, run_id, selected)
    return selected


def _cache(cfg: TrainConfig, ds) -> bool:
    """Cache decoded train images when asked, or (auto) when they fit in a quarter of the object store."""
    import ray

    from pixelcam.train.data import decoded_bytes

    if cfg.cache_decoded is not None:
        return cfg.cache_decoded
    store = ray.available_resources().get("object_store_memory", 0.0)
    return decoded_bytes(ds, cfg.source, cfg.resize) <= CACHE_FRACTION * store


def _entry(payload: dict[str, Any]) -> dict[str, Any]:
    from pixelcam.train.worker import train_loop_per_worker

    return train_loop_per_worker(payload)


def _root_message(exc: BaseException) -> str:
    """The innermost worker error of a Ray failure (the useful line), else the exception itself."""
    seen = exc
    while seen.__cause__ is not None:
        seen = seen.__cause__
    msg = str(seen).strip().splitlines()
    return msg[-1] if msg else type(seen).__name__


def _selected(result: Any, run_dir: Path) -> TrainResult:
    """The kept checkpoint with the best selection rank; recorded in `<run_dir>/selected.json`."""
    if not result.best_checkpoints:
        raise TrainError(f"{run_dir}: the run reported no checkpoint")
    ckpt, _ = max(result.best_checkpoints, key=lambda cm: cm[1]["selection_rank"])
    path = Path(ckpt.path)
    meta = load_checkpoint(path).meta
    sel = TrainResult(
        run_dir=run_dir,
        checkpoint=path,
        epoch=meta["epoch"],
        metrics=meta["metrics"],
        tau=meta["tau"],
        mlflow_run_id=None,
    )
    state = run_dir / RUN_FILE
    if state.is_file():
        sel.mlflow_run_id = json.loads(state.read_text())["mlflow_run_id"]
    write_json_atomic(
        run_dir / SELECTED_FILE,
        {
            "checkpoint": str(path),
            "epoch": sel.epoch,
            "metrics": sel.metrics,
            "tau": sel.tau,
            "selection": meta["selection"],
            "mlflow_run_id": sel.mlflow_run_id,
        },
    )
    return sel


def _close_interrupted(uri: str, run_id: str, run_dir: Path, epochs: int, exc: BaseException) -> None:
    """End the MLflow run of a run that did not return: FAILED on an error, else (a stop: Ctrl-C, or Tune's
    scheduler with SystemExit at a report) as `close_stopped_run` does."""
    from pixelcam.train.tracking import RunLogger

    if isinstance(exc, Exception):
        RunLogger(run_id, uri).finish("FAILED")
    else:
        close_stopped_run(run_dir, epochs, uri)


def close_stopped_run(run_dir: str | os.PathLike, epochs: int, uri: str | None = None) -> str | None:
    """Close the MLflow run of a run stopped from outside (an ASHA-stopped Tune trial) that is still RUNNING
    or was marked FAILED while torn down: FINISHED with its selection logged when all `epochs` ran, else
    KILLED, so that `status = 'KILLED'` means exactly "stopped early". Returns the new status, or None when
    the run has no MLflow run or already ended FINISHED/KILLED."""
    from pixelcam.train.tracking import RunLogger

    run_dir = Path(run_dir)
    state = run_dir / RUN_FILE
    if not state.is_file():
        return None
    rec = json.loads(state.read_text())
    uri, run_id = uri or rec["tracking_uri"], rec["mlflow_run_id"]
    log = RunLogger(run_id, uri)
    if log.client.get_run(run_id).info.status not in ("RUNNING", "FAILED"):
        return None
    info, latest = selected_in_run(run_dir), latest_meta(run_dir)
    if info is None or latest is None or latest["epoch"] + 1 < epochs:
        log.finish("KILLED")
        return "KILLED"
    sel = TrainResult(run_dir, Path(info["checkpoint"]), info["epoch"], info["metrics"], info["tau"], run_id)
    _log_selected(uri, run_id, sel)
    return "FINISHED"


def _log_selected(uri: str, run_id: str, sel: TrainResult) -> None:
    from pixelcam.train.tracking import CHECKPOINT_TAG, RUN_DIR_TAG, RunLogger

    log = RunLogger(run_id, uri)
    log.metrics(
        {
            "selected_epoch": sel.epoch,
            "selected_tau": sel.tau,
            **{f"selected_{k}": v for k, v in sel.metrics.items() if k in ("valpx_pxap", "valcl_cl")},
        }
    )
    log.tags({CHECKPOINT_TAG: str(sel.checkpoint), RUN_DIR_TAG: str(sel.run_dir)})
    log.finish("FINISHED")
