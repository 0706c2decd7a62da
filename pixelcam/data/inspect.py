"""Summaries of a dataset directory: counts per domain/split/class, mask coverage, image sizes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pixelcam.data.errors import DatasetError
from pixelcam.data.png import decode_image, decode_mask
from pixelcam.data.reader import PatchDataset
from pixelcam.data.schema import SPLITS


@dataclass
class SplitSummary:
    """Counts and mask statistics of one (domain, split)."""

    counts: dict[str, int]
    masked: int = 0
    coverage: list[float] = field(default_factory=list)  # ROI fraction of each masked image of an ROI class
    sizes: Counter = field(default_factory=Counter)


def summarize(ds: PatchDataset, decode_images: bool = False) -> dict[str, dict[str, SplitSummary]]:
    """{domain: {split: SplitSummary}}; decodes every mask (and every image when `decode_images`)."""
    out: dict[str, dict[str, SplitSummary]] = {}
    for domain in ds.domains:
        names = ds.class_names(domain)
        roi = {names.index(n) for n in ds.roi_classes(domain)}  # GlaS: both classes; CAMELYON16: tumour
        out[domain] = {}
        for split in SPLITS:
            s = SplitSummary(counts={n: 0 for n in names})
            cols = ["image_id", "label", "mask", "height", "width"] + (["image"] if decode_images else [])
            for batch in ds.iter_batches([domain], [split], columns=cols):
                rows = batch.to_pylist()
                for r in rows:
                    s.counts[names[r["label"]]] += 1
                    s.sizes[(r["width"], r["height"])] += 1
                    where = f"{ds.root}/{split}/{domain}.parquet: image_id {r['image_id']}"
                    if decode_images:
                        img = decode_image(r["image"], where)
                        if img.shape[:2] != (r["height"], r["width"]):
                            raise DatasetError(
                                f"{where}: image is {img.shape[1]}x{img.shape[0]}, row says "
                                f"{r['width']}x{r['height']}"
                            )
                    if r["mask"] is not None:
                        s.masked += 1
                        if r["label"] in roi:
                            s.coverage.append(float(decode_mask(r["mask"], where).mean()))
            out[domain][split] = s
    return out


def format_summary(ds: PatchDataset, summary: dict[str, dict[str, SplitSummary]]) -> str:
    """A plain-text table of `summarize`'s result."""
    lines = [f"dataset {ds.root}  (hash {ds.hash[:12]})"]
    for domain, splits in summary.items():
        names = ds.class_names(domain)
        lines.append(f"\ndomain {domain}  classes {names}")
        lines.append(
            f"  {'split':<6} "
            + " ".join(f"{n:>10}" for n in names)
            + f" {'total':>7} {'masks':>6} {'ROI cover (mean/min/max)':>26} {'sizes (WxH)':>14}"
        )
        for split, s in splits.items():
            cov = np.asarray(s.coverage)
            cover = f"{cov.mean():.1%} / {cov.min():.1%} / {cov.max():.1%}" if cov.size else "-"
            sizes = ", ".join(f"{w}x{h}" for (w, h), _ in s.sizes.most_common(2)) + (
                " ..." if len(s.sizes) > 2 else ""
            )
            lines.append(
                f"  {split:<6} "
                + " ".join(f"{s.counts[n]:>10}" for n in names)
                + f" {sum(s.counts.values()):>7} {s.masked:>6} {cover:>26} {sizes:>14}"
            )
    return "\n".join(lines)
