"""CAMELYON16-scale ingest: generated 512x512 patches in the published fold layout, ingested with
`pixelcam data ingest camelyon16`, measured side by side in one run against the 2-core PNG decode bound
(decoding the same images with one process per core, nothing else), with the peak RSS of the ingest's whole
process tree at two dataset sizes (it should be flat: the ingest streams).

Run: `.venv/bin/python benchmarks/ingest_scale.py [--patches 5000]`. Targets: ingest >= 0.8x the decode
bound; peak RSS < 2 GiB and flat in the number of patches.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

SIZE = 512


def _write_patch(args: tuple[str, int, bool]) -> None:
    """A textured tile (compresses like a real H&E patch, ~0.5 MB as PNG) and, for tumour, its mask."""
    path, seed, mask = args
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(low).resize((SIZE, SIZE), Image.BILINEAR)).astype(np.int16)
    img = (img + rng.integers(-20, 20, img.shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(img).save(path, compress_level=1)
    if mask:
        m = np.zeros((SIZE, SIZE), np.uint8)
        m[100:300, 150:400] = 255
        Image.fromarray(m).save(path.replace("/img/", "/mask/"), compress_level=1)


def make_fold(root: Path, n: int) -> Path:
    """n patches (half tumour) and a fold directory train/valcl/valpx/test in the published format."""
    (root / "img").mkdir(parents=True)
    (root / "mask").mkdir()
    rows = []
    for i in range(n):
        label = i % 2
        split = ("train",) * 7 + ("valcl",) + ("test",) * 2
        rows.append((f"img/p{i:06d}.png", label, split[i % 10]))
    jobs = [(str(root / r[0]), i, r[1] == 1) for i, r in enumerate(rows)]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_write_patch, jobs, chunksize=32))
    folds = root / "fold"
    valpx = [r for r in rows if r[2] == "valcl"][:10]
    for split in ("train", "valcl", "valpx", "test"):
        chosen = valpx if split == "valpx" else [r for r in rows if r[2] == split]
        d = folds / split
        d.mkdir(parents=True)
        (d / "image_ids.txt").write_text("".join(f"{p}\n" for p, _, _ in chosen))
        (d / "class_labels.txt").write_text("".join(f"{p},{lab}\n" for p, lab, _ in chosen))
        (d / "image_sizes.txt").write_text("".join(f"{p},{SIZE},{SIZE}\n" for p, _, _ in chosen))
        none = "None" if split == "test" else ""
        loc = "".join(f"{p},{p.replace('img/', 'mask/') if lab else none},\n" for p, lab, _ in chosen)
        (d / "localization.txt").write_text(loc)
    return folds


def _decode(path: str) -> int:
    with open(path, "rb") as fh:
        data = fh.read()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).shape[0]


def decode_bound(paths: list[str]) -> float:
    """Images/s of decoding every image, one process per core (the floor of any verifying ingest)."""
    t = time.perf_counter()
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_decode, paths, chunksize=16))
    return len(paths) / (time.perf_counter() - t)


def ingest(root: Path, folds: Path, out: Path) -> tuple[float, float]:
    """(seconds, peak RSS of the ingest's process tree in MiB), sampled every 50 ms."""
    cmd = [sys.executable, "-m", "pixelcam.cli", "data", "ingest", "camelyon16"]
    t = time.perf_counter()
    proc = subprocess.Popen([*cmd, "--root", str(root), "--folds", str(folds), "--out", str(out)])
    top, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [top, *top.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    if proc.returncode:
        raise SystemExit(f"ingest failed with exit code {proc.returncode}")
    return time.perf_counter() - t, peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=5000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ingest-scale-"))
    try:
        results = {}
        for n in (args.patches // 4, args.patches):
            root = tmp / f"n{n}"
            t = time.perf_counter()
            folds = make_fold(root, n)
            print(f"generated {n} patches of {SIZE}x{SIZE} in {time.perf_counter() - t:.0f} s", flush=True)
            paths = sorted(str(p) for p in (root / "img").glob("*.png"))
            bound = decode_bound(paths)
            seconds, rss = ingest(root, folds, root / "ds")
            results[n] = (bound, n / seconds, rss)
            print(
                f"{n:>6} patches: decode bound {bound:6.1f} img/s | ingest {n / seconds:6.1f} img/s "
                f"({n / seconds / bound:.2f}x the bound) | peak RSS {rss:,.0f} MiB",
                flush=True,
            )
        (_, _, rs), (bl, il, rl) = results[args.patches // 4], results[args.patches]
        print(
            f"\n{args.patches} patches: ingest/decode bound {il / bl:.2f}x (target >= 0.8); peak RSS "
            f"{rl:,.0f} MiB (target < 2048) vs {rs:,.0f} MiB at a quarter of the patches: {rl / rs:.2f}x "
            f"(flat = 1.0); {os.cpu_count()} cores"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
