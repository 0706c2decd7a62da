"""NEGEV's training terms (Belharbi et al., MIDL 2022), as pure functions of the decoder's output.

- `dilate_seeds`: each FG/BG seed grown to a k x k square (official GlaS: k = 3); a pixel both squares
  reach is left out (-1), since its label is unknown.
- `negative_evidence_loss`: on images of a class without ROI (CAMELYON16 normal), every pixel is
  background: cross-entropy over the whole map.
- `crf_loss`: the dense CRF's Potts relaxation sum_k sum_ij W_ij S_ki (1 - S_kj) (Tang et al. 2018) over the
  K = 2 channels, W a bilateral Gaussian over raw 0-255 RGB (sigma_rgb) and pixel position (sigma_xy),
  evaluated exactly (every pair, in row blocks, no N x N matrix kept); the gradient is W1 - 2 W S_k.
- `size_loss`: the absolute-size constraint, an extended log-barrier (Kervadec et al. 2022) on
  -area_k <= 0 for both channels, keeping neither area from collapsing; `barrier_t(epoch)` is its schedule
  (t = 1, x 1.01 per epoch, at most 10).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pixelcam.models.losses import IGNORE_INDEX

CRF_SIGMA_RGB = 15.0
CRF_SIGMA_XY = 100.0
CRF_WEIGHT = 2e-9
BARRIER_T0, BARRIER_RATE, BARRIER_T_MAX = 1.0, 1.01, 10.0


def dilate_seeds(seeds: torch.Tensor, k: int) -> torch.Tensor:
    """Seeds (B, H, W: 1 FG, 0 BG, -1 none) with every seed grown to a k x k square (k odd, 1: as is)."""
    if k < 1 or k % 2 == 0:
        raise ValueError(f"seed dilation must be an odd size >= 1, got {k}")
    if k == 1:
        return seeds
    grow = lambda m: F.max_pool2d(m[:, None].float(), k, stride=1, padding=k // 2)[:, 0] > 0  # noqa: E731
    fg, bg = grow(seeds == 1), grow(seeds == 0)
    out = torch.full_like(seeds, IGNORE_INDEX)
    out[fg & ~bg] = 1
    out[bg & ~fg] = 0
    return out


def negative_evidence_loss(pixel_logits: torch.Tensor, no_roi: torch.Tensor) -> torch.Tensor:
    """Mean CE of every pixel of the `no_roi` images (B,) bool against background (channel 0) of
    `pixel_logits` (B, 2, H, W); zero (with a graph) when the batch has no such image."""
    if not bool(no_roi.any()):
        return pixel_logits.sum() * 0.0
    picked = pixel_logits[no_roi]
    target = torch.zeros((picked.shape[0], *picked.shape[2:]), dtype=torch.long, device=picked.device)
    return F.cross_entropy(picked, target)


def _features(images_255: torch.Tensor, sigma_rgb: float, sigma_xy: float) -> torch.Tensor:
    """(B, N, 5) bilateral features: position / sigma_xy and raw RGB / sigma_rgb, per pixel."""
    b, _, h, w = images_255.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=images_255.device),
        torch.arange(w, dtype=torch.float32, device=images_255.device),
        indexing="ij",
    )
    pos = torch.stack([xs, ys], -1).view(1, h * w, 2).expand(b, -1, -1) / sigma_xy
    rgb = images_255.float().flatten(2).transpose(1, 2) / sigma_rgb
    return torch.cat([pos, rgb], -1)


def bilateral_filter(features: torch.Tensor, values: torch.Tensor, block: int = 2048) -> torch.Tensor:
    """W @ values for each image: W_ij = exp(-|f_i - f_j|^2 / 2) over (B, N, D) features, values (B, N, C).
    Exact: every pair, in blocks of `block` rows, so memory stays O(block * N). Squared distances come from
    one matrix product, |f_i|^2 + |f_j|^2 - 2 f_i.f_j, on features centred per image (smaller norms, so the
    float32 cancellation stays ~1e-5 in the kernel, far inside the 1e-3 the tests hold it to)."""
    f = features - features.mean(dim=1, keepdim=True)
    sq = (f * f).sum(-1)  # (B, N)
    out = torch.empty_like(values)
    for i in range(0, f.shape[1], block):
        rows = f[:, i : i + block]  # (B, r, D)
        # -|f_i - f_j|^2 / 2 = f_i.f_j - |f_i|^2 / 2 - |f_j|^2 / 2, built in place, then exp in place
        k = torch.baddbmm(sq[:, None, :] * -0.5, rows, f.transpose(1, 2))
        k.sub_(sq[:, i : i + block, None] * 0.5).clamp_(max=0.0).exp_()
        out[:, i : i + block] = torch.bmm(k, values)
    return out


class _PottsCRF(torch.autograd.Function):
    """sum over images of sum_k S_k . (W 1) - S_k . (W S_k), with its gradient W1 - 2 W S_k (W symmetric)."""

    @staticmethod
    def forward(ctx, probs: torch.Tensor, features: torch.Tensor, block: int) -> torch.Tensor:  # noqa: ANN001
        s = probs.detach().float().flatten(2).transpose(1, 2)  # (B, N, K)
        ones = torch.ones_like(s[..., :1])
        filtered = bilateral_filter(features, torch.cat([s, ones], -1), block)  # (B, N, K + 1)
        ws, w1 = filtered[..., :-1], filtered[..., -1:]
        ctx.save_for_backward(w1 - 2.0 * ws)
        ctx.shape = probs.shape
        return (s * (w1 - ws)).sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        (g,) = ctx.saved_tensors
        b, k, h, w = ctx.shape
        return (grad * g).transpose(1, 2).reshape(b, k, h, w), None, None


def crf_loss(
    probs: torch.Tensor,
    images_255: torch.Tensor,
    sigma_rgb: float = CRF_SIGMA_RGB,
    sigma_xy: float = CRF_SIGMA_XY,
    scale: float = 1.0,
    block: int = 2048,
) -> torch.Tensor:
    """Mean over the batch of the Potts relaxation sum_k sum_ij W_ij S_ki (1 - S_kj): `probs` (B, K, H, W),
    the segmentation head's softmax; `images_255` (B, 3, H, W), raw RGB in 0-255. `scale` < 1 first resizes
    both (bilinear), positions still counted in the original pixels (the kernel keeps its size), which
    divides the cost by about scale^-4. Unweighted: the caller multiplies by its weight (2e-9)."""
    if probs.shape[0] != images_255.shape[0] or probs.shape[-2:] != images_255.shape[-2:]:
        raise ValueError(f"probs {tuple(probs.shape)} and images {tuple(images_255.shape)} do not match")
    if not 0 < scale <= 1:
        raise ValueError(f"CRF scale must be in (0, 1], got {scale}")
    if scale < 1:
        size = [max(1, round(s * scale)) for s in probs.shape[-2:]]
        probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
        images_255 = F.interpolate(images_255.float(), size=size, mode="bilinear", align_corners=False)
        sigma_xy = sigma_xy * scale
    features = _features(images_255, sigma_rgb, sigma_xy)
    return _PottsCRF.apply(probs.float(), features, block) / probs.shape[0]


def extended_log_barrier(z: torch.Tensor, t: float) -> torch.Tensor:
    """psi_t(z) of the constraint z <= 0: -log(-z) / t for z <= -1/t^2, else its tangent continuation
    t z - log(1/t^2) / t + 1/t (finite and differentiable everywhere)."""
    edge = -1.0 / t**2
    inner = z <= edge
    inside = -torch.log(-torch.where(inner, z, torch.full_like(z, edge))) / t
    outside = t * z - math.log(1.0 / t**2) / t + 1.0 / t
    return torch.where(inner, inside, outside)


def size_loss(probs: torch.Tensor, t: float) -> torch.Tensor:
    """Mean over images of sum_k psi_t(-area_k), area_k = sum of channel k's probabilities (B, K, H, W)
    in pixels: neither the foreground nor the background may collapse to nothing."""
    areas = probs.float().sum(dim=(2, 3))  # (B, K)
    return extended_log_barrier(-areas, t).sum(1).mean()


def barrier_t(epoch: int) -> float:
    """The log-barrier's t at `epoch` (0-based): 1, multiplied by 1.01 each epoch, capped at 10."""
    return min(BARRIER_T_MAX, BARRIER_T0 * BARRIER_RATE**epoch)
