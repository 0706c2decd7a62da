"""The evaluation pass shared by training (validation inside the workers) and evaluation (test splits,
stain sweeps): one backbone pass per batch gives the logits and the maps, and the metric states (PxAP
histograms, accuracy counts) are accumulated on the CPU. It knows nothing about Ray."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from pixelcam.metrics import Accuracy, PxAP
from pixelcam.metrics.pxap import at_eval_size
from pixelcam.models.base import WSOLModel
from pixelcam.models.precision import Precision
from pixelcam.runtime.data import EvalBatch


def unwrap(model: torch.nn.Module) -> WSOLModel:
    return model.module if hasattr(model, "module") else model


@torch.no_grad()
def _logits(model: WSOLModel, images: torch.Tensor) -> torch.Tensor:
    return model(images)["logits"]


BatchObserver = Callable[[EvalBatch, torch.Tensor, torch.Tensor], None]


def evaluate_batches(
    model: torch.nn.Module,
    batches: Iterable[EvalBatch],
    device: torch.device | str = "cpu",
    num_bins: int = 1000,
    localization: bool = True,
    eval_size: int | str = "native",
    precision: Precision | None = None,
    observe: BatchObserver | None = None,
) -> tuple[PxAP, Accuracy]:
    """PxAP state (maps of the true class vs masks at `eval_size`; rows without a mask are skipped) and CL
    state. `precision`: as in training (default fp32 on `device`); maps are float32 whatever it is.

    One backbone pass per batch gives both the logits and the maps (`WSOLModel.predict`). `observe(batch,
    logits, maps)` (maps of every row's true class, on the CPU) sees each batch, so reports that need
    per-image values (`evaluation.details`) ride on the same pass. Not synced: call `.sync()` on both under
    DDP. Train/eval mode is set to eval for the pass and restored.
    """
    num = precision or Precision("fp32", device)
    net = unwrap(model)
    was_training = net.training
    net.eval()
    px, acc = PxAP(num_bins=num_bins), Accuracy()
    try:
        for batch in batches:
            images = num.images(batch.images)
            keep = [i for i, m in enumerate(batch.masks) if m is not None]
            if not (localization and keep) and observe is None:
                with num.autocast():
                    acc.update(_logits(net, images).float().cpu(), batch.labels)
                continue
            with num.autocast():
                logits, maps = net.predict(images, batch.labels.to(num.device))
            logits, maps = logits.float().cpu(), maps.float().cpu()
            acc.update(logits, batch.labels)
            if observe is not None:
                observe(batch, logits, maps)
            if localization and keep:
                pairs = [at_eval_size(maps[i], torch.from_numpy(batch.masks[i]), eval_size) for i in keep]
                px.update([m for m, _ in pairs], [g for _, g in pairs])
    finally:
        net.train(was_training)
    return px, acc
