"""Staining-robustness sweep (PixelCAM Fig. 4/5, App. H): PxAP and CL of one checkpoint on a domain's test
split with its images moved toward a reference domain's stain at levels 0 (unchanged) .. L.

Two protocols (`mode`), both recording each level's mean CIE76 colour difference to the unshifted images
(delta E):
- `styles` (default, the paper's §3.3, Fig. 4/5): L *distinct* stain styles, each fitted on one train image of
  the reference domain (the first L), applied in full and ordered by their distance to the original stain
  (delta E on the first test batch): level 1 the closest style, level L the farthest.
- `interpolate` (ours): one transform fitted on `fit_images` reference train images; level k applies strength
  k/L * max_strength toward it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pixelcam.data.reader import PatchDataset, as_dataset
from pixelcam.data.stain import create_stain_transform, delta_e, shift_strengths
from pixelcam.data.stain.transforms import StainTransform
from pixelcam.evaluation.evaluate import eval_size_of
from pixelcam.metrics import Accuracy, PxAP
from pixelcam.models.precision import precision_of
from pixelcam.runtime.checkpoint import input_size_of, load_checkpoint
from pixelcam.runtime.data import EvalBatch, check_splits, iter_split
from pixelcam.runtime.eval_loop import evaluate_batches
from pixelcam.runtime.transforms import normalize, unnormalize

MODES = ("styles", "interpolate")


def reference_images(
    data: PatchDataset | str | Path, domain: str, resize: int, count: int, with_ids: bool = False
) -> torch.Tensor | tuple[torch.Tensor, list[str]]:
    """Up to `count` train images of `domain`, float RGB (B, 3, resize, resize) in [0, 1] (and their ids)."""
    ds = as_dataset(data)
    check_splits(ds, domain, ("train",), where="stain reference")
    batches = list(iter_split(ds, domain, "train", resize, 64, limit=count))
    images = torch.cat([unnormalize(b.images) for b in batches])
    return (images, [i for b in batches for i in b.image_ids]) if with_ids else images


def stain_plan(
    ds: PatchDataset,
    domain: str,
    reference: str,
    method: str,
    mode: str,
    levels: int,
    max_strength: float,
    fit_images: int,
    resize: int,
) -> list[tuple[StainTransform | None, float, str]]:
    """(transform, strength, what) of levels 0..L; level 0 is (None, 0, "original")."""
    if mode not in MODES:
        raise ValueError(f"stain mode must be one of {MODES}, got {mode!r}")
    plan: list[tuple[StainTransform | None, float, str]] = [(None, 0.0, "original")]
    if mode == "interpolate":
        t = create_stain_transform(method).fit(reference_images(ds, reference, resize, fit_images))
        return plan + [(t, s, f"strength {s:g}") for s in shift_strengths(levels, max_strength)]
    images, ids = reference_images(ds, reference, resize, levels, with_ids=True)
    if len(ids) < levels:
        raise ValueError(
            f"stain styles: {levels} levels need {levels} train images of {reference!r}, it has {len(ids)}"
        )
    probe = unnormalize(next(iter(iter_split(ds, domain, "test", resize, 32))).images)
    styles = []
    for img, image_id in zip(images, ids, strict=True):
        t = create_stain_transform(method).fit(img[None])
        styles.append((float(delta_e(probe, t(probe, 1.0)).mean()), t, image_id))
    styles.sort(key=lambda x: x[0])  # level 1: the style closest to the original stain
    return plan + [(t, 1.0, f"style of {image_id}") for _, t, image_id in styles]


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
    mode: str = "styles",
) -> dict[str, Any]:
    """Report dict: checkpoint, method (model), source, domain, reference, stain, mode, rows [{level,
    strength, style, delta_e, pxap, cl}] for levels 0..L."""
    if reference == domain:
        raise ValueError(f"stain reference {reference!r} is the evaluated domain itself: nothing would shift")
    ck = load_checkpoint(checkpoint)
    model = ck.build_model().to(device)
    ds = as_dataset(data)
    check_splits(ds, domain, ("test",), where="stain-sweep domain")
    resize = input_size_of(ck.meta)
    eval_size = eval_size_of(ck.meta)
    num = precision_of(ck.meta.get("config", {}), device)  # the run's own numerics
    model = num.model(model)
    plan = stain_plan(ds, domain, reference, method, mode, levels, max_strength, fit_images, resize)
    strengths = [s for _, s, _ in plan]
    pxs = [PxAP() for _ in strengths]
    accs = [Accuracy() for _ in strengths]
    de = torch.zeros(len(strengths), dtype=torch.float64)
    for batch in iter_split(ds, domain, "test", resize, batch_size):
        x01 = unnormalize(batch.images)
        for k, (transform, s, _) in enumerate(plan):
            if transform is None:  # level 0 is the plain evaluation, bit for bit
                moved = batch
            else:
                shifted = transform(x01, s)
                de[k] += delta_e(x01, shifted).double().sum()
                # the input pipeline's layout (channels-last strides): CPU convolutions run it ~1.6x faster
                images = normalize(shifted).float().contiguous(memory_format=torch.channels_last)
                moved = EvalBatch(images, batch.labels, batch.masks, batch.image_ids)
            px, acc = evaluate_batches(model, [moved], device, eval_size=eval_size, precision=num)
            pxs[k].merge(px)
            accs[k].merge(acc)
    n = max(accs[0].total, 1)
    rows = [
        {
            "level": k,
            "strength": round(s, 6),
            "style": plan[k][2],
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
        "mode": mode,
        "images": int(accs[0].total),
        "rows": rows,
    }


def format_sweep(report: dict[str, Any], label: str | None = None) -> str:
    """Plain-text table: one line per level."""
    head = (
        f"{label or report['method']} <- {report['source']}: {report['domain']} test split shifted toward "
        f"{report['reference']} ({report['stain']} {report.get('mode', 'interpolate')}, "
        f"{report['images']} images)"
    )
    lines = [head, f"{'level':>6}{'strength':>10}{'dE':>8}{'PxAP':>8}{'CL':>8}"]
    for r in report["rows"]:
        lines.append(
            f"{r['level']:>6}{r['strength']:>10.2f}{r['delta_e']:>8.2f}{r['pxap']:>8.2f}{r['cl']:>8.2f}"
        )
    return "\n".join(lines)
