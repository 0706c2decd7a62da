"""Synthetic dataset generation speed at 128 px, end to end (render + PNG + Parquet), 1 vs all cores.

Run: `.venv/bin/python benchmarks/synth_speed.py`. Target: >= 200 images/s on the 2-core dev machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from pixelcam.data.synth import SynthConfig, generate_synthetic


def main() -> None:
    cfg = SynthConfig(per_class=250, size=128)
    n = cfg.per_class * 2 * len(cfg.domains)
    tmp = tempfile.mkdtemp()
    try:
        rates = {}
        for workers in sorted({1, os.cpu_count() or 1}):
            out = os.path.join(tmp, f"w{workers}")
            t = time.perf_counter()
            generate_synthetic(out, cfg, workers=workers)
            rates[workers] = n / (time.perf_counter() - t)
            dt = n / rates[workers]
            print(f"{workers} worker(s): {n} images, {dt:.2f} s = {rates[workers]:.0f} images/s")
        best = max(rates.values())
        print(f"best {best:.0f} images/s (target >= 200); scaling {best / rates[1]:.2f}x over 1 worker")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
