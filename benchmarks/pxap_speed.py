"""PxAP throughput vs sklearn's average_precision_score on the same 50 M quantised pixels (same value).

Run: `.venv/bin/python benchmarks/pxap_speed.py [--pixels 50e6]`. Target: >= 10x faster, equal to 1e-6.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from pixelcam.metrics import PxAP


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pixels", type=float, default=50e6)
    args = ap.parse_args()
    side = 512
    n_images = int(args.pixels) // (side * side)
    rng = np.random.default_rng(0)
    maps = (rng.integers(0, 1000, (n_images, side, side), dtype=np.int32) / 1000).astype(np.float32)
    masks = rng.random((n_images, side, side), dtype=np.float32) < maps * 0.5
    n = maps.size
    print(f"{n / 1e6:.1f} M pixels ({n_images} maps of {side}x{side}), {torch.get_num_threads()} threads")

    t = time.perf_counter()
    state = PxAP()
    for i in range(0, n_images, 16):  # batches, as an evaluation loop would feed it
        state.update(torch.from_numpy(maps[i : i + 16]), torch.from_numpy(masks[i : i + 16]))
    ours = state.compute()
    t_ours = time.perf_counter() - t

    t = time.perf_counter()
    ref = 100 * average_precision_score(masks.ravel(), maps.ravel())
    t_ref = time.perf_counter() - t

    print(f"pixelcam PxAP : {ours:.6f} %  in {t_ours:7.2f} s  ({n / t_ours / 1e6:7.1f} M px/s)")
    print(f"sklearn AP    : {ref:.6f} %  in {t_ref:7.2f} s  ({n / t_ref / 1e6:7.1f} M px/s)")
    print(f"speed-up {t_ref / t_ours:.1f}x (target >= 10x), |diff| {abs(ours - ref):.2e} (target <= 1e-6)")


if __name__ == "__main__":
    main()
