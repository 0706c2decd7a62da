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

from pixelcam.adapters import ray as ray_adapter
from pixelcam.config import SELECTION_METRICS, TrainConfig, tie_sign
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
from pixelcam.runtime.data import decoded_bytes, iter_split
from pixelcam.runtime.resident import LOAD_BATCH, ResidentSplit, equal_steps, keep_on_device
from pixelcam.runtime.transforms import Augment
from pixelcam.train.objectives import create_objective
from pixelcam.train.overlays import overlay_grid
from pixelcam.train.payload import RunPayload
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
    "train_s",  # the epoch's SGD pass (input included), rank 0's
    "val_s",  # its validation pass (valpx and valcl)
)


def train_loop_per_worker(payload: RunPayload | dict[str, RunPayload], session: Any = None) -> dict[str, Any]:
    """The training loop: Ray Train's entry point (`session` None: a `RayTrainSession`; `payload` then comes
    as Ray Train's `{"payload": RunPayload}` config), or run in-process with a `LocalSession`. Returns
    (rank 0) {"best", "epochs", "history": [per-epoch metrics]}, or {"error": ...} on a non-finite loss."""
    from pixelcam.train.session import RayTrainSession

    if isinstance(payload, dict):
        payload = payload["payload"]
    startup = {"workers": payload.since_start()}  # seconds since train() began
    if session is None:
        ray_adapter.quiet_train_report_logs()
        session = RayTrainSession()
    loop = EpochLoop(payload, session, startup)
    for epoch in range(loop.start_epoch, loop.cfg.epochs):
        try:
            loop.run_epoch(epoch)
        except NonFiniteLossError as exc:
            # Every rank stops at the same step (the finiteness flag is all-reduced) and hands the message
            # back, instead of raising into FailureConfig, which would only repeat the same divergence.
            return {"error": str(exc), "epoch": epoch}
    return {"best": loop.best, "epochs": loop.cfg.epochs, "history": loop.history}


class EpochLoop:
    """One worker's run: the model (resumed from the session's latest checkpoint), its optimizer, PixelCAM's
    pseudo-labeler, the bests so far, and one `run_epoch` per epoch."""

    def __init__(self, payload: RunPayload, session: Any, startup: dict[str, float]) -> None:
        self.payload, self.session, self.startup = payload, session, startup
        self.cfg: TrainConfig = payload.config
        self.rank, self.world, self.device = session.rank, session.world, session.device
        self.ds = payload.dataset
        self.class_names = self.ds.class_names(self.cfg.source)
        self.history: list[dict[str, float]] = []  # every epoch this call ran (after a resume: from it on)
        self.best: dict[str, Any] = {"epoch": -1, "score": float("-inf")}
        self.best_by = {sel: {"epoch": -1, "score": float("-inf")} for sel in SELECTION_METRICS}
        torch.manual_seed(self.cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        model = build_model(self.cfg, len(self.class_names))
        self.labeler, self.init = self._pixelcam(model)
        self.start_epoch, optim_state = self._resume(model)
        self.num = Precision(self.cfg.precision, self.device, self.cfg.channels_last)
        if self.device.type == "cuda":  # fixed crop and eval sizes: let cuDNN pick its fastest kernels once
            torch.backends.cudnn.benchmark = True
        self.model = session.prepare(self.num.model(model))
        self.net = self.model.module if hasattr(self.model, "module") else self.model
        self.optimizer, self.scheduler = self._optimizer(optim_state)
        self.logger = self._logger()
        self.startup["model"] = payload.since_start()
        self.shard = session.shard()
        self.resident, self.steps = self._resident()

    def _resident(self) -> tuple[ResidentSplit | None, int | None]:
        """(this worker's train rows read once onto its device, batches per epoch) with `train_input` device
        (or auto on a GPU, where they fit); (None, None): streamed every epoch."""
        cfg = self.cfg
        nbytes = decoded_bytes(self.ds, cfg.source, cfg.resize) // self.world
        if not keep_on_device(cfg.train_input, nbytes, self.device):
            return None, None
        split = ResidentSplit.load(
            self.shard.iter_batches(batch_size=LOAD_BATCH, batch_format="numpy"), self.device
        )
        if self.rank == 0:
            print(
                f"[{cfg.method} {cfg.source}] train split kept on {self.device}: {len(split)} images per "
                f"worker, {split.nbytes / 2**20:.0f} MiB (train_input {cfg.train_input})",
                flush=True,
            )
        return split, equal_steps(len(split), cfg.batch_size, self.world)

    def _pixelcam(self, model: WSOLModel) -> tuple[Any, dict[str, Any] | None]:
        """PixelCAM's frozen baseline (pseudo-labels) and initial weights; (None, None) for other methods."""
        cfg, payload = self.cfg, self.payload
        self.objective = None
        if not cfg.is_pixelcam:
            return None, None
        roi = set(self.ds.roi_classes(cfg.source))  # the dataset's ROI semantics decide where FG seeds may go
        no_roi = {i for i, name in enumerate(self.class_names) if name not in roi}
        labeler = build_pseudo_labeler(cfg, payload.baseline_dir, self.device, no_roi)
        self.objective = create_objective(cfg, no_roi)
        init = {"from": cfg.init_from, "checkpoint": payload.init_dir, "parts": []}
        if payload.init_dir:
            init["parts"] = init_from_baseline(model, load_checkpoint(payload.init_dir).model_state)
        return labeler, init

    def _resume(self, model: WSOLModel) -> tuple[int, dict[str, Any] | None]:
        """(first epoch to run, optimizer state): after the session's latest checkpoint, whose weights and
        bests are loaded; (0, None) for a new run."""
        with self.session.latest_checkpoint() as d:
            if d is None:
                return 0, None
            loaded = load_checkpoint(d)
            if loaded.method != self.cfg.method:
                raise ValueError(
                    f"{d}: checkpoint of method {loaded.method!r}, this run trains {self.cfg.method!r}"
                )
            model.load_state_dict(loaded.model_state)
            optim_state = load_optim_state(d)
        self.best = loaded.meta["best"]
        self.best_by = loaded.meta.get("best_by") or self.best_by
        return loaded.meta["epoch"] + 1, optim_state

    def _optimizer(self, state: dict[str, Any] | None) -> tuple[torch.optim.Optimizer, Any]:
        cfg = self.cfg
        optimizer = torch.optim.SGD(
            self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_decay)
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        return optimizer, scheduler

    def _logger(self) -> Any:
        if self.rank != 0 or not self.payload.mlflow_run_id:
            return None
        from pixelcam.tracking import RunLogger

        return RunLogger(self.payload.mlflow_run_id, self.payload.mlflow_uri)

    def run_epoch(self, epoch: int) -> None:
        """Train, validate, select, log, checkpoint and report one epoch (raises NonFiniteLossError)."""
        cfg = self.cfg
        lr = self.optimizer.param_groups[0]["lr"]
        if self.labeler is not None:
            self.labeler.reseed(derived_seed(cfg.seed, "pseudo", self.rank, epoch))
        stats = train_epoch(
            self.model,
            self._batches(epoch),
            self.optimizer,
            epoch,
            self.device,
            self.labeler,
            cfg.lam,
            on_batch=lambda b: self._first_step(b, epoch),
            precision=self.num,
            objective=self.objective,
        )
        self.scheduler.step()
        started = time.perf_counter()
        val = self._validate()
        val_s = time.perf_counter() - started
        metrics = {
            "loss": stats.loss,
            "ce": stats.ce,
            "pixel_ce": stats.pixel_ce,
            "train_cl": stats.train_accuracy.sync().compute() if stats.images or self.world > 1 else 0.0,
            **val.as_dict(),
            "lr": lr,
            "images_per_s": self._throughput(stats),
            "input_wait_s": stats.input_wait,  # rank 0's; on a GPU, the time it idled for input
            "train_s": stats.seconds,
            "val_s": val_s,
        }
        improved = self._select(metrics, epoch, val.tau)
        self._log(epoch, metrics)
        self._checkpoint_and_report(epoch, metrics, improved)
        self.history.append({"epoch": epoch, **{k: metrics[k] for k in EPOCH_METRICS}})
        if self.rank == 0:
            self._print(epoch, metrics, stats.input_wait_fraction)

    def _batches(self, epoch: int) -> Any:
        cfg, device = self.cfg, self.device
        shuffle_seed = derived_seed(cfg.seed, "shuffle", self.rank, epoch)
        if self.resident is not None:
            return self.resident.epoch(cfg.batch_size, cfg.crop, cfg.seed, epoch, shuffle_seed, self.steps)
        return self.shard.iter_torch_batches(
            batch_size=cfg.batch_size,
            # on CUDA the images travel as uint8 and are cropped, flipped and normalised on the device
            collate_fn=Augment(cfg.crop, cfg.seed, epoch, on_device=device.type == "cuda"),
            local_shuffle_buffer_size=SHUFFLE_BATCHES * cfg.batch_size,
            local_shuffle_seed=shuffle_seed,
            prefetch_batches=PREFETCH_BATCHES.get(device.type, 2),
            # the host-to-device copy happens on Ray Data's prefetch thread, from pinned memory on CUDA
            device=device,
            pin_memory=device.type == "cuda",
        )

    def _first_step(self, batch: int, epoch: int) -> None:
        if batch == 0 and epoch == self.start_epoch:
            self.startup["first_step"] = self.payload.since_start()

    def _throughput(self, stats: Any) -> float:
        """Images per second over all workers: images seen by every rank / the slowest rank's time."""
        images, seconds = torch.tensor([float(stats.images)]), torch.tensor([stats.seconds])
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(images)
            dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
        return float(images[0] / max(float(seconds[0]), 1e-9))

    def _validate(self) -> Any:
        cfg = self.cfg
        return validate(
            self.model,
            iter_split(
                self.ds, cfg.source, "valpx", cfg.eval_input_size, cfg.batch_size, self.rank, self.world
            ),
            iter_split(
                self.ds, cfg.source, "valcl", cfg.eval_input_size, cfg.batch_size, self.rank, self.world
            ),
            self.device,
            cfg.num_bins,
            cfg.threshold_criterion,
            cfg.eval_size,
            precision=self.num,
        )

    def _select(self, metrics: dict[str, float], epoch: int, tau: float) -> list[str]:
        """Update the bests (from `select_from_epoch` on; ties: `checkpoint_ties`); returns the selections
        this epoch improves. Adds what Tune and Ray compare: `selected_score` (the best so far) and
        `selection_rank` (the score, ties broken toward the latest or earliest epoch)."""
        cfg = self.cfg
        score = metrics[cfg.selection_metric]
        latest = cfg.checkpoint_ties == "latest"
        improved = []
        if epoch >= cfg.select_from_epoch:  # earlier epochs are never selected (nor checkpointed)
            self.best = keep_best(metrics, cfg.selection_metric, epoch, tau, self.best, latest)
            best_by = {
                s: keep_best(metrics, k, epoch, tau, self.best_by[s], latest)
                for s, k in SELECTION_METRICS.items()
            }
            improved = [s for s, b in best_by.items() if b is not self.best_by[s]]  # this epoch is the best
            self.best_by = best_by
        # best so far: what a tuner compares across trials (this epoch's score before the first selectable)
        metrics["selected_score"] = self.best["score"] if self.best["epoch"] >= 0 else score
        metrics["selection_rank"] = score + tie_sign(cfg.checkpoint_ties) * 1e-9 * epoch
        return improved

    def _log(self, epoch: int, metrics: dict[str, float]) -> None:
        """Rank 0: the start-up split (first epoch of this call), the epoch's metrics and overlays, once."""
        if self.rank == 0 and epoch == self.start_epoch and "first_step" in self.startup:
            s = self.startup
            # where a run's fixed start-up goes: Ray Train's workers up, the model built (and its baseline and
            # initial weights loaded), the first SGD step done (input pipeline started)
            print(
                f"[{self.cfg.method} {self.cfg.source}] start-up: workers {s['workers']:.1f} s, model "
                f"{s['model']:.1f} s, first step {s['first_step']:.1f} s after train()",
                flush=True,
            )
            if self.logger is not None:
                self.logger.metrics({f"startup_{k}_s": v for k, v in s.items()}, step=epoch)
                self.logger.tags({"train_input": "device" if self.resident is not None else "stream"})
        if self.logger is not None and epoch not in self.logger.logged_steps("valpx_pxap"):
            # Logged before the checkpoint exists, so a checkpointed epoch is always in MLflow; an epoch
            # re-run after a failure is skipped (its values are the same: the run is deterministic).
            self.logger.metrics({k: metrics[k] for k in EPOCH_METRICS}, step=epoch)
            self.logger.image(
                _overlays(self.net, self.ds, self.cfg, self.num), f"cam_overlays/epoch_{epoch:03d}.png"
            )

    def _checkpoint_and_report(self, epoch: int, metrics: dict[str, float], improved: list[str]) -> None:
        """Rank 0 writes a checkpoint when the epoch improves B-LOC or B-CL (only those are kept); every rank
        reports (a barrier under Ray Train)."""
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if self.rank == 0 and improved:
                meta = make_meta(
                    self.cfg,
                    self.class_names,
                    self.ds.hash,
                    epoch,
                    {k: metrics[k] for k in EPOCH_METRICS},
                    self.best,
                    self.best_by,
                    self.init,
                )
                save_checkpoint(tmp, self.net, meta, self.optimizer, self.scheduler)
                checkpoint = tmp
            self.session.report({**metrics, "epoch": epoch}, checkpoint, f"epoch_{epoch:03d}")

    def _print(self, epoch: int, m: dict[str, float], input_wait: float) -> None:
        cfg, world = self.cfg, self.world
        flag = " *" if self.best["epoch"] == epoch else ""
        print(
            f"[{cfg.method} {cfg.source}] epoch {epoch + 1}/{cfg.epochs}  loss {m['loss']:.4f}  "
            f"train CL {m['train_cl']:.1f}  valpx PxAP {m['valpx_pxap']:.2f} (tau {m['tau']:.3f})  "
            f"valcl CL {m['valcl_cl']:.1f}  lr {m['lr']:.2g}  {m['images_per_s']:.1f} img/s "
            f"(input wait {100 * input_wait:.0f}%, {world} worker{'s' if world > 1 else ''}){flag}",
            flush=True,
        )


def _overlays(model: WSOLModel, ds, cfg: TrainConfig, num: Precision):
    """Overlay strip of the first valpx images (input + ROI | map) for MLflow."""
    batch = next(
        iter(iter_split(ds, cfg.source, "valpx", cfg.eval_input_size, OVERLAY_IMAGES, limit=OVERLAY_IMAGES))
    )
    was_training = model.training
    model.eval()
    try:
        with num.autocast():
            maps = model.cam(num.images(batch.images), batch.labels.to(num.device)).cpu()
    finally:
        model.train(was_training)
    return overlay_grid(batch.images, batch.masks, maps)
