"""The driver side of a training run: check inputs, start Ray, open the MLflow run, launch the TorchTrainer,
pick the selected checkpoint and record it.

`train(cfg)` -> TrainResult. The run lives in `<storage>/<name>`, a local directory or an object-store URI
alike (`pixelcam.storage.Location`; Ray Train's `storage_path`): its checkpoints, `selected.json`, and
`pixelcam_run.json` with the MLflow run id. `train(cfg, resume=True)` continues it from its latest
checkpoint (Ray Train finds the run snapshot by name) and keeps logging into the same MLflow run.
"""

from __future__ import annotations

import threading
import time
from pathlib import PurePosixPath
from typing import Any

from pixelcam.config import SELECTION_METRICS, ConfigError, TrainConfig, tie_sign
from pixelcam.data.reader import PatchDataset, open_dataset
from pixelcam.errors import Terminated, mark_abandoned
from pixelcam.models.factory import list_methods, method_class
from pixelcam.runtime.build import check_backbone_weights
from pixelcam.runtime.checkpoint import (
    SELECTED_FILE,
    CheckpointError,
    baseline_checkpoint,
    load_checkpoint,
)
from pixelcam.runtime.cluster import (
    TrainError,
    check_local_gpu,
    check_schedulable,
    init_ray,
    worker_resources,
)
from pixelcam.runtime.data import check_splits, train_data_key, train_dataset
from pixelcam.storage import Location
from pixelcam.storage.lock import exclusive
from pixelcam.tracking import RunKind
from pixelcam.train.payload import RunPayload
from pixelcam.train.run_tracking import RUN_FILE, TrainResult, close_interrupted, log_selected, open_run

CACHE_FRACTION = 0.25  # decoded train images are cached when they take at most this share of the object store


def _prepare_pixelcam(cfg: TrainConfig, num_classes: int) -> tuple[TrainConfig, str, str | None]:
    """(cfg, CAM checkpoint, init checkpoint or None) of the baseline `pseudo_labels_from` names.

    The CAMs come from its `pseudo_labels_checkpoint` (B-LOC or B-CL) best; PixelCAM's backbone and image
    head start from its `init_from` best (official: B-CL). Its backbone is the default and must match an
    explicit one.
    """
    ckpt, how = baseline_checkpoint(str(cfg.pseudo_labels_from), cfg.pseudo_labels_checkpoint)
    base = load_checkpoint(ckpt)
    if not method_class(base.method).is_baseline():
        raise CheckpointError(
            f"{ckpt}: a {base.method!r} checkpoint; {cfg.method}'s pseudo-labels come from a baseline "
            f"{list_methods(kind='baseline')}"
        )
    if cfg.backbone is None:
        cfg = cfg.replace(backbone=base.meta["backbone"])
    elif cfg.backbone != base.meta["backbone"]:
        raise ConfigError(
            f"backbone {cfg.backbone!r} differs from the baseline's {base.meta['backbone']!r} ({ckpt}); "
            f"{cfg.method} starts from the baseline's backbone"
        )
    if cfg.method == "negev" or cfg.pixelcam_head == "baseline":  # the baseline's classifier, its settings
        own = base.meta.get("config", {})
        cfg = cfg.replace(
            baseline_method=base.method,
            mil_attention=own.get("mil_attention"),
            gradcampp_variant=own.get("gradcampp_variant"),
        )
    if len(base.meta["class_names"]) != num_classes:
        raise CheckpointError(
            f"{ckpt}: {len(base.meta['class_names'])} classes, the source has {num_classes}"
        )
    init = None
    if cfg.init_from != "none":
        init_ckpt, init_how = baseline_checkpoint(str(cfg.pseudo_labels_from), cfg.init_from)
        init = init_ckpt.uri
        how = f"{how}; init: {init_how}"
    print(f"[{cfg.method} {cfg.source}] pseudo-labels: {how}", flush=True)
    return cfg, ckpt.uri, init


def train(
    cfg: TrainConfig,
    resume: bool = False,
    mlflow: bool = True,
    callbacks: list | None = None,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
    mlflow_uri: str | None = None,
    dataset: PatchDataset | None = None,
    kind: str = RunKind.TRAIN,
    shared_data: dict[str, Any] | None = None,
    verbose: bool = False,
) -> TrainResult:
    """Run (or resume) one training run on Ray Train; returns the selected checkpoint and its metrics.

    `callbacks` go to Ray Train (a Tune trial passes TuneReportCallback); `parent_run_id` and `extra_tags`
    nest the MLflow run under a study, whose tracking URI a trial passes as `mlflow_uri` (a Tune trial runs
    in a directory of its own, where the default store `./mlflow.db` would be another one). `dataset` is the
    already opened `cfg.data` (a study opens it once); the workers get this handle and do not reopen it.
    `kind` is the MLflow run's kind (`RunKind.TRIAL` for a study's trial). `shared_data`: decoded train
    datasets already materialised by the caller (a study, once for all its trials), by `train_data_key`;
    used when this run would cache its decoded images anyway. The console shows the run's own progress
    lines; Ray's and its processes' output stays in Ray's session logs unless `verbose`.
    """
    started = time.time()
    import ray.train

    ds = dataset or open_dataset(cfg.data)
    storage = Location(cfg.storage)
    storage.check()  # an object store that does not answer: one line before anything starts
    cfg = cfg.replace(data=ds.location, storage=storage.uri)
    cfg.validate()
    check_splits(ds, cfg.source, ("train", "valcl", "valpx"))
    num_classes = len(ds.class_names(cfg.source))
    baseline_dir = init_dir = None
    if cfg.is_pixelcam:
        cfg, baseline_dir, init_dir = _prepare_pixelcam(cfg, num_classes)
    check_backbone_weights(cfg)  # a wrong weights file is refused here, before Ray or a worker starts

    run_dir = storage / cfg.run_name()
    with exclusive(run_dir, "training run"):  # one writer per run: a second `--name` fails at once
        _check_run_dir(run_dir, resume)
        init_ray(quiet=not verbose, show=None if verbose else own_progress_line)
        need = worker_resources(cfg, ray.cluster_resources())
        if not cfg.runs_locally:  # a local run uses the resources its caller holds (a Tune trial's, or none)
            check_schedulable(need, cfg.num_workers, ray.cluster_resources())
        elif cfg.use_gpu:
            check_local_gpu()
        run_dir.mkdir()  # only once the run can be scheduled

        uri, run_id = (
            open_run(cfg, run_dir, ds, resume, kind, parent_run_id, extra_tags, mlflow_uri)
            if mlflow
            else (None, None)
        )
        payload = RunPayload(cfg, ds, started, uri, run_id, baseline_dir, init_dir)
        try:
            data = run_train_data(cfg, ds, shared_data)
            if cfg.runs_locally:
                checkpoints, out = _run_local(cfg, payload, run_dir, data)
            else:
                checkpoints, out = _run_ray_train(cfg, payload, run_dir, data, need, callbacks)
            selected = _selected(checkpoints, run_dir, cfg.checkpoint_ties)
            selected.history = list(out.get("history", []))
        except BaseException as exc:
            if run_id:
                close_interrupted(uri, run_id, run_dir, cfg.epochs, exc)
            raise
        if run_id:
            log_selected(uri, run_id, selected)
        return selected


def own_progress_line(actor: str | None, message: str) -> bool:
    """A Train worker's own line (`[method source] epoch ...`): the one output of Ray's processes that a
    quiet `pixelcam train` console shows."""
    return actor == "RayTrainWorker" and message.startswith("[")


def _check_run_dir(run_dir: Location, resume: bool) -> None:
    """A new run needs a free name; a resumed one needs its directory."""
    if run_dir.exists() and not resume:
        raise TrainError(f"{run_dir} exists: pass --resume to continue that run, or choose another --name")
    if resume and not run_dir.exists():
        raise TrainError(f"{run_dir}: nothing to resume (no such run directory)")


def run_train_data(cfg: TrainConfig, ds: PatchDataset, shared: dict[str, Any] | None = None) -> Any:
    """The run's Ray Dataset of decoded train images: the caller's shared copy when it has one (same rows,
    same order: it changes nothing but the start-up), else its own. The caller shares only what passes
    `caches_decoded`; asking again here would weigh the object store with the shared copy already in it."""
    key = train_data_key(cfg.source, cfg.resize, cfg.is_supervised)
    if shared and key in shared:
        return shared[key]
    return train_dataset(ds, cfg.source, cfg.resize, cache=caches_decoded(cfg, ds), masks=cfg.is_supervised)


def _run_local(cfg: TrainConfig, payload: RunPayload, run_dir: Location, data: Any) -> tuple[list, dict]:
    """The loop in this process (`LocalSession`); returns the checkpoints written, with their metrics, and
    the loop's return value."""
    from pixelcam.train.session import LocalSession
    from pixelcam.train.worker import train_loop_per_worker

    session = LocalSession(run_dir, data, cfg.use_gpu)
    out = train_loop_per_worker(payload, session) or {}
    if "error" in out:
        raise TrainError(f"training run {cfg.run_name()} stopped: {out['error']}")
    return session.checkpoints, out


def _run_ray_train(
    cfg: TrainConfig,
    payload: RunPayload,
    run_dir: Location,
    data: Any,
    need: dict,
    callbacks: list | None,
) -> tuple[list, dict]:
    """The loop on Ray Train's workers (TorchTrainer, DDP); returns the reported checkpoints with metrics and
    rank 0's return value."""
    import ray.train
    from ray.data import ExecutionOptions
    from ray.train.torch import TorchTrainer

    from pixelcam.train.entry import ray_train_entry

    trainer = TorchTrainer(
        ray_train_entry,  # a light module: the controller unpickles it too
        train_loop_config={"payload": payload},
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.num_workers, use_gpu=cfg.use_gpu, resources_per_worker=need
        ),
        run_config=ray.train.RunConfig(
            name=cfg.run_name(),
            storage_path=cfg.storage,  # a local directory or a URI: the workers persist there themselves
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures, controller_failure_limit=3),
            # Workers checkpoint only epochs that improve B-LOC or B-CL; `_selected` prunes all but the two
            # bests (PixelCAM may take its CAMs from one and its initial weights from the other).
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=None, checkpoint_score_attribute="selection_rank", checkpoint_score_order="max"
            ),
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
            callbacks=callbacks,
        ),
        datasets={"train": data},
        dataset_config=ray.train.DataConfig(
            # one worker reads the whole dataset: no split coordinator actor between it and its blocks
            datasets_to_split=["train"] if cfg.num_workers > 1 else [],
            execution_options=ExecutionOptions(preserve_order=True),
        ),
    )
    try:
        result = fit_interruptibly(trainer)
    except Exception as exc:
        raise TrainError(f"training run {cfg.run_name()} failed: {_root_message(exc)}") from exc
    out = result.return_value or {}
    if "error" in out:
        raise TrainError(f"training run {cfg.run_name()} stopped: {out['error']}")
    return [(run_dir / PurePosixPath(c.path).name, m) for c, m in result.best_checkpoints], out


def fit_interruptibly(trainer: Any) -> Any:
    """`trainer.fit()`; from the main thread, in a daemon thread: Ray Train then installs no SIGINT handler
    of its own (which aborts the run and exits 1 without a word), so Ctrl-C and SIGTERM reach pixelcam as
    exceptions in the main thread, marked abandoned: the CLI prints its line and exits at once (an orderly
    exit would shut Ray down under the `fit` thread, whose next call ends the process with exit 1), and the
    local Ray, the run's controller and workers end with the driver; the epochs checkpointed stay for
    `--resume`."""

    if threading.current_thread() is not threading.main_thread():
        return trainer.fit()
    box: dict[str, Any] = {}

    def fit() -> None:
        try:
            box["result"] = trainer.fit()
        except Exception as exc:  # noqa: BLE001 - handed to the main thread as is
            box["error"] = exc

    thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
    thread.start()
    try:
        while thread.is_alive():  # Ctrl-C / SIGTERM arrive here
            thread.join(0.5)
    except (KeyboardInterrupt, Terminated) as exc:
        mark_abandoned(exc)
        raise
    if "error" in box:
        raise box["error"]
    return box["result"]


def caches_decoded(cfg: TrainConfig, ds: PatchDataset) -> bool:
    """Cache decoded train images when asked, or (auto) when they fit in a quarter of the object store."""
    import ray

    from pixelcam.runtime.data import decoded_bytes

    if cfg.cache_decoded is not None:
        return cfg.cache_decoded
    store = ray.available_resources().get("object_store_memory", 0.0)
    return decoded_bytes(ds, cfg.source, cfg.resize) <= CACHE_FRACTION * store


def _root_message(exc: BaseException) -> str:
    """The innermost worker error of a Ray failure (the useful line), else the exception itself."""
    seen = exc
    while seen.__cause__ is not None:
        seen = seen.__cause__
    msg = str(seen).strip().splitlines()
    return msg[-1] if msg else type(seen).__name__


def _selected(
    checkpoints: list[tuple[Location, dict[str, Any]]], run_dir: Location, ties: str = "latest"
) -> TrainResult:
    """The reported checkpoint with the best selection rank; recorded in `<run_dir>/selected.json` with the
    B-LOC and B-CL bests (`by_selection`, equal scores resolved by `ties`). Every other checkpoint of the
    run is deleted."""
    if not checkpoints:
        raise TrainError(f"{run_dir}: the run reported no checkpoint")
    path, _ = max(checkpoints, key=lambda cm: cm[1]["selection_rank"])
    sign = tie_sign(ties)
    by_selection = {
        sel: max(checkpoints, key=lambda cm, k=key: (cm[1][k], sign * cm[1]["epoch"]))[0]
        for sel, key in SELECTION_METRICS.items()
    }
    keep = {path, *by_selection.values()}
    for p, _ in checkpoints:
        if p not in keep and p.parent == run_dir:
            p.rmtree()
    meta = load_checkpoint(path).meta
    state = run_dir / RUN_FILE
    sel = TrainResult(
        run_dir=run_dir,
        checkpoint=path,
        epoch=meta["epoch"],
        metrics=meta["metrics"],
        tau=meta["tau"],
        mlflow_run_id=state.read_json()["mlflow_run_id"] if state.is_file() else None,
    )
    (run_dir / SELECTED_FILE).write_json(
        {
            "checkpoint": path.relative_to(run_dir),  # relative: the run directory can move
            "epoch": sel.epoch,
            "metrics": sel.metrics,
            "tau": sel.tau,
            "selection": meta["selection"],
            "by_selection": {k: p.relative_to(run_dir) for k, p in by_selection.items()},
            "mlflow_run_id": sel.mlflow_run_id,
        }
    )
    return sel
