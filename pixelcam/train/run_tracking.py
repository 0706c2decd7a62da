"""A training run's record: its MLflow run (opened by the driver, reopened on resume, closed as FINISHED,
KILLED or FAILED according to how the run ended) and `pixelcam_run.json` in the run directory, which ties
the two together."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import yaml

from pixelcam.config import TrainConfig
from pixelcam.data.reader import PatchDataset
from pixelcam.runtime.checkpoint import selected_in_run
from pixelcam.storage import Location
from pixelcam.tracking import CHECKPOINT_TAG, RUN_DIR_TAG, RunLogger, flat_params, start_run, tracking_uri

RUN_FILE = "pixelcam_run.json"


@dataclass
class TrainResult:
    run_dir: Location
    checkpoint: Location  # the selected checkpoint (B-LOC or B-CL)
    epoch: int
    metrics: dict[str, float]
    tau: float
    mlflow_run_id: str | None
    # per-epoch metrics of the epochs this call trained (loss, PxAP, CL, images/s, input wait, ...)
    history: list[dict[str, float]] = field(default_factory=list)


def open_run(
    cfg: TrainConfig,
    run_dir: Location,
    ds: PatchDataset,
    resume: bool,
    kind: str,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
    uri: str | None = None,
) -> tuple[str, str]:
    uri = uri or tracking_uri()
    state_file = run_dir / RUN_FILE
    if resume and state_file.is_file():
        run_id = state_file.read_json()["mlflow_run_id"]
        RunLogger(run_id, uri).reopen()
        return uri, run_id
    tags = {
        "method": cfg.method,
        "backbone": cfg.resolved_backbone(),
        "source": cfg.source,
        "selection": cfg.selection,
        "dataset_hash": ds.hash,
        RUN_DIR_TAG: str(run_dir),
        **cfg.tags,
        **(extra_tags or {}),
    }
    params = flat_params({k: v for k, v in cfg.to_dict().items() if k != "tags"})
    params["dataset_hash"] = ds.hash
    log = start_run(
        kind,
        cfg.run_name(),
        experiment=cfg.experiment,
        parent_run_id=parent_run_id,
        tags=tags,
        params=params,
        uri=uri,
    )
    log.text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), "config.yaml")
    log.text(json.dumps(ds.manifest, indent=2, sort_keys=True), "dataset_manifest.json")
    state_file.write_json({"mlflow_run_id": log.run_id, "tracking_uri": uri})
    return uri, log.run_id


def close_interrupted(uri: str, run_id: str, run_dir: Location, epochs: int, exc: BaseException) -> None:
    """End the MLflow run of a run that did not return: FAILED on an error, else (a stop: Ctrl-C, or Tune's
    scheduler with SystemExit at a report) as `close_stopped_run` does."""
    if isinstance(exc, Exception):
        RunLogger(run_id, uri).finish("FAILED")
    else:
        close_stopped_run(run_dir, epochs, uri)


def close_stopped_run(
    run_dir: str | os.PathLike | Location, epochs: int, uri: str | None = None
) -> str | None:
    """Close the MLflow run of a run stopped from outside (an ASHA-stopped Tune trial) that is still RUNNING
    or was marked FAILED while torn down: FINISHED with its selection logged when all `epochs` ran, else
    KILLED, so that `status = 'KILLED'` means exactly "stopped early". Returns the new status, or None when
    the run has no MLflow run or already ended FINISHED/KILLED."""
    run_dir = Location(run_dir)
    state = run_dir / RUN_FILE
    if not state.is_file():
        return None
    rec = state.read_json()
    uri, run_id = uri or rec["tracking_uri"], rec["mlflow_run_id"]
    log = RunLogger(run_id, uri)
    if log.status() not in ("RUNNING", "FAILED"):
        return None
    # epochs that ran = epochs logged (each exactly once); checkpoints exist only for improving epochs
    info, ran = selected_in_run(run_dir), len(log.logged_steps("valpx_pxap"))
    if info is None or ran < epochs:
        log.finish("KILLED")
        return "KILLED"
    sel = TrainResult(run_dir, Location(info.checkpoint), info.epoch, info.metrics, info.tau, run_id)
    log_selected(uri, run_id, sel)
    return "FINISHED"


def log_selected(uri: str, run_id: str, sel: TrainResult) -> None:
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
