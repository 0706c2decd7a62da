"""FG/BG seed purity of PixelCAM's pseudo-labels against the ROI masks, per (seed_grid, bg_sampling).

    python benchmarks/seed_purity.py --checkpoint RUN_OR_CHECKPOINT [--data data/synth] [--domain D ...]

The checkpoint is a trained baseline (e.g. a quickstart study's `studies-runs/quickstart/train/<key>/...`);
purity is measured on the train split (where seeds are drawn in training), 10 draws per image.
"""

from __future__ import annotations

import argparse

from pixelcam.evaluation.seed_purity import format_purity, measure_seed_purity


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", default="data/synth")
    ap.add_argument("--domain", nargs="+", default=["synth-colon", "synth-lymph"])
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--n", type=int, default=5)
    args = ap.parse_args()
    for domain in args.domain:
        rows = measure_seed_purity(args.checkpoint, args.data, domain, n=args.n, draws=args.draws)
        print(format_purity(rows, f"{domain}: seeds from {args.checkpoint} (n={args.n}, {args.draws} draws)"))
        print()


if __name__ == "__main__":
    main()
