"""Seed aggregation and chance flags: the one place every table, CSV, MLflow summary and dashboard cell
gets its mean, 95 % CI, n and near-chance warning from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pixelcam.metrics.stats import mean_ci

METRICS = ("pxap", "cl")
CHANCE_MARGIN = 5.0  # points of accuracy above chance under which a selected model does not really classify


@dataclass(frozen=True)
class Aggregate:
    """Mean of n values (one per seed) and the half-width of its two-sided 95 % CI (Student t, n - 1 df);
    no half-width below two values."""

    mean: float
    half_width: float | None
    n: int

    def __str__(self) -> str:
        return cell_text(self.mean, self.half_width, self.n)


def aggregate(values: Sequence[float]) -> Aggregate:
    """The `Aggregate` of per-seed values (NaNs dropped); ValueError without any value."""
    ci = mean_ci(values)
    return Aggregate(ci.mean, ci.half_width if ci.n >= 2 else None, ci.n)


def cell_text(mean: float, half_width: float | None, n: int) -> str:
    """`mean ± half-width` with two decimals (the mean alone below two seeds)."""
    if n < 2 or half_width is None:
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {half_width:.2f}"


def near_chance(
    method: str, source: str, valcl_cl: float, num_classes: int, seed: int | None = None
) -> str | None:
    """A warning when a selected model's valcl CL is within CHANCE_MARGIN points of chance (100 / classes):
    its localization numbers then come from a model that does not classify, and mean little."""
    who = f"{method} <- {source}" + (f" (seed {seed})" if seed is not None else "")
    return chance_warning(who, "valcl CL", valcl_cl, num_classes)


def chance_warning(who: str, what: str, cl: float, num_classes: int) -> str | None:
    """`who: <what> x is within 5 points of chance (...)` when accuracy `cl` (%) is that close to 100 /
    classes, else None; the one wording of every near-chance flag."""
    chance = 100.0 / num_classes
    if cl - chance < CHANCE_MARGIN:
        return (
            f"{who}: {what} {cl:.1f} is within {CHANCE_MARGIN:.0f} points of chance "
            f"({chance:.1f}); this model does not classify, read its PxAP with care"
        )
    return None
