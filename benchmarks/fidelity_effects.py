"""The measured effect of each fidelity switch on PixelCAM: one PixelCAM run per setting on the same trained
baseline, test PxAP and CL on the source's test split (in-domain), side by side in one run.

    python benchmarks/fidelity_effects.py --baseline RUN_DIR [--data data/synth] [--epochs 3]

With `--seeds 0 1 2` each setting is trained once per seed and printed as mean ± 95 % CI: single PixelCAM
runs on the synthetic domains spread by tens of PxAP points from seed to seed. RUN_DIR is a baseline's run
directory (e.g. a quickstart study's `studies-runs/quickstart/train/<source>__cam/
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
from pixelcam.metrics import mean_ci
from pixelcam.runtime.checkpoint import load_checkpoint
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
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="one PixelCAM run per seed and setting")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
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
    rows: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.variants:
            change = VARIANTS[label]
            if change.get("no_roi_seeds") and not has_no_roi:
                continue
            for seed in args.seeds:
                name = f"{label.replace(' ', '-')}-seed{seed}"
                res = train(
                    cfg0.replace(name=name, storage=tmp, seed=seed, **change), mlflow=False, dataset=ds
                )
                r = evaluate(res.checkpoint, ds, [source]).results[source]
                rows.setdefault(label, []).append((r.pxap, r.cl))
                if label == "default":
                    meta = load_checkpoint(res.checkpoint).meta
                    meta["config"]["eval_size"] = "native"
                    native = Path(tmp) / f"native-{seed}"
                    native.mkdir()
                    for f in Path(res.checkpoint).iterdir():
                        (native / f.name).write_bytes(f.read_bytes())
                    (native / "meta.json").write_text(json.dumps(meta))
                    rn = evaluate(native, ds, [source]).results[source]
                    rows.setdefault("default, eval_size native", []).append((rn.pxap, rn.cl))
    b = evaluate(args.baseline, ds, [source]).results[source]
    head = f"PixelCAM on {args.baseline} ({base['method']}, {source}), {args.epochs} epochs, test split"
    print(f"{head}, seeds {args.seeds}")
    print(f"{'setting':34}{'PxAP (mean ± 95% CI)':>24}{'CL':>8}{'runs':>6}")
    print(f"{'baseline ' + base['method']:34}{b.pxap:>24.2f}{b.cl:>8.1f}{'':>6}")
    for label, vals in rows.items():
        px = mean_ci([v[0] for v in vals])
        cl = sum(v[1] for v in vals) / len(vals)
        print(f"{label:34}{str(px):>24}{cl:>8.1f}{len(vals):>6}   {[round(v[0], 1) for v in vals]}")


if __name__ == "__main__":
    main()
