"""Decoding for Ray Data's workers: PNG bytes to arrays, with numpy and Pillow only."""

import subprocess
import sys

import numpy as np

from pixelcam.data.decode import decode_batch
from pixelcam.data.png import encode_png


def test_decode_batch_resizes_images_keeps_masks_full_size():
    img = encode_png(np.zeros((40, 30, 3), np.uint8))
    mask = encode_png(np.ones((40, 30), np.uint8))
    batch = {
        "image": np.array([img, img], dtype=object),
        "mask": np.array([mask, None], dtype=object),
        "label": np.array([1, 0]),
        "image_id": np.array(["p", "q"], dtype=object),
    }
    out = decode_batch(batch, 16, with_masks=True)
    assert out["image"].shape == (2, 16, 16, 3) and out["image"].dtype == np.uint8
    assert out["mask"][0].shape == (40, 30) and out["mask"][1] is None


def test_the_decode_module_imports_no_torch():
    """A Ray Data decode task's worker unpickles `decode_batch` by its module: importing it must not pull in
    torch (~1.8 CPU-s per worker process)."""
    code = "import sys, pixelcam.data.decode; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
