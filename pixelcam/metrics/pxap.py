"""PxAP (Choe et al. 2020): pixel average precision over a whole split, from two histograms.

Thresholds are t_k = k / B for k = 0..B. A map value s < 1 falls in bin floor(s * B); a value >= 1 has a bin
of its own (B), as in wsolevaluation (whose last bins are [1, 2) and [2, 3]): a saturated map (PixelCAM's
float32 softmax is exactly 1.0 once the logit gap is >= 17; every min-max map has its maximum at 1.0) is not
tied with values in [1 - 1/B, 1). A pixel is predicted foreground at threshold t_k when its bin is >= k.
Summing the foreground and background histograms over all images (and DDP ranks) gives TP_k and FP_k by
reverse cumulative sums, and AP = sum_k precision_k * (recall_k - recall_{k+1}) in percent -- sklearn's
step-wise AP on the quantised maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pixelcam.metrics.distributed import all_reduce_sum

ArrayLike = torch.Tensor | np.ndarray
MapBatch = ArrayLike | Sequence[ArrayLike]


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def _pairs(scoremaps: MapBatch, masks: MapBatch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Split batches (B, H, W) or lists of (H, W) into per-image (map, mask) pairs with validated shapes."""

    def items(x: MapBatch, what: str) -> list[torch.Tensor]:
        if isinstance(x, (torch.Tensor, np.ndarray)):
            t = _as_tensor(x)
            if t.dim() == 2:
                return [t]
            if t.dim() == 3:
                return list(t.unbind(0))
            raise ValueError(f"{what}: expected (B, H, W) or (H, W), got shape {tuple(t.shape)}")
        return [_as_tensor(v) for v in x]

    maps, gts = items(scoremaps, "scoremaps"), items(masks, "masks")
    if len(maps) != len(gts):
        raise ValueError(f"{len(maps)} scoremaps but {len(gts)} masks")
    for i, (m, g) in enumerate(zip(maps, gts)):
        if m.dim() != 2 or g.dim() != 2:
            raise ValueError(
                f"image {i}: scoremap {tuple(m.shape)} and mask {tuple(g.shape)} must both be (H, W)"
            )
    return list(zip(maps, gts))


def _validate_map(m: torch.Tensor, i: int) -> torch.Tensor:
    m = m if m.is_floating_point() else m.float()
    if torch.isnan(m).any():
        raise ValueError(f"scoremap {i} contains NaN")
    lo, hi = float(m.min()), float(m.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"scoremap {i} has values in [{lo:.4g}, {hi:.4g}]; expected [0, 1] (normalise CAMs first)"
        )
    return m


def _resize(m: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if m.shape == shape:
        return m
    out = F.interpolate(m[None, None].float(), size=tuple(shape), mode="bilinear", align_corners=False)[0, 0]
    return out.clamp_(0.0, 1.0)


def at_eval_size(
    scoremap: torch.Tensor, mask: torch.Tensor, size: int | str = "native"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(map, mask) as PxAP scores them: both at size x size (map bilinear, mask nearest, as wsolevaluation
    at 224), or for "native" unchanged (`update` then resizes the map to the mask)."""
    if size == "native":
        return scoremap, mask
    s = (int(size), int(size))
    m = _resize(scoremap, torch.Size(s))
    g = (
        mask
        if tuple(mask.shape) == s
        else F.interpolate(mask[None, None].float(), size=s, mode="nearest")[0, 0]
    )
    return m, g


_EDGE_TOLERANCE = 1e-4  # in bin widths: a value k/B stored as float32 (e.g. 0.2999999) still lands in bin k


def binned(scoremap: torch.Tensor, num_bins: int) -> torch.Tensor:
    """Bin index in [0, num_bins] of every value of a [0, 1] map (int64, same shape); 1.0 is bin num_bins."""
    return (scoremap.double() * num_bins + _EDGE_TOLERANCE).long().clamp_(0, num_bins)


class PxAP:
    """Streaming PxAP: `update(maps, masks)` per batch, `compute()` at the end.

    State: `fg` and `bg`, int64 histograms of length `num_bins + 1` (the last: values >= 1); states add
    (`merge`, `+`), which is all DDP needs (`sync()` all-reduces them when torch.distributed is initialised).
    """

    def __init__(self, num_bins: int = 1000, device: torch.device | str | None = None) -> None:
        if num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        self.num_bins = num_bins
        self.fg = torch.zeros(num_bins + 1, dtype=torch.int64, device=device)
        self.bg = torch.zeros(num_bins + 1, dtype=torch.int64, device=device)

    def update(self, scoremaps: MapBatch, masks: MapBatch) -> PxAP:
        """Add a batch: maps in [0, 1] (B, H, W) or a list of (H, W); masks of the same count, > 0.5 = ROI.

        Maps whose size differs from their mask are resized bilinearly to the mask size.
        """
        for i, (m, g) in enumerate(_pairs(scoremaps, masks)):
            m = _resize(_validate_map(m, i), g.shape).to(self.fg.device)
            fg = g.to(self.fg.device) > 0.5 if g.dtype != torch.bool else g.to(self.fg.device)
            bins = binned(m, self.num_bins)
            self.fg += torch.bincount(bins[fg], minlength=self.num_bins + 1)
            self.bg += torch.bincount(bins[~fg], minlength=self.num_bins + 1)
        return self

    def merge(self, other: PxAP) -> PxAP:
        """Add another state (another batch, worker or rank) into this one."""
        if other.num_bins != self.num_bins:
            raise ValueError(f"cannot merge PxAP states with {self.num_bins} and {other.num_bins} bins")
        self.fg += other.fg.to(self.fg.device)
        self.bg += other.bg.to(self.bg.device)
        return self

    def __add__(self, other: PxAP) -> PxAP:
        out = PxAP(self.num_bins, device=self.fg.device)
        return out.merge(self).merge(other)

    def sync(self) -> PxAP:
        """Sum the histograms across DDP ranks (no-op outside torch.distributed)."""
        both = all_reduce_sum(torch.stack([self.fg, self.bg]))
        self.fg, self.bg = both[0].clone(), both[1].clone()
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"fg": self.fg.clone(), "bg": self.bg.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> PxAP:
        self.fg, self.bg = state["fg"].clone(), state["bg"].clone()
        self.num_bins = int(self.fg.numel()) - 1
        return self

    def curves(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tp, fp, thresholds) per threshold t_k = k / B, k = 0..B, as float64 counts."""
        tp = self.fg.flip(0).cumsum(0).flip(0).double()
        fp = self.bg.flip(0).cumsum(0).flip(0).double()
        thresholds = torch.arange(self.num_bins + 1, dtype=torch.float64) / self.num_bins
        return tp, fp, thresholds

    def prior(self) -> float:
        """The ROI's share of the scored pixels, in percent: the PxAP of a map that knows nothing (a
        constant ranks every pixel alike, so its precision is that share at every recall). A model's PxAP
        means something only above it."""
        fg, total = float(self.fg.sum()), float(self.fg.sum() + self.bg.sum())
        if fg <= 0:
            raise ValueError("PxAP is undefined: no foreground pixel in the accumulated masks")
        return 100.0 * fg / total

    def compute(self) -> float:
        """PxAP in percent; ValueError when no foreground pixel was seen (AP is undefined)."""
        tp, fp, _ = self.curves()
        positives = tp[0]
        if positives <= 0:
            raise ValueError("PxAP is undefined: no foreground pixel in the accumulated masks")
        predicted = tp + fp
        precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.ones_like(tp))
        recall = tp / positives
        d_recall = recall - torch.cat([recall[1:], recall.new_zeros(1)])
        return float((precision * d_recall).sum() * 100.0)


def pxap(scoremaps: MapBatch, masks: MapBatch, num_bins: int = 1000) -> float:
    """PxAP in percent of a set of [0, 1] maps against binary masks (one pass of `PxAP`)."""
    return PxAP(num_bins).update(scoremaps, masks).compute()
