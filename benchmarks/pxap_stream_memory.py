"""Stream 1e9 pixels through PxAP in chunks and report peak memory (target: < 1 GiB over the baseline RSS).

A CAMELYON16 test split is about 4e9 pixels at full size; PxAP's state is two histograms, so memory is set by
the chunk, not the split. Run: `.venv/bin/python benchmarks/pxap_stream_memory.py [--pixels 1e9]`.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from pixelcam.metrics import PxAP


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pixels", type=float, default=1e9)
    ap.add_argument("--chunk-images", type=int, default=16)
    args = ap.parse_args()
    side = 512
    per_chunk = args.chunk_images * side * side
    chunks = int(args.pixels) // per_chunk
    gen = torch.Generator().manual_seed(0)
    base = rss_mib()
    state = PxAP()
    t = time.perf_counter()
    for _ in range(chunks):
        maps = torch.rand(args.chunk_images, side, side, generator=gen)
        masks = torch.rand(args.chunk_images, side, side, generator=gen) < maps * 0.3
        state.update(maps, masks)
    value = state.compute()
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = chunks * per_chunk
    print(f"streamed {n / 1e9:.2f} G px in {chunks} chunks of {per_chunk / 1e6:.1f} M: PxAP {value:.4f} %")
    print(
        f"time {dt:.1f} s ({n / dt / 1e6:.1f} M px/s); RSS before {base:.0f} MiB, peak {peak:.0f} MiB, "
        f"growth {peak - base:.0f} MiB (target < 1024 MiB)"
    )


if __name__ == "__main__":
    main()
