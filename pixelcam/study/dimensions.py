"""Value shapes of a study spec beyond plain fields: search dimensions (a numeric range or a list of choices)
and the paper's published numbers. Each parser raises ValueError / `field_error` for the spec's validator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator

from pixelcam.validation import ConfigModel, field_error, parse

PUBLISHED_METRICS = ("pxap", "cl")


@dataclass(frozen=True)
class Range:
    """A numeric search dimension: uniform (or log-uniform) on [low, high], integers when `int`."""

    low: float
    high: float
    log: bool = False
    int: bool = False

    def ends(self) -> tuple[Any, Any]:
        return (round(self.low), round(self.high)) if self.int else (self.low, self.high)


@dataclass(frozen=True)
class Choice:
    """A categorical search dimension."""

    values: tuple[Any, ...]

    def ends(self) -> tuple[Any, ...]:
        return self.values


class _RangeRaw(ConfigModel):
    low: float
    high: float
    log: bool = False
    int: bool = False


def _dimension(raw: Any) -> Range | Choice:
    if isinstance(raw, list):
        if not raw:
            raise ValueError("an empty list of choices")
        return Choice(tuple(raw))
    if not isinstance(raw, dict):
        raise ValueError(f"expected {{low, high[, log, int]}} or a list of choices, got {raw!r}")
    r = parse(_RangeRaw, raw, "range")
    if not r.low < r.high:
        raise ValueError(f"low ({r.low:g}) must be < high ({r.high:g})")
    if r.log and r.low <= 0:
        raise ValueError(f"a log range needs low > 0, got {r.low:g}")
    return Range(float(r.low), float(r.high), r.log, r.int)


Dimension = Annotated[Any, BeforeValidator(_dimension)]


def published_values(raw: Any) -> Any:
    """{model label: {pxap|cl: {"<source>-><target>": number}}}, plus optional `source`/`note` strings."""
    if not isinstance(raw, dict):
        return raw  # the field's type reports it
    for label, block in raw.items():
        if label in ("source", "note"):
            if not isinstance(block, str):
                raise field_error(label, f"expected text, got {block!r}")
            continue
        if not isinstance(block, dict):
            raise field_error(label, f"expected {{pxap: {{src->tgt: value}}}}, got {block!r}")
        for metric, cells in block.items():
            if metric not in PUBLISHED_METRICS or not isinstance(cells, dict):
                raise field_error(
                    f"{label}.{metric}",
                    f"expected one of {list(PUBLISHED_METRICS)} mapping 'src->tgt' to a value",
                )
            for pair, v in cells.items():
                if "->" not in str(pair) or isinstance(v, bool) or not isinstance(v, int | float):
                    raise field_error(
                        f"{label}.{metric}.{pair}", f"expected 'source->target': number, got {v!r}"
                    )
    return raw
