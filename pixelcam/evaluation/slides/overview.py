"""Pictures of a slide's result: the overview (thumbnail with the tissue outline | the heatmap overlaid on
tissue, with the ground-truth outline and a colour bar) and a strip of the top-scoring tiles with their maps
(zero off tissue, as in every output)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

OUTLINE = (0, 160, 60)  # the tissue outline's colour
ROI_OUTLINE = (255, 255, 255)  # the ground truth's, over the heatmap


def colorize(values: np.ndarray) -> np.ndarray:
    """float [0, 1] (H, W) -> uint8 RGB through the jet colour map (the CAM literature's convention)."""
    import matplotlib

    return (matplotlib.colormaps["jet"](np.clip(values, 0, 1))[..., :3] * 255).astype(np.uint8)


def _fit(arr: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    img = Image.fromarray(arr)
    return np.asarray(img.resize(size, Image.NEAREST if nearest else Image.BILINEAR))


def colour_bar(height: int, width: int = 14) -> np.ndarray:
    """uint8 RGB (height, width + 30): the jet scale from 1 (top) to 0 (bottom), labelled 1, 0.5 and 0."""
    ramp = np.linspace(1.0, 0.0, height)[:, None].repeat(width, 1)
    img = Image.new("RGB", (width + 30, height), "white")
    img.paste(Image.fromarray(colorize(ramp)), (0, 0))
    draw = ImageDraw.Draw(img)
    for value, y in ((1.0, 0), (0.5, height // 2 - 5), (0.0, height - 11)):
        draw.text((width + 3, max(0, y)), f"{value:g}", fill=(0, 0, 0))
    return np.asarray(img)


def outline(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """bool: the inner border of `mask`, `width` pixels thick."""
    return mask & ~ndimage.binary_erosion(mask, iterations=width)


def overview_png(
    thumb: np.ndarray,
    tissue: np.ndarray,
    heat: np.ndarray,
    max_side: int = 1024,
    roi: np.ndarray | None = None,
) -> bytes:
    """PNG: left, the thumbnail with the detected tissue outlined (green); right, the heatmap (jet, 60 %
    opacity) over the thumbnail on tissue, the ground-truth ROI outlined in white when `roi` (bool, any
    resolution) is given, and the colour bar. `thumb` uint8 RGB, `tissue` bool, `heat` uint8."""
    h, w = thumb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    base = _fit(thumb, size)
    mask = _fit(tissue.astype(np.uint8) * 255, size, nearest=True) > 127
    left = base.copy()
    left[outline(mask)] = OUTLINE
    hm = _fit(heat, size).astype(np.float32) / 255.0
    right = base.astype(np.float32)
    right[mask] = 0.4 * right[mask] + 0.6 * colorize(hm)[mask]
    if roi is not None:
        right[outline(_fit(roi.astype(np.uint8) * 255, size, nearest=True) > 127)] = ROI_OUTLINE
    bar = colour_bar(size[1])
    canvas = np.full((size[1], 2 * size[0] + 16 + bar.shape[1], 3), 255, np.uint8)
    canvas[:, : size[0]] = left
    canvas[:, size[0] + 8 : 2 * size[0] + 8] = right.astype(np.uint8)
    canvas[:, 2 * size[0] + 16 :] = bar
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG")
    return buf.getvalue()


def top_tiles_png(
    tiles: list[np.ndarray], maps: list[np.ndarray], captions: list[str], size: int = 160
) -> bytes:
    """PNG strip: each tile over its map overlay (50 %), with a caption (its score) below."""
    n = max(len(tiles), 1)
    pad, text_h = 6, 16
    canvas = Image.new("RGB", (n * (size + pad) + pad, 2 * size + 3 * pad + text_h), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (tile, m, cap) in enumerate(zip(tiles, maps, captions)):
        x = pad + i * (size + pad)
        t = _fit(tile, (size, size))
        mm = _fit((np.clip(m, 0, 1) * 255).astype(np.uint8), (size, size)).astype(np.float32) / 255.0
        over = (0.5 * t + 0.5 * colorize(mm)).astype(np.uint8)
        canvas.paste(Image.fromarray(t), (x, pad))
        canvas.paste(Image.fromarray(over), (x, 2 * pad + size))
        draw.text((x, 3 * pad + 2 * size - 2), cap, fill=(0, 0, 0))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()
