"""Pseudo-label samplers: from a baseline CAM on the feature grid, pick n FG and n BG locations per image.

Output: a label map (B, h, w) int64 with 1 = foreground, 0 = background, -1 = ignore (everything not drawn).
Locations are redrawn at every call from the sampler's own seeded generator.

- `pb` (probability-based, default): FG ~ multinomial over CAM, both without replacement; BG never reuses a
  FG location. Background, `bg_sampling`:
  - `inverse` (default, the paper's text): BG ~ multinomial over 1 - CAM; `bg_area` (ours) optionally
    restricts these weighted draws to that fraction of lowest-CAM locations;
  - `area` (the official code's variant): BG uniform among the `bg_area` lowest-CAM fraction (default 0.2).
- `th` (threshold-based): Otsu threshold on each CAM; FG uniform inside, BG uniform outside.

Fallbacks (documented, never NaN): when a side has no admissible weight (an all-zero CAM has no FG evidence,
an all-one CAM no BG evidence, a constant CAM no Otsu split), that side is drawn uniformly from the locations
not already taken. n is capped at half the grid.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch

from pixelcam.registry import Registry

_FLOOR = 1e-9  # weight of a zero-weight location relative to the row total: drawn once positives run out
SAMPLERS: Registry[Callable[[torch.Tensor], torch.Tensor]] = Registry("pseudo-label sampler")


def otsu_threshold(values: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Otsu's threshold of each row of (B, N) values in [0, 1] (maximises between-class variance)."""
    idx = (values * bins).long().clamp(0, bins - 1)
    hist = torch.zeros(values.shape[0], bins, device=values.device, dtype=torch.float64)
    hist.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))
    p = hist / hist.sum(1, keepdim=True)
    centres = (torch.arange(bins, device=values.device, dtype=torch.float64) + 0.5) / bins
    w0 = p.cumsum(1)
    mu = (p * centres).cumsum(1)
    mu_t = mu[:, -1:]
    between = (mu_t * w0 - mu) ** 2 / (w0 * (1 - w0)).clamp(min=1e-12)
    k = between.argmax(1)
    return ((k + 1).double() / bins).to(values.dtype)


class _Sampler(ABC):
    def __init__(self, n: int = 5, seed: int = 0) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self.seed = seed
        self._gen: torch.Generator | None = None

    def reseed(self, seed: int) -> None:
        """Restart the draws from `seed` (a fresh generator on the next call)."""
        self.seed = seed
        self._gen = None

    def _generator(self, device: torch.device) -> torch.Generator:
        if self._gen is None or self._gen.device != device:
            self._gen = torch.Generator(device=device).manual_seed(self.seed)
        return self._gen

    def _draw(
        self, weights: torch.Tensor, k: int, gen: torch.Generator, allowed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """k indices per row without replacement, only among `allowed` locations (default: all). Rows with
        fewer than k positive weights take the rest uniformly among the allowed locations left (a tiny
        floor weight), so a draw never lands on a disallowed location such as one FG already took."""
        allowed = torch.ones_like(weights, dtype=torch.bool) if allowed is None else allowed
        w = weights.masked_fill(~allowed, 0.0)
        total = w.sum(1, keepdim=True)
        floor = torch.where(total > 0, total * _FLOOR, torch.ones_like(total))
        w = torch.where(allowed & (w <= 0), floor.expand_as(w), w)
        return torch.multinomial(w, k, replacement=False, generator=gen)

    @abstractmethod
    def weights(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(FG weights, BG weights), each (B, N), from flattened CAMs (B, N); zero = never drawn."""

    def __call__(self, cams: torch.Tensor) -> torch.Tensor:
        """Label map (B, h, w) from CAMs (B, h, w) in [0, 1] on the feature grid."""
        if cams.dim() != 3:
            raise ValueError(f"expected CAMs (B, h, w), got {tuple(cams.shape)}")
        cams = torch.nan_to_num(cams.detach().float(), nan=0.0).clamp(0, 1)
        b, h, w = cams.shape
        flat = cams.reshape(b, h * w)
        k = max(1, min(self.n, (h * w) // 2))
        gen = self._generator(cams.device)
        fg_w, bg_w = self.weights(flat)
        fg = self._draw(fg_w, k, gen)
        taken = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, fg, True)
        bg = self._draw(bg_w, k, gen, allowed=~taken)
        labels = torch.full_like(flat, -1, dtype=torch.long)
        labels.scatter_(1, fg, 1)
        labels.scatter_(1, bg, 0)
        return labels.view(b, h, w)


BG_SAMPLING = ("inverse", "area")
DEFAULT_BG_AREA = 0.2  # the official code's fraction for `area`


class ProbabilitySampler(_Sampler):
    """PB: FG ~ CAM; BG ~ 1 - CAM (`inverse`, optionally only among the `bg_area` lowest-CAM locations) or
    uniform among the `bg_area` lowest-CAM locations (`area`)."""

    def __init__(
        self, n: int = 5, seed: int = 0, bg_area: float | None = None, bg_sampling: str = "inverse"
    ) -> None:
        super().__init__(n, seed)
        if bg_sampling not in BG_SAMPLING:
            raise ValueError(f"bg_sampling must be one of {BG_SAMPLING}, got {bg_sampling!r}")
        if bg_sampling == "area" and bg_area is None:
            bg_area = DEFAULT_BG_AREA
        if bg_area is not None and not 0 < bg_area <= 1:
            raise ValueError(f"bg_area must be in (0, 1], got {bg_area}")
        self.bg_area = bg_area
        self.bg_sampling = bg_sampling

    def weights(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bg = 1.0 - flat if self.bg_sampling == "inverse" else torch.ones_like(flat)
        if self.bg_area is not None:
            keep = max(1, int(round(self.bg_area * flat.shape[1])))
            low = flat.argsort(1)[:, :keep]
            bg = torch.zeros_like(flat).scatter_(1, low, bg.gather(1, low))
        return flat, bg


class ThresholdSampler(_Sampler):
    """TH: uniform FG draws where CAM >= Otsu threshold, uniform BG draws below it."""

    def weights(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = otsu_threshold(flat)[:, None]
        constant = (flat.max(1, keepdim=True).values - flat.min(1, keepdim=True).values) <= 1e-12
        fg = ((flat >= t) & ~constant).float()
        return fg, ((flat < t) & ~constant).float()


SAMPLERS.register("pb")(ProbabilitySampler)
SAMPLERS.register("th")(ThresholdSampler)


def list_samplers() -> list[str]:
    return SAMPLERS.names()


def create_sampler(name: str, **kwargs: object) -> _Sampler:
    """`create_sampler("pb", n=5, seed=0, bg_area=None, bg_sampling="inverse")` or
    `create_sampler("th", n=5, seed=0)`."""
    return SAMPLERS.create(name, **kwargs)
