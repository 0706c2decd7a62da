"""Class separability J = tr(S_B) / tr(S_W) of foreground vs background pixel features (PixelCAM App. D).

S_W = sum_c sum_{x in c} (x - mu_c)(x - mu_c)^T and S_B = sum_c n_c (mu_c - mu)(mu_c - mu)^T over the two
classes c in {FG, BG}; only the traces are needed, so no d x d matrix is formed. Higher J: features that a
linear pixel classifier can separate more easily.

`resolution="image"` (default, the paper: F interpolated to the image size) upsamples F bilinearly to the
mask's size, a chunk of channels at a time (the traces add over channels, so chunking is exact and memory
stays at `chunk` x H x W); `"feature"` scores on the feature grid with the mask resized (nearest) to it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

RESOLUTIONS = ("image", "feature")


def separability_index(
    features: torch.Tensor | np.ndarray,
    mask: torch.Tensor | np.ndarray,
    resolution: str = "image",
    chunk: int = 64,
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
    size = tuple(m.shape) if resolution == "image" else tuple(f.shape[1:])
    if tuple(m.shape) != size:
        m = F.interpolate(m[None, None], size=size, mode="nearest")[0, 0]
    fg = (m > 0.5).reshape(-1)
    n_fg, n = int(fg.sum()), fg.numel()
    if n_fg in (0, n):
        return float("nan")
    counts = torch.tensor([n_fg, n - n_fg], dtype=torch.float64)
    s_w = s_b = 0.0
    for c0 in range(0, f.shape[0], chunk):
        x = f[c0 : c0 + chunk]
        if tuple(x.shape[1:]) != size:
            x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0]
        x = x.reshape(x.shape[0], -1)  # (c, N)
        sums = torch.stack([x[:, fg].sum(1), x[:, ~fg].sum(1)])  # (2, c)
        sq = torch.stack([(x[:, fg] ** 2).sum(), (x[:, ~fg] ** 2).sum()])  # (2,)
        mu_c = sums / counts[:, None]
        mu = sums.sum(0) / n
        # sum_{x in c} ||x - mu_c||^2 = sum ||x||^2 - n_c ||mu_c||^2
        s_w += float((sq - counts * (mu_c**2).sum(1)).sum())
        s_b += float((counts * ((mu_c - mu) ** 2).sum(1)).sum())
    return s_b / s_w if s_w > 0 else float("inf")
