"""The measured effect of each fidelity switch on PixelCAM: one PixelCAM run per setting on the same trained
baseline, test PxAP and CL on the source's test split (in-domain), side by side in one run.

    python benchmarks/fidelity_effects.py --baseline RUN_DIR [--data data/synth] [--epochs 3]

RUN_DIR is a baseline's run directory (e.g. a quickstart study's `studies-runs/quickstart/train/<source>__cam/
trial-*`); its config (backbone, resize, crop, lr) is reused. Settings, one changed from the defaults at a
time: default (seed_grid image, bg_sampling inverse, init_from b-cl, pseudo_labels_checkpoint b-loc,
eval_size 224), seed_grid feature, bg_sampling area, init_from none, pseudo_labels_checkpoint b-cl,
no_roi_seeds bg (domains with a class without ROI only), and the default re-scored at eval_size native.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from pixelcam.config import TrainConfig
from pixelcam.data.reader import open_dataset
from pixelcam.evaluation.evaluate import evaluate
from pixelcam.train.checkpoint import load_checkpoint
from pixelcam.train.runner import train

VARIANTS: dict[str, dict] = {
    "default": {},
    "seed_grid feature": {"seed_grid": "feature"},
    "bg_sampling area": {"bg_sampling": "area"},
    "init_from none": {"init_from": "none"},
    "pseudo_labels_checkpoint b-cl": {"pseudo_labels_checkpoint": "b-cl"},
    "no_roi_seeds bg": {"no_roi_seeds": "bg"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--data", default="data/synth")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    base = load_checkpoint(args.baseline).meta
    source = base["source"]
    ds = open_dataset(Path(args.data).resolve())
    has_no_roi = set(ds.class_names(source)) != set(ds.roi_classes(source))
    keep = ("backbone", "pretrained", "resize", "crop", "batch_size", "lr", "lr_decay", "lr_step", "seed")
    cfg0 = TrainConfig.from_dict({k: base["config"][k] for k in keep}).replace(
        method="pixelcam",
        data=str(ds.location),
        source=source,
        epochs=args.epochs,
        num_workers=1,
        pseudo_labels_from=str(Path(args.baseline).resolve()),
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, change in VARIANTS.items():
            if change.get("no_roi_seeds") and not has_no_roi:
                continue
            cfg = cfg0.replace(name=label.replace(" ", "-"), storage=tmp, **change)
            res = train(cfg, mlflow=False, dataset=ds)
            r = evaluate(res.checkpoint, ds, [source])["results"][source]
            rows.append((label, r["pxap"], r["cl"]))
            if label == "default":
                meta = load_checkpoint(res.checkpoint).meta
                meta["config"]["eval_size"] = "native"
                native = Path(tmp) / "native"
                native.mkdir()
                for f in Path(res.checkpoint).iterdir():
                    (native / f.name).write_bytes(f.read_bytes())
                (native / "meta.json").write_text(json.dumps(meta))
                rn = evaluate(native, ds, [source])["results"][source]
                rows.append(("default, eval_size native", rn["pxap"], rn["cl"]))
    b = evaluate(args.baseline, ds, [source])["results"][source]
    print(f"PixelCAM on {args.baseline} ({base['method']}, {source}), {args.epochs} epochs, test split")
    print(f"{'setting':34}{'PxAP':>8}{'CL':>8}{'dPxAP':>8}")
    print(f"{'baseline ' + base['method']:34}{b['pxap']:>8.2f}{b['cl']:>8.1f}{'':>8}")
    ref = rows[0][1]
    for label, px, cl in rows:
        print(f"{label:34}{px:>8.2f}{cl:>8.1f}{px - ref:>+8.2f}")


if __name__ == "__main__":
    main()
