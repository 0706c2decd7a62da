"""Metrics: PxAP (histogram-accumulated pixel AP), confusion rates at a threshold, CL accuracy, the FG/BG
separability index J, and the paired t-test used to compare a baseline with its PixelCAM variant."""

from pixelcam.metrics.accuracy import Accuracy, accuracy
from pixelcam.metrics.confusion import ConfusionRates, best_threshold, confusion_rates
from pixelcam.metrics.pxap import PxAP, pxap
from pixelcam.metrics.separability import separability_index
from pixelcam.metrics.stats import MeanCI, PairedTTest, mean_ci, paired_ttest

__all__ = [
    "MeanCI",
    "mean_ci",
    "Accuracy",
    "ConfusionRates",
    "PairedTTest",
    "PxAP",
    "accuracy",
    "best_threshold",
    "confusion_rates",
    "paired_ttest",
    "pxap",
    "separability_index",
]
