"""Stain shift: batched torch stain transforms (Reinhard, Macenko, HED) fitted on a reference domain, and the
ordered shift levels of the staining-robustness sweep."""

from pixelcam.data.stain.color import delta_e, hed_to_rgb, lab_to_rgb, rgb_to_hed, rgb_to_lab
from pixelcam.data.stain.transforms import (
    STAIN_TRANSFORMS,
    StainNotFittedError,
    StainTransform,
    create_stain_transform,
    list_stain_transforms,
    shift_strengths,
)

__all__ = [
    "STAIN_TRANSFORMS",
    "StainNotFittedError",
    "StainTransform",
    "create_stain_transform",
    "delta_e",
    "hed_to_rgb",
    "lab_to_rgb",
    "list_stain_transforms",
    "rgb_to_hed",
    "rgb_to_lab",
    "shift_strengths",
]
