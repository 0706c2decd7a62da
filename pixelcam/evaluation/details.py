"""Per-image evaluation details for reports: per-image PxAP (for the paired t-test of a baseline vs its
PixelCAM variant), the FG/BG feature separability J (PixelCAM App. D / Fig. 3), and a small gallery of maps.

The gallery is the first `per_class` images of each class in the split's stored order, so every model of a
study shows the same images. `evaluation.evaluate.evaluate_with_details` collects them (`DetailsCollector`)
on the evaluation's own model pass; `image_details` there gives one domain's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pixelcam.metrics import pxap, separability_index
from pixelcam.metrics.pxap import at_eval_size
from pixelcam.results import Gallery, ImageDetails
from pixelcam.runtime.data import EvalBatch
from pixelcam.runtime.transforms import unnormalize


class DetailsCollector:
    """Per-image details and the gallery of one domain, fed batch by batch by `evaluate_batches(observe=)`
    with the maps it computed anyway (no second model pass). J needs the backbone's features F: they are
    caught by a forward hook on `model.backbone` during that pass, or computed again when the model's
    backbone is a view that the pass does not call (the U-Net)."""

    def __init__(
        self,
        model: torch.nn.Module,
        domain: str,
        split: str,
        eval_size: int | str,
        per_class: int = 2,
        num_bins: int = 1000,
    ) -> None:
        self.model, self.domain, self.split = model, domain, split
        self.eval_size, self.per_class, self.num_bins = eval_size, per_class, num_bins
        self.ids: list[str] = []
        self.labels: list[int] = []
        self.scores: list[float] = []
        self.js: list[float] = []
        self.picked: dict[int, int] = {}
        self.gal: dict[str, list] = {"image": [], "mask": [], "map": [], "label": [], "image_id": []}
        self._features: torch.Tensor | None = None
        backbone = model.backbone
        self._hook = (
            backbone.register_forward_hook(self._catch) if isinstance(backbone, torch.nn.Module) else None
        )

    def _catch(self, _module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        self._features = output.detach()

    @torch.no_grad()
    def __call__(self, batch: EvalBatch, logits: torch.Tensor, maps: torch.Tensor) -> None:
        features, self._features = self._features, None
        if features is None or features.shape[0] != len(batch.labels):
            features = self.model.backbone(batch.images.to(next(self.model.parameters()).device))
        features = features.float().cpu()
        for i, mask in enumerate(batch.masks):
            label = int(batch.labels[i])
            self.ids.append(batch.image_ids[i])
            self.labels.append(label)
            has_both = mask is not None and 0 < int(mask.sum()) < mask.size
            if has_both:
                m, g = at_eval_size(maps[i], torch.from_numpy(mask), self.eval_size)
                self.scores.append(pxap([m], [g], self.num_bins))
            else:
                self.scores.append(float("nan"))
            self.js.append(separability_index(features[i], mask) if has_both else float("nan"))
            if self.picked.get(label, 0) < self.per_class:
                self.picked[label] = self.picked.get(label, 0) + 1
                size = maps.shape[-2:]
                m = mask if mask is not None else np.zeros(size, np.uint8)
                m = torch.nn.functional.interpolate(torch.from_numpy(m)[None, None].float(), size=size)[0, 0]
                rgb = unnormalize(batch.images[i : i + 1].cpu())[0].permute(1, 2, 0).numpy()
                self.gal["image"].append((rgb * 255).round().astype(np.uint8))
                self.gal["mask"].append(m.numpy().astype(np.uint8))
                self.gal["map"].append(maps[i].numpy().astype(np.float16))
                self.gal["label"].append(label)
                self.gal["image_id"].append(batch.image_ids[i])

    def result(self) -> tuple[ImageDetails, Gallery]:
        """(details, gallery); removes the hook."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        details = ImageDetails(
            domain=self.domain,
            split=self.split,
            image_ids=self.ids,
            labels=self.labels,
            pxap=self.scores,
            j=self.js,
        )
        gallery = Gallery(**{k: np.stack(v) if v else np.zeros((0,)) for k, v in self.gal.items()})
        return details, gallery
