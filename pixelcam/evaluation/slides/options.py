"""The settings of one `pixelcam predict` and the state of one slide in flight."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelcam.errors import ConfigError
from pixelcam.evaluation.slides.reader import SlideInfo
from pixelcam.evaluation.slides.tiles import TileGrid


@dataclass
class PredictOptions:
    """Settings of one `pixelcam predict` (recorded in every summary)."""

    checkpoint: str
    out: str
    mpp: float | None = None
    level: int | None = None
    tile: int = 224
    overlap: int = 32
    stride: int = 16
    batch_size: int = 32
    actors: int = 1
    gpus_per_actor: float = 0.0
    cpus_per_actor: float | None = None
    precision: str | None = None
    cam_class: str | None = None
    min_tissue: float = 0.05
    masks: list[str] = field(default_factory=list)
    top_k: int = 8
    heatmap_format: str = "ome"  # heatmap.FORMATS
    threshold: float | None = None  # the contours' map value (None: the run's tau)
    overwrite: bool = False
    mlflow: bool = True


@dataclass
class SlideJob:
    """A slide prepared for the pipeline (its stitcher and tile records fill as batches arrive)."""

    index: int
    handle: Any  # the open slide (tiffslide/openslide), kept for the top tiles read after the pipeline
    info: SlideInfo
    level: int
    grid: TileGrid
    positions: np.ndarray
    tissue_fractions: np.ndarray
    thumb: np.ndarray
    tissue: np.ndarray
    tissue_scale: float
    workdir: Path
    stitcher: Any = None
    records: list[dict[str, Any]] = field(default_factory=list)
    top: list[tuple[float, int, int, int, np.ndarray]] = field(default_factory=list)
    error: str | None = None


MAX_TILE = 4096  # px per side of a model's input tile
BYTES_PER_PIXEL = 3 * 4 * 4  # RGB float32 input, with room for a CNN's activations at the input's size
MAX_BATCH_BYTES = 8 * 2**30  # one batch of tiles in memory


def check_options(opts: PredictOptions) -> None:
    """ConfigError naming the flag for settings no slide could run with (before anything is read)."""
    if opts.tile < 8:
        raise ConfigError(f"--tile {opts.tile}: expected >= 8 pixels")
    if opts.tile > MAX_TILE:
        raise ConfigError(
            f"--tile {opts.tile}: at most {MAX_TILE} pixels (a model's input tile, not a region)"
        )
    need = opts.batch_size * opts.tile**2 * BYTES_PER_PIXEL
    if need > MAX_BATCH_BYTES:
        raise ConfigError(
            f"--batch-size {opts.batch_size} x --tile {opts.tile}: a batch would take {need / 2**30:.1f} GiB "
            f"(at most {MAX_BATCH_BYTES / 2**30:.0f} GiB); lower either"
        )
    if not 0 <= opts.overlap < opts.tile:
        raise ConfigError(f"--overlap {opts.overlap}: expected 0 <= overlap < --tile ({opts.tile})")
    if opts.tile % opts.stride or opts.overlap % opts.stride:
        raise ConfigError(
            f"--heatmap-stride {opts.stride}: must divide --tile ({opts.tile}) and --overlap ({opts.overlap})"
        )
    if not 0.0 <= opts.min_tissue <= 1.0:
        raise ConfigError(f"--min-tissue {opts.min_tissue}: expected a fraction in [0, 1]")
