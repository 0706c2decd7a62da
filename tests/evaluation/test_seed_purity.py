"""Seed purity of a baseline's pseudo-labels per (seed_grid, bg_sampling), on real synthetic data."""

from pathlib import Path

import torch

from pixelcam.data.reader import open_dataset
from pixelcam.evaluation.seed_purity import VARIANTS, format_purity, measure_seed_purity
from pixelcam.models import create_wsol_model
from pixelcam.runtime.checkpoint import save_checkpoint


def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    meta = {"method": "cam", "backbone": "resnet10t", "class_names": ["normal", "cancer"], "resize": 64}
    return save_checkpoint(tmp_path / "cam", create_wsol_model("cam", "resnet10t"), {**meta, "tau": 0.5})


def test_every_variant_counts_its_seeds_and_follows_the_roi_semantics(tmp_path: Path, synth_dir: Path):
    ds = open_dataset(synth_dir)
    ck = checkpoint(tmp_path)
    colon = measure_seed_purity(ck, ds, "synth-colon", n=3, draws=2)
    assert [(r["seed_grid"], r["bg_sampling"]) for r in colon] == list(VARIANTS)
    images = sum(ds.counts("synth-colon")["train"].values())
    for r in colon:  # glands annotated in both classes: k FG and k BG seeds in every image, every draw
        k = 3 if r["seed_grid"] == "image" else 2  # 64 px: a 2x2 feature grid caps k at half its 4 cells
        assert r["fg_seeds"] == r["bg_seeds"] == k * 2 * images
        assert 0 <= r["fg_purity"] <= 100 and 0 <= r["bg_purity"] <= 100
    lymph = measure_seed_purity(ck, ds, "synth-lymph", n=3, draws=2)
    for r_l, r_c in zip(lymph, colon, strict=True):  # normal lymph patches have no ROI: no seeds there
        assert r_l["fg_seeds"] == r_c["fg_seeds"] // 2
    assert "FG purity" in format_purity(colon, "t")
