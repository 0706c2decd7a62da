"""Per-image evaluation details for reports: per-image PxAP (for the paired t-test of a baseline vs its
PixelCAM variant), the FG/BG feature separability J (PixelCAM App. D / Fig. 3), and a small gallery of maps.

The gallery is the first `per_class` images of each class in the split's stored order, so every model of a
study shows the same images.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelcam.data.reader import PatchDataset, as_dataset
from pixelcam.evaluation.evaluate import eval_size_of
from pixelcam.metrics import pxap, separability_index
from pixelcam.metrics.pxap import at_eval_size
from pixelcam.train.checkpoint import load_checkpoint
from pixelcam.train.data import check_splits, iter_split
from pixelcam.train.transforms import unnormalize


@torch.no_grad()
def image_details(
    checkpoint: str | Path,
    data: PatchDataset | str | Path,
    domain: str,
    split: str = "test",
    per_class: int = 2,
    batch_size: int = 32,
    num_bins: int = 1000,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(details, gallery) of one checkpoint on one domain's split.

    details: image_ids, labels, pxap (NaN where the mask is all FG or all BG: AP is undefined), j (NaN
    likewise).
    gallery: image (k, S, S, 3) uint8, mask (k, S, S) uint8 (resized to S, nearest), map (k, S, S) float16,
    label (k,), image_id (k,).
    """
    ck = load_checkpoint(checkpoint)
    model = ck.build_model().eval()
    ds = as_dataset(data)
    check_splits(ds, domain, (split,), where="target")
    eval_size = eval_size_of(ck.meta)
    ids, labels, scores, js = [], [], [], []
    picked: dict[int, int] = {}
    gal: dict[str, list] = {"image": [], "mask": [], "map": [], "label": [], "image_id": []}
    for batch in iter_split(ds, domain, split, int(ck.meta["resize"]), batch_size):
        features = model.backbone(batch.images)
        maps = model.cam(batch.images, batch.labels)
        rgb = (unnormalize(batch.images).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for i, mask in enumerate(batch.masks):
            label = int(batch.labels[i])
            ids.append(batch.image_ids[i])
            labels.append(label)
            has_both = mask is not None and 0 < int(mask.sum()) < mask.size
            if has_both:
                m, g = at_eval_size(maps[i], torch.from_numpy(mask), eval_size)
                scores.append(pxap([m], [g], num_bins))
            else:
                scores.append(float("nan"))
            js.append(separability_index(features[i], mask) if has_both else float("nan"))
            if picked.get(label, 0) < per_class:
                picked[label] = picked.get(label, 0) + 1
                size = maps.shape[-2:]
                m = mask if mask is not None else np.zeros(size, np.uint8)
                m = torch.nn.functional.interpolate(torch.from_numpy(m)[None, None].float(), size=size)[0, 0]
                gal["image"].append(rgb[i])
                gal["mask"].append(m.numpy().astype(np.uint8))
                gal["map"].append(maps[i].numpy().astype(np.float16))
                gal["label"].append(label)
                gal["image_id"].append(batch.image_ids[i])
    details = {"domain": domain, "split": split, "image_ids": ids, "labels": labels, "pxap": scores, "j": js}
    gallery = {k: np.stack(v) if v else np.zeros((0,)) for k, v in gal.items()}
    return details, gallery


def gallery_bytes(gallery: dict[str, np.ndarray]) -> bytes:
    """The gallery as .npz bytes (what the evaluation run stores in MLflow)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **gallery)
    return buf.getvalue()


def read_gallery(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
