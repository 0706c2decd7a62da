"""Stain transforms for the staining-robustness sweep (PixelCAM Fig. 4/5, App. H).

Each transform learns a reference stain in `fit(images)` (a sample of a target domain) and maps a batch toward
it in `__call__(images, strength)`: strength 0 returns the batch unchanged, 1 gives the full stain of the
reference, values in between interpolate the stain parameters (and > 1 extrapolates past the reference).
Images are (B, 3, H, W) float RGB in [0, 1]; everything is batched torch and runs on the images' device.

- `reinhard`: per-channel mean and std in CIE LAB (Reinhard et al. 2001).
- `macenko`: stain vectors and 99th-percentile concentrations from the OD plane of the two largest
  eigenvectors (Macenko et al. 2009); the residual off the stain plane is kept, so strength 0 is exact.
- `hed`: per-channel mean and std of the H, E, D concentrations from Ruifrok & Johnston deconvolution,
  the fitted form of HED jitter (Tellez et al. 2018), plus optional seeded random jitter scaled by strength.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F

from pixelcam.data.stain.color import (
    hed_to_rgb,
    lab_to_rgb,
    od_to_rgb,
    rgb_to_hed,
    rgb_to_lab,
    rgb_to_od,
)
from pixelcam.registry import Registry

STAIN_TRANSFORMS: Registry[StainTransform] = Registry("stain transform")


class StainNotFittedError(RuntimeError):
    """`__call__` before `fit`."""


def _check(images: torch.Tensor, what: str) -> torch.Tensor:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{what}: expected RGB images (B, 3, H, W), got {tuple(images.shape)}")
    if images.numel() and (images.min() < -1e-6 or images.max() > 1 + 1e-6):
        raise ValueError(
            f"{what}: expected values in [0, 1], got [{float(images.min())}, {float(images.max())}]"
        )
    return images.double()


class StainTransform(ABC):
    """fit(reference images) -> self; __call__(images, strength) -> images moved toward the reference."""

    name = "stain"

    def __init__(self) -> None:
        self.reference: dict[str, torch.Tensor] | None = None

    def fit(self, images: torch.Tensor) -> StainTransform:
        """Learn the reference stain from a sample of images (B, 3, H, W) in [0, 1]."""
        self.reference = self._fit(_check(images, f"{self.name}.fit"))
        return self

    def __call__(self, images: torch.Tensor, strength: float) -> torch.Tensor:
        if self.reference is None:
            raise StainNotFittedError(f"{self.name}: call fit(reference_images) before applying it")
        if not math.isfinite(strength) or strength < 0:
            raise ValueError(f"{self.name}: strength must be a finite number >= 0, got {strength}")
        x = _check(images, self.name)
        if strength == 0 or x.shape[0] == 0:
            return images.clone()
        return self._apply(x, float(strength)).to(images.dtype).clamp(0, 1)

    @abstractmethod
    def _fit(self, x: torch.Tensor) -> dict[str, torch.Tensor]: ...

    @abstractmethod
    def _apply(self, x: torch.Tensor, s: float) -> torch.Tensor: ...


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and std (B, 3, 1, 1)."""
    flat = x.flatten(2)
    return flat.mean(2)[..., None, None], flat.std(2, unbiased=False).clamp_min(1e-6)[..., None, None]


def _match_moments(x: torch.Tensor, ref: dict[str, torch.Tensor], s: float) -> torch.Tensor:
    """Shift each image's channel moments toward the reference's by the fraction s."""
    mu, sd = _moments(x)
    mu_t, sd_t = ref["mean"].to(x).view(1, 3, 1, 1), ref["std"].to(x).view(1, 3, 1, 1)
    mu_s, sd_s = mu + s * (mu_t - mu), (sd + s * (sd_t - sd)).clamp_min(1e-6)
    return (x - mu) / sd * sd_s + mu_s


@STAIN_TRANSFORMS.register("reinhard")
class Reinhard(StainTransform):
    name = "reinhard"

    def _fit(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, sd = _moments(rgb_to_lab(x))
        return {"mean": mu.mean(0).flatten(), "std": sd.mean(0).flatten()}

    def _apply(self, x: torch.Tensor, s: float) -> torch.Tensor:
        return lab_to_rgb(_match_moments(rgb_to_lab(x), self.reference, s))


@STAIN_TRANSFORMS.register("hed")
class HEDShift(StainTransform):
    """Moments of H, E, D concentrations toward the reference's; `jitter` adds Tellez-style random scale and
    bias per image and channel (alpha in 1 +- jitter*s, beta in +- jitter*s), seeded so levels repeat."""

    name = "hed"

    def __init__(self, jitter: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        if jitter < 0:
            raise ValueError(f"hed: jitter must be >= 0, got {jitter}")
        self.jitter, self.seed = jitter, seed

    def _fit(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, sd = _moments(rgb_to_hed(x))
        return {"mean": mu.mean(0).flatten(), "std": sd.mean(0).flatten()}

    def _apply(self, x: torch.Tensor, s: float) -> torch.Tensor:
        hed = _match_moments(rgb_to_hed(x), self.reference, s)
        if self.jitter:
            g = torch.Generator().manual_seed(self.seed)
            u = torch.rand((2, x.shape[0], 3, 1, 1), generator=g, dtype=torch.float64).to(x) * 2 - 1
            hed = hed * (1 + self.jitter * s * u[0]) + self.jitter * s * u[1]
        return hed_to_rgb(hed)


@STAIN_TRANSFORMS.register("macenko")
class Macenko(StainTransform):
    """Stain matrix (3, 2) [H, E] and max concentrations (2,) per image, interpolated toward the reference."""

    name = "macenko"

    def __init__(self, beta: float = 0.15, alpha: float = 1.0, max_pixels: int = 200_000) -> None:
        super().__init__()
        self.beta, self.alpha, self.max_pixels = beta, alpha, max_pixels

    def _stains(self, od: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """od (N, 3) -> (stain matrix (3, 2) with H first, 99th-percentile concentrations (2,)), or None when
        fewer than 10 pixels carry stain (a blank tile)."""
        tissue = od[(od > self.beta).all(1)]
        if tissue.shape[0] < 10:
            return None
        if tissue.shape[0] > self.max_pixels:  # evenly spaced subsample: deterministic
            tissue = tissue[torch.linspace(0, tissue.shape[0] - 1, self.max_pixels).long()]
        _, vecs = torch.linalg.eigh(torch.cov(tissue.T))
        plane = vecs[:, 1:]  # the two largest eigenvalues
        plane = plane * torch.where(plane.sum(0) < 0, -1.0, 1.0).to(plane)  # point into positive OD
        proj = tissue @ plane
        phi = torch.atan2(proj[:, 1], proj[:, 0])
        lo, hi = torch.quantile(phi, torch.tensor([self.alpha / 100, 1 - self.alpha / 100]).to(phi))
        v1 = plane @ torch.stack([torch.cos(lo), torch.sin(lo)])
        v2 = plane @ torch.stack([torch.cos(hi), torch.sin(hi)])
        he = torch.stack([v1, v2], 1) if v1[0] > v2[0] else torch.stack([v2, v1], 1)  # H absorbs more red
        he = F.normalize(he, dim=0)
        conc = torch.linalg.lstsq(he, tissue.T).solution  # (2, N)
        return he, torch.quantile(conc, 0.99, dim=1).clamp_min(1e-6)

    def _fit(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        od = rgb_to_od(x).permute(0, 2, 3, 1).reshape(-1, 3)
        found = self._stains(od)
        if found is None:
            raise ValueError("macenko.fit: the reference images have (almost) no stained pixels")
        return {"stains": found[0], "max_conc": found[1]}

    def _apply(self, x: torch.Tensor, s: float) -> torch.Tensor:
        od = rgb_to_od(x)  # (B, 3, H, W)
        out = od.clone()
        he_t, max_t = self.reference["stains"].to(x), self.reference["max_conc"].to(x)
        for i in range(x.shape[0]):  # stain estimation needs per-image quantiles
            pix = od[i].reshape(3, -1).T
            found = self._stains(pix)
            if found is None:
                continue  # a blank tile has no stain to move
            he, mx = found
            conc = torch.linalg.lstsq(he, pix.T).solution  # (2, N), all pixels
            he_s = F.normalize(he + s * (he_t - he), dim=0)
            conc_s = conc * ((mx + s * (max_t - mx)) / mx)[:, None]
            residual = pix.T - he @ conc  # what the two-stain model does not explain, kept as is
            out[i] = (he_s @ conc_s + residual).reshape(od[i].shape)
        return od_to_rgb(out)


def list_stain_transforms() -> list[str]:
    return STAIN_TRANSFORMS.names()


def create_stain_transform(name: str, **kwargs) -> StainTransform:
    """Build a registered stain transform (`reinhard`, `macenko`, `hed`); call `.fit` before use."""
    return STAIN_TRANSFORMS.create(name, **kwargs)


def shift_strengths(levels: int = 10, max_strength: float = 1.0) -> list[float]:
    """Strength of levels 1..levels: evenly spaced up to max_strength (level `levels` = max_strength)."""
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    if not (0 < max_strength <= 3):
        raise ValueError(f"max_strength must be in (0, 3], got {max_strength}")
    return [max_strength * k / levels for k in range(1, levels + 1)]
