"""PNG encode/decode of images (RGB uint8) and masks (uint8 0/1), with errors that name the source."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from pixelcam.data.errors import DatasetError


def encode_png(array: np.ndarray, compress_level: int = 3) -> bytes:
    """PNG bytes of an (H, W, 3) RGB or (H, W) single-channel uint8 array."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(
        buf, format="PNG", compress_level=compress_level
    )
    return buf.getvalue()


def decode_reason(exc: Exception) -> str:
    """Why PIL could not read some bytes, without the in-memory buffer's repr PIL puts in its message."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image format PIL reads"
    return str(exc).split(" <_io.BytesIO", 1)[0] or type(exc).__name__


def decode_image(data: bytes, where: str = "image") -> np.ndarray:
    """(H, W, 3) uint8 RGB from encoded image bytes (any format PIL reads)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # PIL raises several types for corrupt data
        raise DatasetError(f"{where}: cannot decode image ({decode_reason(exc)})") from exc


def decode_mask(data: bytes, where: str = "mask") -> np.ndarray:
    """(H, W) uint8 mask with values {0, 1} from encoded bytes (any non-zero pixel is ROI)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("L") if im.mode not in ("L", "1", "P", "I", "I;16") else im)
    except Exception as exc:
        raise DatasetError(f"{where}: cannot decode mask ({decode_reason(exc)})") from exc
    return (arr > 0).astype(np.uint8)


def _read_bytes(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise DatasetError(f"{path}: {what} not found") from None


def read_image_file(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an image file; DatasetError naming the path when missing or corrupt."""
    return decode_image(_read_bytes(path, "file"), where=path)


def read_mask_file(path: str) -> np.ndarray:
    """(H, W) {0,1} uint8 mask from a file (instance-labelled masks are binarised: > 0 is ROI)."""
    return decode_mask(_read_bytes(path, "mask file"), where=path)
