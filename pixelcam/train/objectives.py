"""The training objective of each pseudo-label method, as a callable a training step hands the model's output:
`objective(out, images, labels, labeler, epoch) -> (loss, parts)`.

- `pixelcam`: CE(y, g(F)) + lam * partial CE(seeds, f(F)) (the paper's eq. 3).
- `negev`: the classifier is frozen, so no CE; lam * partial CE on the dilated seeds, plus, each with its own
  weight (0: off), negative evidence on no-ROI images, the dense CRF loss over raw RGB and the
  absolute-size log-barrier at this epoch's t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from pixelcam.config import TrainConfig
from pixelcam.models.losses import partial_cross_entropy, pixelcam_loss
from pixelcam.models.negev_losses import (
    barrier_t,
    crf_loss,
    dilate_seeds,
    negative_evidence_loss,
    size_loss,
)
from pixelcam.registry import Registry
from pixelcam.runtime.pseudo_labels import PseudoLabeler, pixel_logits_on_grid
from pixelcam.runtime.transforms import unnormalize

Parts = dict[str, float]
Output = dict[str, torch.Tensor]  # the model's forward output
OBJECTIVES: Registry[Any] = Registry("training objective")


@OBJECTIVES.register("pixelcam")
@dataclass(frozen=True)
class PixelCAMObjective:
    lam: float = 1.0

    def __call__(
        self, out: Output, images: torch.Tensor, labels: torch.Tensor, labeler: PseudoLabeler, epoch: int
    ) -> tuple[torch.Tensor, Parts]:
        pixel_logits = pixel_logits_on_grid(out["pixel_logits"], labeler.seed_grid, tuple(images.shape[-2:]))
        with torch.no_grad():
            seeds = labeler(images, labels, tuple(pixel_logits.shape[-2:]))
        return pixelcam_loss(out["logits"], labels, pixel_logits, seeds, lam=self.lam)


@OBJECTIVES.register("negev")
@dataclass(frozen=True)
class NegevObjective:
    lam: float = 1.0
    seed_dilation: int = 1
    neg_evidence_weight: float = 0.0
    crf_weight: float = 0.0
    crf_scale: float = 1.0
    size_weight: float = 0.0
    no_roi_labels: frozenset[int] = frozenset()

    def __call__(
        self, out: Output, images: torch.Tensor, labels: torch.Tensor, labeler: PseudoLabeler, epoch: int
    ) -> tuple[torch.Tensor, Parts]:
        logits = out["pixel_logits"]  # (B, 2, H, W) at the image size
        with torch.no_grad():
            seeds = dilate_seeds(labeler(images, labels, tuple(logits.shape[-2:])), self.seed_dilation)
        terms = {"pixel_ce": (self.lam, partial_cross_entropy(logits, seeds))}
        probs = torch.softmax(logits.float(), dim=1) if self.crf_weight > 0 or self.size_weight > 0 else None
        if self.neg_evidence_weight > 0:
            no_roi = torch.isin(labels, torch.tensor(sorted(self.no_roi_labels), device=labels.device))
            terms["neg_evidence"] = (self.neg_evidence_weight, negative_evidence_loss(logits, no_roi))
        if self.crf_weight > 0:
            rgb = unnormalize(images.float()) * 255.0
            terms["crf"] = (self.crf_weight, crf_loss(probs, rgb, scale=self.crf_scale))
        if self.size_weight > 0:
            terms["size"] = (self.size_weight, size_loss(probs, barrier_t(epoch)))
        total = sum(w * v for w, v in terms.values())
        return total, {"ce": 0.0, **{k: float(v.detach()) for k, (_, v) in terms.items()}}


def create_objective(cfg: TrainConfig, no_roi_labels: set[int]) -> Any:
    """The objective of `cfg.method` with its settings from `cfg` (a pseudo-label method's)."""
    cls = OBJECTIVES.get(cfg.method)
    fields = set(cls.__dataclass_fields__)
    settings = {k: v for k, v in cfg.to_dict().items() if k in fields}
    if "no_roi_labels" in fields:
        settings["no_roi_labels"] = frozenset(no_roi_labels)
    return cls(**settings)
