"""The headline science: PixelCAM trained from each baseline vs that baseline alone, PxAP and CL in-domain
(source test split) and out of domain (target test split), on the bundled synthetic domains.

CAM, GradCAM++ and LayerCAM are post-hoc maps of the same kind of network (GAP + linear classifier trained
with CE), so one CAM-architecture classifier is trained and read out three ways (as in the paper, where
these baselines share the trained classifier); DeepMIL trains its own attention-pooling network. Each PixelCAM
run starts from its baseline's backbone and samples pseudo-labels from its CAM. Selection is B-LOC on the
source's valpx. All runs are real Ray Train runs (2 CPU workers); models start from scratch (no network for
ImageNet weights here), unlike the paper.

Run: `.venv/bin/python benchmarks/science_table.py [--data data/synth] [--epochs 20] [--pc-epochs 10]`
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from pixelcam.config import TrainConfig
from pixelcam.evaluation.evaluate import evaluate
from pixelcam.io import write_json_atomic
from pixelcam.train.checkpoint import load_checkpoint
from pixelcam.train.runner import train

READOUTS = ("gradcampp", "layercam")  # other post-hoc maps of the trained CAM classifier


def readout(cam_ckpt: Path, method: str, out: Path) -> Path:
    """A copy of the CAM checkpoint whose maps are computed with `method` (same weights, same head)."""
    dst = out / f"{method}-from-cam"
    shutil.copytree(cam_ckpt, dst, dirs_exist_ok=True)
    meta = load_checkpoint(dst).meta
    meta["method"] = method
    write_json_atomic(dst / "meta.json", meta)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/synth")
    ap.add_argument("--source", default="synth-colon")
    ap.add_argument("--target", default="synth-lymph")
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--pc-epochs", type=int, default=10)
    ap.add_argument("--out", default=None, help="where runs and the result JSON go (default: a temp dir)")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="pixelcam-science-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    base = TrainConfig(
        backbone=args.backbone,
        data=str(Path(args.data).resolve()),
        source=args.source,
        storage=str(root / "runs"),
        epochs=args.epochs,
        lr_step=max(1, int(args.epochs * 0.75)),
        batch_size=16,
        lr=0.01,
        seed=0,
    )
    baselines: dict[str, Path] = {}
    for method in ("cam", "deepmil"):
        run = root / "runs" / f"base-{method}"
        res = train(base.replace(method=method, name=f"base-{method}"), resume=run.exists())
        baselines[method] = res.checkpoint
    for method in READOUTS:
        baselines[method] = readout(baselines["cam"], method, root / "derived")

    rows = {}
    domains = [args.source, args.target]
    for method, ckpt in baselines.items():
        run = root / "runs" / f"pixelcam-{method}"
        pc = train(
            base.replace(
                method="pixelcam",
                name=f"pixelcam-{method}",
                pseudo_labels_from=str(ckpt),
                epochs=args.pc_epochs,
                lr_step=max(1, int(args.pc_epochs * 0.75)),
            ),
            resume=run.exists(),
        )
        rows[method] = {
            "baseline": evaluate(ckpt, base.data, domains)["results"],
            "pixelcam": evaluate(pc.checkpoint, base.data, domains)["results"],
        }
        print(f"done {method}", flush=True)
    write_json_atomic(root / "science_table.json", rows)

    s, t = args.source, args.target
    print(
        f"\nPxAP / CL on test splits; trained on {s}; {args.backbone} from scratch, B-LOC, "
        f"{args.epochs} baseline + {args.pc_epochs} PixelCAM epochs"
    )
    print(
        f"| baseline | PxAP {s} base | PixelCAM | delta | PxAP {t} base | PixelCAM | delta "
        f"| CL {s} base | PixelCAM |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for method, r in rows.items():
        b, p = r["baseline"], r["pixelcam"]
        print(
            f"| {method} | {b[s]['pxap']:.2f} | {p[s]['pxap']:.2f} | {p[s]['pxap'] - b[s]['pxap']:+.2f} "
            f"| {b[t]['pxap']:.2f} | {p[t]['pxap']:.2f} | {p[t]['pxap'] - b[t]['pxap']:+.2f} "
            f"| {b[s]['cl']:.1f} | {p[s]['cl']:.1f} |"
        )
    print(f"\nresults: {root / 'science_table.json'}")
    print(json.dumps({"root": str(root)}))


if __name__ == "__main__":
    main()
