from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import ndimage

from pixelcam.data import DatasetError, open_dataset
from pixelcam.data.png import decode_image, decode_mask
from pixelcam.data.synth import SynthConfig, generate_synthetic, list_synth_domains, render_tile
from pixelcam.metrics import pxap


def test_registry_has_two_domains_with_different_stains():
    assert {"synth-colon", "synth-lymph"} <= set(list_synth_domains())
    colon = (
        np.stack([render_tile("synth-colon", 0, i, 64, False)[0] for i in range(8)]).reshape(-1, 3).mean(0)
    )
    lymph = (
        np.stack([render_tile("synth-lymph", 0, i, 64, False)[0] for i in range(8)]).reshape(-1, 3).mean(0)
    )
    assert np.abs(colon - lymph).max() > 15  # the mean colour differs: a real stain shift between domains


def test_splits_counts_and_masks(synth_dir: Path):
    ds = open_dataset(synth_dir, verify=True)
    assert ds.domains == ["synth-colon", "synth-lymph"]
    for d in ds.domains:
        counts = ds.counts(d)
        assert counts["valpx"] == {"normal": 3, "cancer": 3}
        assert all(sum(counts[s].values()) > 0 for s in ("train", "valcl", "test"))
        assert sum(sum(c.values()) for c in counts.values()) == 24
        for r in ds.read_table([d]).to_pylist():
            m = decode_mask(r["mask"])
            assert m.shape == (64, 64) == decode_image(r["image"]).shape[:2]
            # ROI semantics of the real dataset each stands for: synth-colon ~ GlaS (glands in both
            # classes), synth-lymph ~ CAMELYON16 (ROI in cancer tiles only)
            assert (m.sum() > 0) == (r["label_name"] in ds.roi_classes(d)), r["image_id"]
    assert ds.roi_classes("synth-colon") == ["normal", "cancer"] and ds.roi_classes("synth-lymph") == [
        "cancer"
    ]
    schema = pq.read_schema(ds.files(["synth-colon"], ["train"])[0])
    assert schema.metadata[b"pixelcam.class_names"] == b'["normal", "cancer"]'


def test_deterministic_for_a_seed(tmp_path: Path):
    cfg = SynthConfig(domains=["synth-lymph"], per_class=10, size=48, seed=7)
    generate_synthetic(tmp_path / "a", cfg, workers=1)
    generate_synthetic(tmp_path / "b", cfg, workers=2)
    generate_synthetic(
        tmp_path / "c", SynthConfig(domains=["synth-lymph"], per_class=10, size=48, seed=8), workers=1
    )
    ha, hb, hc = (open_dataset(tmp_path / x).hash for x in "abc")
    assert ha == hb != hc


def test_localization_is_not_the_darkest_pixels(tmp_path: Path):
    generate_synthetic(tmp_path / "d", SynthConfig(per_class=20, size=96, seed=1), workers=1)
    ds = open_dataset(tmp_path / "d")
    for d in ds.domains:
        rows = ds.read_table([d], ["train", "test"]).to_pylist()
        masks = np.stack([decode_mask(r["mask"]) for r in rows])
        dark = np.stack([1 - decode_image(r["image"]).mean(2) / 255 for r in rows])
        smooth = np.stack([ndimage.uniform_filter(m, 9) for m in dark])
        prior = 100 * masks.mean()
        # A darkness detector beats the prior a little at most: it is far from localising the ROI.
        assert pxap(dark, masks) < prior + 20 and pxap(smooth.clip(0, 1), masks) < prior + 25, d
        # glands cover a large part of a colon tile (GlaS ~50 %); a metastasis a small part of lymph tiles
        assert (25 < prior < 55) if d == "synth-colon" else prior < 20, (d, prior)


def test_bad_config_is_rejected(tmp_path: Path):
    with pytest.raises(DatasetError, match="unknown synthetic domain 'nope'"):
        generate_synthetic(tmp_path / "x", SynthConfig(domains=["nope"]))
    with pytest.raises(DatasetError, match="per_class"):
        generate_synthetic(tmp_path / "x", SynthConfig(per_class=4))
    assert not (tmp_path / "x").exists()
