"""Class separability J = tr(S_B) / tr(S_W) of foreground vs background pixel features (PixelCAM App. D).

S_W = sum_c sum_{x in c} (x - mu_c)(x - mu_c)^T and S_B = sum_c n_c (mu_c - mu)(mu_c - mu)^T over the two
classes c in {FG, BG}; only the traces are needed, so no d x d matrix is formed. Higher J: features that a
linear pixel classifier can separate more easily.

`resolution="image"` (default, the paper: F interpolated to the image size) scores F upsampled bilinearly
to the mask's size without forming it: upsampling is linear, X = F (A_y (x) A_x)^T, so the class sums are
F @ (A_y^T M A_x) and the class sums of squares are <F^T F, T> with T the mask-weighted products of the
interpolation weights: exact, and O(d (hw)^2 + HW (hw)^2) instead of O(d HW). `"feature"` scores on the
feature grid with the mask resized (nearest) to it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

RESOLUTIONS = ("image", "feature")


def _interp_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """(n_out, n_in) weights of 1-D linear interpolation as torch's bilinear with align_corners=False."""
    eye = torch.eye(n_in, dtype=torch.float64).view(1, n_in, n_in, 1)
    return F.interpolate(eye, size=(n_out, 1), mode="bilinear", align_corners=False)[0, :, :, 0].T


def separability_index(
    features: torch.Tensor | np.ndarray,
    mask: torch.Tensor | np.ndarray,
    resolution: str = "image",
) -> float:
    """J of one image: `features` (d, h, w) and a binary `mask` (H, W) (> 0.5 = FG, or 0/255).

    Returns NaN when the image has no foreground or no background location (J is undefined).
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    f = torch.as_tensor(features).double()
    m = torch.as_tensor(np.asarray(mask)).double()
    if f.dim() != 3 or m.dim() != 2:
        raise ValueError(
            f"expected features (d, h, w) and mask (H, W), got {tuple(f.shape)} and {tuple(m.shape)}"
        )
    if m.max() > 1:
        m = m / 255.0
    d, h, w = f.shape
    if resolution == "feature" and tuple(m.shape) != (h, w):
        m = F.interpolate(m[None, None], size=(h, w), mode="nearest")[0, 0]
    fg = (m > 0.5).double()
    n = fg.numel()
    n_fg = float(fg.sum())
    if n_fg in (0.0, float(n)):
        return float("nan")
    big_h, big_w = fg.shape
    ay, ax = _interp_matrix(big_h, h), _interp_matrix(big_w, w)  # identity when the sizes match
    flat = f.reshape(d, h * w)
    gram = flat.T @ flat  # (hw, hw)
    s_w = s_b = 0.0
    sums, counts = [], []
    for sel in (fg, 1.0 - fg):
        coef = ay.T @ sel @ ax  # (h, w): sum over the class's pixels of each grid cell's weight
        sums.append(flat @ coef.reshape(-1))  # (d,)
        t = torch.einsum("yx,yi,yk,xj,xl->ijkl", sel, ay, ay, ax, ax).reshape(h * w, h * w)
        sq = float((gram * t).sum())  # sum over the class's pixels of ||x||^2
        c = float(sel.sum())
        counts.append(c)
        s_w += sq - float((sums[-1] ** 2).sum()) / c
    mu = (sums[0] + sums[1]) / n
    for total, c in zip(sums, counts, strict=True):
        s_b += c * float(((total / c - mu) ** 2).sum())
    return s_b / s_w if s_w > 0 else float("inf")
