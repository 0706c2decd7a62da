"""A PNG grid of example patches per domain and class, with the ROI outlined (to eyeball a dataset)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from pixelcam.data.png import decode_image, decode_mask
from pixelcam.data.reader import PatchDataset
from pixelcam.storage.atomic import atomic_file


def outline(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (0, 230, 0)) -> np.ndarray:
    """Copy of an RGB image with the boundary of a binary mask drawn in `color` (2 px)."""
    m = mask.astype(bool)
    edge = m & ~ndimage.binary_erosion(m, iterations=2)
    out = image.copy()
    out[edge] = color
    return out


def preview_grid(
    ds: PatchDataset, out: str | os.PathLike, per_class: int = 4, split: str = "valpx", tile: int = 160
) -> None:
    """Save a grid: one row per (domain, class), `per_class` tiles each, ROI outlined in green."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for domain in ds.domains:
        names = ds.class_names(domain)
        table = ds.read_table(
            [domain], [split, "test"], columns=["image_id", "label", "image", "mask"]
        ).to_pylist()
        for label, name in enumerate(names):
            picks = [r for r in table if r["label"] == label][:per_class]
            rows.append((f"{domain}\n{name}", picks))
    ncols = max(per_class, 1)
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(ncols * tile / 80, len(rows) * tile / 80), squeeze=False
    )
    for r, (title, picks) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(picks):
                p = picks[c]
                img = decode_image(p["image"], p["image_id"])
                if p["mask"] is not None:
                    img = outline(img, decode_mask(p["mask"], p["image_id"]))
                ax.imshow(img)
            if c == 0:
                ax.set_ylabel(title, fontsize=8)
    fig.suptitle(f"{ds.root.name}: ROI outlined in green", fontsize=9)
    fig.tight_layout()
    with atomic_file(Path(out)) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
