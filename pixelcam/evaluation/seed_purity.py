"""How often PixelCAM's seeds agree with the ROI masks: FG seeds inside the ROI, BG seeds outside it.

Measured on a split whose images have masks (the train split of the synthetic domains), with a trained
baseline's CAMs, for every (seed_grid, bg_sampling) variant, over several draws; images of a class without
ROI follow the run's `no_roi_seeds` policy, as in training. What the fidelity issue asks to report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pixelcam.data.reader import PatchDataset, as_dataset
from pixelcam.runtime.checkpoint import input_size_of, load_checkpoint
from pixelcam.runtime.data import check_splits, iter_split
from pixelcam.runtime.pseudo_labels import PseudoLabeler, SeedPurity, seed_purity

VARIANTS: tuple[tuple[str, str], ...] = (
    ("image", "inverse"),
    ("image", "area"),
    ("feature", "inverse"),
    ("feature", "area"),
)


@torch.no_grad()
def measure_seed_purity(
    checkpoint: str | Path,
    data: PatchDataset | str | Path,
    domain: str,
    split: str = "train",
    n: int = 5,
    draws: int = 10,
    variants: Sequence[tuple[str, str]] = VARIANTS,
    no_roi_seeds: str = "none",
    limit: int | None = None,
    batch_size: int = 32,
) -> list[dict[str, Any]]:
    """One row per variant: seed_grid, bg_sampling, fg_purity, bg_purity (%), seeds counted."""
    ck = load_checkpoint(checkpoint)
    model = ck.build_model().eval()
    ds = as_dataset(data)
    check_splits(ds, domain, (split,), where="seed-purity domain")
    names = ds.class_names(domain)
    roi = set(ds.roi_classes(domain))
    no_roi = {i for i, name in enumerate(names) if name not in roi}
    batches = [b for b in iter_split(ds, domain, split, input_size_of(ck.meta), batch_size, limit=limit)]
    feature_grid = tuple(model.backbone(batches[0].images[:1]).shape[-2:])
    rows = []
    for seed_grid, bg_sampling in variants:
        labeler = PseudoLabeler(
            model, "pb", n, 0, None, no_roi, no_roi_seeds, seed_grid=seed_grid, bg_sampling=bg_sampling
        )
        total = SeedPurity()
        for d in range(draws):
            labeler.reseed(d)
            for b in batches:
                keep = [i for i, m in enumerate(b.masks) if m is not None]
                seeds = labeler(b.images[keep], b.labels[keep], labeler.grid(b.images, feature_grid))
                total = total.add(seed_purity(seeds, [b.masks[i] for i in keep]))
        rows.append(
            {
                "seed_grid": seed_grid,
                "bg_sampling": bg_sampling,
                "fg_purity": total.fg_purity,
                "bg_purity": total.bg_purity,
                "fg_seeds": total.fg,
                "bg_seeds": total.bg,
            }
        )
    return rows


def format_purity(rows: list[dict[str, Any]], title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'seed_grid':>10} {'bg_sampling':>12} {'FG purity':>10} {'BG purity':>10} {'seeds':>8}")
    for r in rows:
        lines.append(
            f"{r['seed_grid']:>10} {r['bg_sampling']:>12} {r['fg_purity']:>9.1f}% {r['bg_purity']:>9.1f}% "
            f"{r['fg_seeds'] + r['bg_seeds']:>8}"
        )
    return "\n".join(lines)
