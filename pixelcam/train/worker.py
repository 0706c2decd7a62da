"""The training loop, run by every Ray Train worker or in-process for one worker (`train/session.py`): build,
(resume,) train, validate, checkpoint, report, log.

Per epoch: train on this worker's shard of the Ray Data `train` dataset; validate on this rank's share of
valpx/valcl with states summed over ranks; when the epoch improves B-LOC or B-CL (from `select_from_epoch`
on), rank 0 writes a checkpoint (weights, optimizer, meta with metrics, tau and both bests so far) after
logging the epoch to MLflow; every rank then reports (a barrier under Ray Train) and rank 0 prints one
progress line. After a restart (worker failure or `--resume`) training continues after the
latest checkpoint; an epoch that reached MLflow but not a checkpoint is re-run without being logged again,
so every epoch appears exactly once.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import torch

from pixelcam.config import SELECTION_METRICS, TrainConfig
from pixelcam.models.base import WSOLModel
from pixelcam.models.precision import Precision
from pixelcam.runtime.build import (
    build_model,
    build_pseudo_labeler,
    derived_seed,
    init_from_baseline,
    keep_best,
    make_meta,
)
from pixelcam.runtime.checkpoint import load_checkpoint, load_optim_state, save_checkpoint
from pixelcam.runtime.data import iter_split
from pixelcam.runtime.transforms import Augment
from pixelcam.train.overlays import overlay_grid
from pixelcam.train.steps import NonFiniteLossError, train_epoch, validate

SHUFFLE_BATCHES = 4  # local shuffle buffer, in batches: big enough to mix classes, small enough to stream
# Batches prepared ahead of the training step on a GPU (copy and augmentation overlap the kernels). On the CPU
# none: a prefetch thread's Python work competes with torch's intra-op threads for the same cores, and the
# stalls cost more than doing it inline (benchmarks/train_throughput.py, 2 cores: in-process 1.14x ->
# 1.01-1.03x of a bare loop).
PREFETCH_BATCHES = {"cuda": 2, "cpu": 0}
OVERLAY_IMAGES = 4
EPOCH_METRICS = (
    "loss",
    "ce",
    "pixel_ce",
    "train_cl",
    "valpx_pxap",
    "tau",
    "valcl_cl",
    "lr",
    "images_per_s",
    "input_wait_s",
)


def train_loop_per_worker(payload: dict[str, Any], session: Any = None) -> dict[str, Any]:
    """The training loop: Ray Train's entry point (`session` None: a `RayTrainSession`), or run in-process
    with a `LocalSession`. `payload`: {"config": TrainConfig dict, "mlflow_uri", "mlflow_run_id",
    "baseline_dir", "init_dir", "started", "dataset" (the driver's opened PatchDataset)}. Returns (rank 0)
    {"best": ..., "epochs": ..., "history": [per-epoch metrics]} or {"error": ...} on a non-finite loss."""
    from pixelcam.train.session import RayTrainSession

    cfg = TrainConfig.from_dict(payload["config"])
    startup = {"workers": time.time() - payload.get("started", time.time())}  # seconds since train() began
    if session is None:
        _quiet_ray_train_logs()
        session = RayTrainSession()
    rank, world, device = session.rank, session.world, session.device
    ds = payload["dataset"]
    class_names = ds.class_names(cfg.source)

    torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model = build_model(cfg, len(class_names))
    labeler, init = None, None
    if cfg.is_pixelcam:
        roi = set(ds.roi_classes(cfg.source))  # the dataset's ROI semantics decide where FG seeds may go
        no_roi = {i for i, name in enumerate(class_names) if name not in roi}
        labeler = build_pseudo_labeler(cfg, payload["baseline_dir"], device, no_roi)
        init = {"from": cfg.init_from, "checkpoint": payload.get("init_dir"), "parts": []}
        if payload.get("init_dir"):
            init["parts"] = init_from_baseline(model, load_checkpoint(payload["init_dir"]).model_state)

    start_epoch, best = 0, {"epoch": -1, "score": float("-inf")}
    best_by = {sel: {"epoch": -1, "score": float("-inf")} for sel in SELECTION_METRICS}
    resumed_meta = None
    optim_state = None
    with session.latest_checkpoint() as d:
        if d is not None:
            loaded = load_checkpoint(d)
            if loaded.method != cfg.method:
                raise ValueError(
                    f"{d}: checkpoint of method {loaded.method!r}, this run trains {cfg.method!r}"
                )
            model.load_state_dict(loaded.model_state)
            optim_state = load_optim_state(d)
            resumed_meta = loaded.meta
    if resumed_meta is not None:
        start_epoch, best = resumed_meta["epoch"] + 1, resumed_meta["best"]
        best_by = resumed_meta.get("best_by") or best_by

    num = Precision(cfg.precision, device, cfg.channels_last)
    if device.type == "cuda":  # fixed crop and eval sizes: let cuDNN pick its fastest kernels once
        torch.backends.cudnn.benchmark = True
    model = session.prepare(num.model(model))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_decay)
    if optim_state is not None:
        optimizer.load_state_dict(optim_state["optimizer"])
        scheduler.load_state_dict(optim_state["scheduler"])

    logger = None
    if rank == 0 and payload.get("mlflow_run_id"):
        from pixelcam.tracking import RunLogger

        logger = RunLogger(payload["mlflow_run_id"], payload["mlflow_uri"])

    startup["model"] = time.time() - payload.get("started", time.time())
    shard = session.shard()
    net = model.module if hasattr(model, "module") else model
    history = []  # every epoch this call ran (after a resume: from the resumed epoch on)
    for epoch in range(start_epoch, cfg.epochs):
        lr = optimizer.param_groups[0]["lr"]
        if labeler is not None:
            labeler.reseed(derived_seed(cfg.seed, "pseudo", rank, epoch))
        batches = shard.iter_torch_batches(
            batch_size=cfg.batch_size,
            # on CUDA the images travel as uint8 and are cropped, flipped and normalised on the device
            collate_fn=Augment(cfg.crop, cfg.seed, epoch, on_device=device.type == "cuda"),
            local_shuffle_buffer_size=SHUFFLE_BATCHES * cfg.batch_size,
            local_shuffle_seed=derived_seed(cfg.seed, "shuffle", rank, epoch),
            prefetch_batches=PREFETCH_BATCHES.get(device.type, 2),
            # the host-to-device copy happens on Ray Data's prefetch thread, from pinned memory on CUDA
            device=device,
            pin_memory=device.type == "cuda",
        )

        def first_step(b: int, epoch: int = epoch) -> None:
            if b == 0 and epoch == start_epoch:
                startup["first_step"] = time.time() - payload.get("started", time.time())

        try:
            stats = train_epoch(
                model, batches, optimizer, epoch, device, labeler, cfg.lam, on_batch=first_step, precision=num
            )
        except NonFiniteLossError as exc:
            # Every rank stops at the same step (the finiteness flag is all-reduced) and hands the message
            # back, instead of raising into FailureConfig, which would only repeat the same divergence.
            return {"error": str(exc), "epoch": epoch}
        scheduler.step()
        # Throughput over all workers: images seen by every rank / slowest rank's time.
        totals = torch.tensor([float(stats.images), stats.seconds])
        if world > 1:
            import torch.distributed as dist

            imgs = torch.tensor([float(stats.images)])
            secs = torch.tensor([stats.seconds])
            dist.all_reduce(imgs)
            dist.all_reduce(secs, op=dist.ReduceOp.MAX)
            totals = torch.cat([imgs, secs])
        train_acc = stats.train_accuracy.sync().compute() if stats.images or world > 1 else 0.0

        val = validate(
            model,
            iter_split(ds, cfg.source, "valpx", cfg.resize, cfg.batch_size, rank, world),
            iter_split(ds, cfg.source, "valcl", cfg.resize, cfg.batch_size, rank, world),
            device,
            cfg.num_bins,
            cfg.threshold_criterion,
            cfg.eval_size,
            precision=num,
        )
        metrics = {
            "loss": stats.loss,
            "ce": stats.ce,
            "pixel_ce": stats.pixel_ce,
            "train_cl": train_acc,
            **val.as_dict(),
            "lr": lr,
            "images_per_s": float(totals[0] / max(float(totals[1]), 1e-9)),
            "input_wait_s": stats.input_wait,  # rank 0's; on a GPU, the time it idled for input
        }
        score = metrics[cfg.selection_metric]
        improved = []
        if epoch >= cfg.select_from_epoch:  # earlier epochs are never selected (nor checkpointed)
            best = keep_best(
                metrics, cfg.selection_metric, epoch, val.tau, best
            )  # ties keep the earlier epoch
            improved = [s for s, k in SELECTION_METRICS.items() if metrics[k] > best_by[s]["score"]]
            best_by = {
                s: keep_best(metrics, k, epoch, val.tau, best_by[s]) for s, k in SELECTION_METRICS.items()
            }
        # best so far: what a tuner compares across trials (this epoch's score before the first selectable)
        metrics["selected_score"] = best["score"] if best["epoch"] >= 0 else score
        # Ray keeps the best checkpoint by this rank; ties go to the earlier epoch.
        metrics["selection_rank"] = score - 1e-9 * epoch

        if rank == 0 and epoch == start_epoch and "first_step" in startup:
            # where a run's fixed start-up goes: Ray Train's workers up, the model built (and its baseline and
            # initial weights loaded), the first SGD step done (input pipeline started)
            print(
                f"[{cfg.method} {cfg.source}] start-up: workers {startup['workers']:.1f} s, model "
                f"{startup['model']:.1f} s, first step {startup['first_step']:.1f} s after train()",
                flush=True,
            )
            if logger is not None:
                logger.metrics({f"startup_{k}_s": v for k, v in startup.items()}, step=epoch)
        if logger is not None and epoch not in logger.logged_steps("valpx_pxap"):
            # Logged before the checkpoint exists, so a checkpointed epoch is always in MLflow; an epoch
            # re-run after a failure is skipped (its values are the same: the run is deterministic).
            logger.metrics({k: metrics[k] for k in EPOCH_METRICS}, step=epoch)
            logger.image(_overlays(net, ds, cfg, num), f"cam_overlays/epoch_{epoch:03d}.png")

        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0 and improved:  # only the B-LOC and B-CL bests are kept: skip other epochs' writes
                meta = make_meta(
                    cfg,
                    class_names,
                    ds.hash,
                    epoch,
                    {k: metrics[k] for k in EPOCH_METRICS},
                    best,
                    best_by,
                    init,
                )
                save_checkpoint(tmp, net, meta, optimizer, scheduler)
                checkpoint = tmp
            session.report({**metrics, "epoch": epoch}, checkpoint, f"epoch_{epoch:03d}")

        history.append({"epoch": epoch, **{k: metrics[k] for k in EPOCH_METRICS}})
        if rank == 0:
            flag = " *" if best["epoch"] == epoch else ""
            print(
                f"[{cfg.method} {cfg.source}] epoch {epoch + 1}/{cfg.epochs}  loss {stats.loss:.4f}  "
                f"train CL {train_acc:.1f}  valpx PxAP {val.valpx_pxap:.2f} (tau {val.tau:.3f})  "
                f"valcl CL {val.valcl_cl:.1f}  lr {lr:.2g}  {metrics['images_per_s']:.1f} img/s "
                f"(input wait {100 * stats.input_wait_fraction:.0f}%, {world} "
                f"worker{'s' if world > 1 else ''}){flag}",
                flush=True,
            )
    return {"best": best, "epochs": cfg.epochs, "history": history}


def _quiet_ray_train_logs() -> None:
    """Ray Train logs every report at INFO on a logger named after its file (LoggingConfig misses it)."""
    import logging

    try:
        from ray.train.v2._internal.execution import context
    except ImportError:  # pragma: no cover - internal module moved
        return
    logging.getLogger(context.__file__).setLevel(logging.WARNING)


def _overlays(model: WSOLModel, ds, cfg: TrainConfig, num: Precision):
    """Overlay strip of the first valpx images (input + ROI | map) for MLflow."""
    batch = next(iter(iter_split(ds, cfg.source, "valpx", cfg.resize, OVERLAY_IMAGES, limit=OVERLAY_IMAGES)))
    was_training = model.training
    model.eval()
    try:
        with num.autocast():
            maps = model.cam(num.images(batch.images), batch.labels.to(num.device)).cpu()
    finally:
        model.train(was_training)
    return overlay_grid(batch.images, batch.masks, maps)
