"""Staining-robustness sweep (PixelCAM Fig. 4/5, App. H): PxAP and CL of one checkpoint on a domain's test
split with its images moved toward a reference domain's stain at levels 0 (unchanged) .. L.

The stain transform is fitted on `fit_images` train images of the reference domain; level k applies strength
k/L * max_strength, and each level's mean CIE76 colour difference to the unshifted images (delta E) is
recorded so the levels are ordered by measured distance to the original stain, not only by construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pixelcam.data.reader import PatchDataset, as_dataset
from pixelcam.data.stain import create_stain_transform, delta_e, shift_strengths
from pixelcam.evaluation.evaluate import eval_size_of
from pixelcam.metrics import Accuracy, PxAP
from pixelcam.train.checkpoint import load_checkpoint
from pixelcam.train.data import EvalBatch, check_splits, iter_split
from pixelcam.train.steps import evaluate_batches
from pixelcam.train.transforms import normalize, unnormalize


def reference_images(data: PatchDataset | str | Path, domain: str, resize: int, count: int) -> torch.Tensor:
    """Up to `count` train images of `domain` as float RGB (B, 3, resize, resize) in [0, 1]."""
    ds = as_dataset(data)
    check_splits(ds, domain, ("train",), where="stain reference")
    parts = [unnormalize(b.images) for b in iter_split(ds, domain, "train", resize, 64, limit=count)]
    return torch.cat(parts)


def stain_sweep(
    checkpoint: str | Path,
    data: PatchDataset | str | Path,
    domain: str,
    reference: str,
    method: str = "reinhard",
    levels: int = 10,
    max_strength: float = 1.0,
    fit_images: int = 64,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Report dict: checkpoint, method (model), source, domain, reference, stain, rows [{level, strength,
    delta_e, pxap, cl}] for levels 0..L."""
    if reference == domain:
        raise ValueError(f"stain reference {reference!r} is the evaluated domain itself: nothing would shift")
    ck = load_checkpoint(checkpoint)
    model = ck.build_model().to(device)
    ds = as_dataset(data)
    check_splits(ds, domain, ("test",), where="stain-sweep domain")
    resize = int(ck.meta["resize"])
    eval_size = eval_size_of(ck.meta)
    transform = create_stain_transform(method).fit(reference_images(ds, reference, resize, fit_images))
    strengths = [0.0, *shift_strengths(levels, max_strength)]
    pxs = [PxAP() for _ in strengths]
    accs = [Accuracy() for _ in strengths]
    de = torch.zeros(len(strengths), dtype=torch.float64)
    for batch in iter_split(ds, domain, "test", resize, batch_size):
        x01 = unnormalize(batch.images)
        for k, s in enumerate(strengths):
            if s == 0:  # level 0 is the plain evaluation, bit for bit
                moved = batch
            else:
                shifted = transform(x01, s)
                de[k] += delta_e(x01, shifted).double().sum()
                moved = EvalBatch(normalize(shifted).float(), batch.labels, batch.masks, batch.image_ids)
            px, acc = evaluate_batches(model, [moved], device, eval_size=eval_size)
            pxs[k].merge(px)
            accs[k].merge(acc)
    n = max(accs[0].total, 1)
    rows = [
        {
            "level": k,
            "strength": round(s, 6),
            "delta_e": float(de[k] / n),
            "pxap": pxs[k].compute(),
            "cl": accs[k].compute(),
        }
        for k, s in enumerate(strengths)
    ]
    return {
        "checkpoint": str(ck.path),
        "method": ck.method,
        "source": ck.meta["source"],
        "domain": domain,
        "reference": reference,
        "stain": method,
        "images": int(accs[0].total),
        "rows": rows,
    }


def format_sweep(report: dict[str, Any], label: str | None = None) -> str:
    """Plain-text table: one line per level."""
    head = (
        f"{label or report['method']} <- {report['source']}: {report['domain']} test split shifted toward "
        f"{report['reference']} ({report['stain']}, {report['images']} images)"
    )
    lines = [head, f"{'level':>6}{'strength':>10}{'dE':>8}{'PxAP':>8}{'CL':>8}"]
    for r in report["rows"]:
        lines.append(
            f"{r['level']:>6}{r['strength']:>10.2f}{r['delta_e']:>8.2f}{r['pxap']:>8.2f}{r['cl']:>8.2f}"
        )
    return "\n".join(lines)
