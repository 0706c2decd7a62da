"""Batched torch colour conversions for stain work: sRGB <-> CIE LAB (D65) and RGB <-> optical density, and
the Ruifrok & Johnston (2001) haematoxylin-eosin-DAB stain matrix.

Images are (B, 3, H, W) float tensors in [0, 1]; LAB is (B, 3, H, W) with L in [0, 100].
"""

from __future__ import annotations

import torch

# sRGB (D65) -> XYZ, and the D65 white point (CIE 1931 2 degree observer).
_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=torch.float64,
)
_WHITE = torch.tensor([0.950456, 1.0, 1.088754], dtype=torch.float64)
_EPS_LAB = 0.008856  # (6/29)^3: where the cube root gives way to the linear segment
_KAPPA = 7.787

# Ruifrok & Johnston stain OD vectors (rows: haematoxylin, eosin, DAB), normalised to unit length.
RGB_FROM_HED = torch.nn.functional.normalize(
    torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float64), dim=1
)
HED_FROM_RGB = torch.linalg.inv(RGB_FROM_HED)

OD_FLOOR = 1.0 / 255.0  # intensities below one 8-bit step would give infinite optical density


def _apply3(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Multiply every pixel's 3-vector of x (B, 3, H, W) by the 3x3 matrix m."""
    return torch.einsum("ij,bjhw->bihw", m.to(x), x)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIE LAB (D65), (B, 3, H, W)."""
    c = rgb.clamp(0, 1)
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = _apply3(_RGB_TO_XYZ, lin) / _WHITE.to(c).view(1, 3, 1, 1)
    f = torch.where(xyz > _EPS_LAB, xyz.clamp_min(1e-12) ** (1 / 3), _KAPPA * xyz + 16 / 116)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    lum = torch.where(xyz[:, 1] > _EPS_LAB, 116 * fy - 16, 903.3 * xyz[:, 1])
    return torch.stack([lum, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE LAB (D65) -> sRGB clipped to [0, 1], (B, 3, H, W)."""
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack([lab[:, 1] / 500 + fy, fy, fy - lab[:, 2] / 200], dim=1)
    xyz = torch.where(f**3 > _EPS_LAB, f**3, (f - 16 / 116) / _KAPPA) * _WHITE.to(lab).view(1, 3, 1, 1)
    lin = _apply3(torch.linalg.inv(_RGB_TO_XYZ), xyz).clamp_min(0)
    rgb = torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin.clamp_min(1e-12) ** (1 / 2.4) - 0.055)
    return rgb.clamp(0, 1)


def rgb_to_od(rgb: torch.Tensor) -> torch.Tensor:
    """Beer-Lambert optical density -ln(I), (B, 3, H, W), with I floored at one 8-bit step."""
    return -torch.log(rgb.clamp(OD_FLOOR, 1.0))


def od_to_rgb(od: torch.Tensor) -> torch.Tensor:
    return torch.exp(-od.clamp_min(0)).clamp(0, 1)


def rgb_to_hed(rgb: torch.Tensor) -> torch.Tensor:
    """Stain concentrations (H, E, D) by colour deconvolution: OD = C @ RGB_FROM_HED, so C = OD @ inverse."""
    return torch.einsum("bjhw,ji->bihw", rgb_to_od(rgb), HED_FROM_RGB.to(rgb))


def hed_to_rgb(hed: torch.Tensor) -> torch.Tensor:
    return od_to_rgb(torch.einsum("bjhw,ji->bihw", hed, RGB_FROM_HED.to(hed)))


def delta_e(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean CIE76 colour difference per image between two RGB batches, (B,)."""
    # sqrt of the channel sum, not .norm(dim=1): on NCHW batches that reduction is ~30x slower on the CPU
    return (rgb_to_lab(a) - rgb_to_lab(b)).square().sum(1).sqrt().flatten(1).mean(1)
