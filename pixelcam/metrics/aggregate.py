"""Seed aggregation and chance flags: the one place every table, CSV, MLflow summary and dashboard cell
gets its mean, 95 % CI, n and near-chance warning from."""

from __future__ import annotations

METRICS = ("pxap", "cl")
CHANCE_MARGIN = 5.0  # points of accuracy above chance under which a selected model does not really classify


def near_chance(method: str, source: str, valcl_cl: float, num_classes: int) -> str | None:
    """A warning when a selected model's valcl CL is within CHANCE_MARGIN points of chance (100 / classes):
    its localization numbers then come from a model that does not classify, and mean little."""
    chance = 100.0 / num_classes
    if valcl_cl - chance < CHANCE_MARGIN:
        return (
            f"{method} <- {source}: valcl CL {valcl_cl:.1f} is within {CHANCE_MARGIN:.0f} points of chance "
            f"({chance:.1f}); this model does not classify, read its PxAP with care"
        )
    return None
