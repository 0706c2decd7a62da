"""One training epoch and one validation pass, as functions of a model and an iterable of batches.

They know nothing about Ray: the worker loop feeds them Ray Data batches, tests feed them lists. Metric
states (PxAP histograms, accuracy counts) are summed across DDP ranks with `sync()` before `compute()`, so a
split sharded over workers gives exactly the single-process value.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from pixelcam.metrics import Accuracy, best_threshold
from pixelcam.models.losses import classification_loss, segmentation_loss
from pixelcam.models.precision import Precision
from pixelcam.runtime.data import EvalBatch
from pixelcam.runtime.eval_loop import evaluate_batches
from pixelcam.runtime.pseudo_labels import PseudoLabeler
from pixelcam.runtime.transforms import device_batch
from pixelcam.train.objectives import PixelCAMObjective


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/inf; the message names the epoch and batch."""


@dataclass
class EpochStats:
    loss: float = 0.0
    ce: float = 0.0
    pixel_ce: float = 0.0
    images: int = 0
    batches: int = 0
    seconds: float = 0.0
    # time blocked on the input iterator: the accelerator idles then (each step's loss read synchronises)
    input_wait: float = 0.0
    train_accuracy: Accuracy = field(default_factory=Accuracy)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    @property
    def input_wait_fraction(self) -> float:
        return self.input_wait / self.seconds if self.seconds > 0 else 0.0


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _all_finite(loss: torch.Tensor) -> bool:
    """True when the loss is finite on every rank (one scalar all-reduce under DDP)."""
    ok = torch.tensor([1.0 if bool(torch.isfinite(loss.detach())) else 0.0], device=loss.device)
    if _distributed():
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item() > 0)


def train_epoch(
    model: torch.nn.Module,
    batches: Iterable[dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    epoch: int,
    device: torch.device | str = "cpu",
    pseudo_labeler: PseudoLabeler | None = None,
    lam: float = 1.0,
    on_batch: Callable[[int], None] | None = None,
    precision: Precision | None = None,
    objective: Callable[..., tuple[torch.Tensor, dict[str, float]]] | None = None,
) -> EpochStats:
    """One pass of SGD. Baselines: CE(y, g(F)); a pseudo-label method (`pseudo_labeler` set): its
    `objective` (`train/objectives.py`; default PixelCAM's, CE + lam * partial CE); supervised methods
    (batches with a `mask`): + pixel CE on the masks.

    `precision` (default fp32, NCHW on `device`): autocast dtype, memory format, fp16 loss scaling.
    Raises NonFiniteLossError (on every rank) naming the epoch and batch when the loss is not finite.
    """
    num = precision or Precision("fp32", device)
    model.train()
    stats = EpochStats()
    start = time.perf_counter()
    it = iter(batches)
    b = 0
    while True:
        waited = time.perf_counter()
        batch = next(it, None)
        stats.input_wait += time.perf_counter() - waited
        if batch is None:
            break
        images, masks = device_batch(batch, num.device)  # GPU runs crop/flip/normalise on the device
        images = num.images(images)
        labels = batch["label"].to(num.device, non_blocking=True)
        with num.autocast():
            out = model(images)
            if masks is not None:  # a supervised method (U-Net): the train split's own masks
                loss, parts = segmentation_loss(out["logits"], labels, out["pixel_logits"], masks)
            elif pseudo_labeler is not None:  # PixelCAM's objective unless the run gives its method's
                goal = objective or PixelCAMObjective(lam)
                loss, parts = goal(out, images, labels, pseudo_labeler, epoch)
            else:
                loss = classification_loss(out["logits"], labels)
                parts = {"ce": float(loss.detach()), "pixel_ce": 0.0}
            if "aux_loss" in out:  # a method's own training terms (SAT's area and normalisation losses)
                loss = loss + out["aux_loss"]
        if not _all_finite(loss):
            raise NonFiniteLossError(
                f"non-finite loss ({float(loss.detach())}) at epoch {epoch}, batch {b}: lower lr "
                f"(or lam), or check the inputs"
            )
        num.step(loss, optimizer)
        n = labels.numel()
        stats.loss += float(loss.detach()) * n
        stats.ce += parts["ce"] * n
        stats.pixel_ce += parts["pixel_ce"] * n
        stats.images += n
        stats.batches += 1
        stats.train_accuracy.update(out["logits"].detach().float(), labels)
        if on_batch is not None:
            on_batch(b)
        b += 1
    stats.seconds = time.perf_counter() - start
    if stats.images:
        stats.loss /= stats.images
        stats.ce /= stats.images
        stats.pixel_ce /= stats.images
    return stats


@dataclass
class Validation:
    valpx_pxap: float
    tau: float
    valcl_cl: float

    def as_dict(self) -> dict[str, float]:
        return {"valpx_pxap": self.valpx_pxap, "tau": self.tau, "valcl_cl": self.valcl_cl}


def validate(
    model: torch.nn.Module,
    valpx: Iterable[EvalBatch],
    valcl: Iterable[EvalBatch],
    device: torch.device | str = "cpu",
    num_bins: int = 1000,
    criterion: str = "f1",
    eval_size: int | str = "native",
    precision: Precision | None = None,
) -> Validation:
    """B-LOC PxAP and tau on valpx, B-CL accuracy on valcl; states summed over ranks before computing."""
    px, _ = evaluate_batches(model, valpx, device, num_bins, eval_size=eval_size, precision=precision)
    _, acc = evaluate_batches(model, valcl, device, num_bins, localization=False, precision=precision)
    px.sync()
    acc.sync()
    pxap = px.compute()
    tau = best_threshold(px, criterion)
    if not math.isfinite(pxap):
        raise ValueError("valpx PxAP is not finite")
    return Validation(valpx_pxap=pxap, tau=tau, valcl_cl=acc.compute())
