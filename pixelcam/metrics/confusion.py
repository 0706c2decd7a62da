"""Pixel confusion rates TP*/FN*/TN*/FP* at a threshold, and the best threshold tau chosen on `valpx`.

Both are read off a `PxAP` state (the same two histograms), so no second pass over the maps is needed.
Rates are percentages: TP* = TP / P, FN* = FN / P, TN* = TN / N, FP* = FP / N (P, N: foreground and background
pixel counts), as reported in the PixelCAM paper's tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pixelcam.metrics.pxap import PxAP
from pixelcam.registry import Registry

ThresholdCriterion = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
THRESHOLD_CRITERIA: Registry[ThresholdCriterion] = Registry("threshold criterion")


@THRESHOLD_CRITERIA.register("f1")
def _f1() -> ThresholdCriterion:
    """Pixel F1 (Dice) = 2TP / (2TP + FP + FN)."""
    return lambda tp, fp, fn, tn: 2 * tp / (2 * tp + fp + fn).clamp(min=1)


@THRESHOLD_CRITERIA.register("iou")
def _iou() -> ThresholdCriterion:
    """Pixel IoU = TP / (TP + FP + FN)."""
    return lambda tp, fp, fn, tn: tp / (tp + fp + fn).clamp(min=1)


@THRESHOLD_CRITERIA.register("miou")
def _miou() -> ThresholdCriterion:
    """Mean IoU of both classes = (TP / (TP + FP + FN) + TN / (TN + FN + FP)) / 2: the official PixelCAM
    code's choice of tau on valpx."""
    return lambda tp, fp, fn, tn: (tp / (tp + fp + fn).clamp(min=1) + tn / (tn + fn + fp).clamp(min=1)) / 2


@THRESHOLD_CRITERIA.register("youden")
def _youden() -> ThresholdCriterion:
    """Youden's J = TPR + TNR - 1 (balances the two classes)."""
    return lambda tp, fp, fn, tn: tp / (tp + fn).clamp(min=1) + tn / (tn + fp).clamp(min=1) - 1


@dataclass(frozen=True)
class ConfusionRates:
    """Pixel rates in percent at `threshold`."""

    threshold: float
    tp: float
    fn: float
    tn: float
    fp: float

    def as_dict(self) -> dict[str, float]:
        return {
            "tau": self.threshold,
            "tp_star": self.tp,
            "fn_star": self.fn,
            "tn_star": self.tn,
            "fp_star": self.fp,
        }


def _counts(state: PxAP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    tp, fp, _ = state.curves()
    p, n = tp[0], fp[0]
    return tp, fp, p - tp, n - fp


def confusion_rates(state: PxAP, threshold: float) -> ConfusionRates:
    """Rates at `threshold` (a pixel is foreground when its map value >= threshold, quantised to the bins)."""
    if not 0.0 <= threshold <= 1.0 or math.isnan(threshold):
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    tp, fp, fn, tn = _counts(state)
    k = min(math.ceil(threshold * state.num_bins - 1e-9), state.num_bins)  # bin num_bins: values >= 1
    p, n = float(tp[0]), float(fp[0])
    tpk, fpk = float(tp[k]), float(fp[k])

    def pct(a: float, b: float) -> float:
        return 100.0 * a / b if b > 0 else float("nan")

    return ConfusionRates(threshold, pct(tpk, p), pct(p - tpk, p), pct(n - fpk, n), pct(fpk, n))


def best_threshold(state: PxAP, criterion: str = "f1") -> float:
    """The threshold k / B maximising `criterion` (see THRESHOLD_CRITERIA) over the accumulated split."""
    score = THRESHOLD_CRITERIA.create(criterion)(*_counts(state))
    return int(torch.argmax(score)) / state.num_bins
