"""A slide's zoomable viewer (`OUT/NAME/viewer/viewer.html`): Deep Zoom layers of the slide, its heatmap
and the outlines of the contours at tau and of the ground truth, drawn by OpenSeadragon.

The slide layer is the analysed level's resolution, at most VIEWER_SIDE px on its long side (read at the
smallest level at least that large; a single-level slide: its only level); its pyramid is built here, so a
slide without one (CMU-1's small region) zooms as well as a pyramidal one. The heatmap is transparent where
it is zero (off tissue); outlines are drawn at the slide layer's resolution so they stay sharp when zoomed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pixelcam.evaluation.slides.contours import MIN_THRESHOLD, cells_above
from pixelcam.evaluation.slides.dzi import write_dzi
from pixelcam.evaluation.slides.options import SlideJob
from pixelcam.evaluation.slides.overview import colorize, outline
from pixelcam.evaluation.slides.reader import THUMBNAIL_SIDE, thumbnail
from pixelcam.report.viewer import Layer, write_viewer

VIEWER_SIDE = 4096  # px of the slide layer's long side
CONTOUR_RGBA = (255, 0, 255, 255)  # magenta: seen over jet and over H&E
ROI_RGBA = (255, 255, 255, 255)


def heat_rgba(heat: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 4): the jet colours of `heat` (uint8 0-255 = 0-1), transparent where it is 0."""
    rgba = np.zeros((*heat.shape, 4), np.uint8)
    rgba[..., :3] = colorize(heat.astype(np.float32) / 255.0)
    rgba[..., 3] = np.where(heat > 0, 255, 0)
    return rgba


def outline_rgba(mask: np.ndarray, size: tuple[int, int], colour: tuple[int, ...]) -> np.ndarray:
    """uint8 RGBA of `size` (w, h): the inner border of `mask` (nearest-resized), 2 px, else clear."""
    big = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 127
    rgba = np.zeros((size[1], size[0], 4), np.uint8)
    rgba[outline(big)] = colour
    return rgba


def write_slide_viewer(
    job: SlideJob, heat: np.ndarray, mask: np.ndarray | None, tau: float, level0_per_px: float
) -> str:
    """Write the viewer into the slide's working directory; returns its path relative to that directory."""
    directory = job.workdir / "viewer"
    directory.mkdir(exist_ok=True)
    side = min(VIEWER_SIDE, max(job.info.dimensions[job.level]))  # no finer than the level analysed
    if side == THUMBNAIL_SIDE:  # the thumbnail tissue was found on: read once
        image, per_px = job.thumb, job.tissue_scale
    else:
        image, per_px = thumbnail(job.handle, job.info, max_size=side)
    cover = heat.shape[1] * level0_per_px / job.info.dimensions[0][0]  # viewport units: slide width = 1
    size = tuple(max(1, round(n * level0_per_px / per_px)) for n in heat.shape[::-1])
    above = cells_above(heat, max(tau, MIN_THRESHOLD))
    layers = [
        Layer("slide", "slide", write_dzi(image, directory, "slide")),
        Layer("heatmap", "heatmap", write_dzi(heat_rgba(heat), directory, "heatmap", "png"), cover, 0.6),
        Layer(
            "contours",
            f"contours (map >= {tau:.2f})",
            write_dzi(outline_rgba(above, size, CONTOUR_RGBA), directory, "contours", "png"),
            cover,
            toggle=True,
        ),
    ]
    if mask is not None:
        roi = write_dzi(outline_rgba(mask, size, ROI_RGBA), directory, "roi", "png")
        layers.append(Layer("roi", "ground truth", roi, cover, toggle=True))
    note = f"{job.info.name}: heatmap level {job.level}, {level0_per_px:g} slide px per heatmap px"
    page = write_viewer(directory, job.info.name, layers, note)
    return str(Path("viewer") / page.name)
