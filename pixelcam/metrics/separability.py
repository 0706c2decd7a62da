"""Class separability J = tr(S_B) / tr(S_W) of foreground vs background pixel features (PixelCAM App. D).

S_W = sum_c sum_{x in c} (x - mu_c)(x - mu_c)^T and S_B = sum_c n_c (mu_c - mu)(mu_c - mu)^T over the two
classes c in {FG, BG}; only the traces are needed, so no d x d matrix is formed. Higher J: features that a
linear pixel classifier can separate more easily.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def separability_index(features: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray) -> float:
    """J of one image: `features` (d, h, w) and a binary `mask` (H, W), resized (nearest) to (h, w) if needed.

    Returns NaN when the image has no foreground or no background location (J is undefined).
    """
    f = torch.as_tensor(features).double()
    m = torch.as_tensor(mask)
    if f.dim() != 3 or m.dim() != 2:
        raise ValueError(
            f"expected features (d, h, w) and mask (H, W), got {tuple(f.shape)} and {tuple(m.shape)}"
        )
    if m.shape != f.shape[1:]:
        m = F.interpolate(m[None, None].float(), size=tuple(f.shape[1:]), mode="nearest")[0, 0]
    fg = (m > 0.5).reshape(-1)
    x = f.reshape(f.shape[0], -1).T  # (N, d)
    if fg.all() or not fg.any():
        return float("nan")
    mu = x.mean(0)
    s_w, s_b = 0.0, 0.0
    for sel in (fg, ~fg):
        xc = x[sel]
        mu_c = xc.mean(0)
        s_w += float(((xc - mu_c) ** 2).sum())
        s_b += float(xc.shape[0] * ((mu_c - mu) ** 2).sum())
    return s_b / s_w if s_w > 0 else float("inf")
