import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from pixelcam.cli import main
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


def _tiles(tmp_path: Path, per_class: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, masks, labels) of the train and test splits of a synth-colon dataset."""
    generate_synthetic(tmp_path / "c", SynthConfig(["synth-colon"], per_class, size, seed=3), workers=1)
    rows = open_dataset(tmp_path / "c").read_table(["synth-colon"], ["train", "test"]).to_pylist()
    images = np.stack([decode_image(r["image"]) for r in rows])
    return images, np.stack([decode_mask(r["mask"]) for r in rows]), np.array([r["label"] for r in rows])


def test_localization_is_not_the_darkest_pixels(tmp_path: Path):
    generate_synthetic(tmp_path / "d", SynthConfig(per_class=20, size=128, seed=1), workers=1)
    ds = open_dataset(tmp_path / "d")
    for d in ds.domains:
        rows = ds.read_table([d], ["train", "test"]).to_pylist()
        masks = np.stack([decode_mask(r["mask"]) for r in rows])
        dark = np.stack([1 - decode_image(r["image"]).mean(2) / 255 for r in rows])
        smooth = np.stack([ndimage.uniform_filter(m, 9) for m in dark])
        prior = 100 * masks.mean()
        if d == "synth-colon":
            # The default-regime CAM reaches the prior + 20 or more (docs/results/quickstart.md): pixel and
            # smoothed darkness stay at the prior + 6 at most, 14+ points below it (3-4 measured: issue 28).
            # Glands cover about half of a colon tile, as in GlaS.
            assert pxap(dark, masks) < prior + 6 and pxap(smooth.clip(0, 1), masks) < prior + 6
            assert 35 < prior < 60, prior
        else:
            # A darkness detector beats the prior a little at most: it is far from localising a metastasis,
            # which covers a small part of a lymph tile.
            assert pxap(dark, masks) < prior + 20 and pxap(smooth.clip(0, 1), masks) < prior + 25, d
            assert prior < 20, prior


def test_colon_glands_are_large_enough_for_a_stride_32_cam(tmp_path: Path):
    """GlaS-like scale: the ROI averaged over a 4 x 4 grid (a stride-32 CAM at 128 px, upsampled as a CAM
    is) still localises it far above the prior. synth-colon v1's small glands everywhere: +4 only."""
    _, masks, _ = _tiles(tmp_path, 20, 128)
    m = torch.tensor(masks, dtype=torch.float32)[:, None]
    coarse = F.interpolate(F.adaptive_avg_pool2d(m, 4), size=128, mode="bilinear")[:, 0].numpy()
    assert pxap(coarse, masks) > 100 * masks.mean() + 30


def test_colon_class_evidence_lies_in_the_glands(tmp_path: Path):
    """The stroma is drawn the same way in both classes (its mean colour is the same within a few levels,
    per-image stain jitter apart), the glands differ (benign: pale mucin; malignant: basophilic, crowded): a
    CAM of either class can only find its evidence in the glands, as in GlaS, where the class is the glands'
    architecture throughout."""
    images, masks, labels = _tiles(tmp_path, 20, 128)
    gland, stroma = masks.astype(bool), ~masks.astype(bool)

    def mean_rgb(label: int, where: np.ndarray) -> np.ndarray:
        return images[labels == label][where[labels == label]].mean(0)

    assert np.abs(mean_rgb(0, stroma) - mean_rgb(1, stroma)).max() < 8  # per-image stain jitter: ~6
    assert np.abs(mean_rgb(0, gland) - mean_rgb(1, gland)).max() > 30


def test_bad_config_is_rejected(tmp_path: Path):
    with pytest.raises(DatasetError, match="unknown synthetic domain 'nope'"):
        generate_synthetic(tmp_path / "x", SynthConfig(domains=["nope"]))
    with pytest.raises(DatasetError, match="per_class"):
        generate_synthetic(tmp_path / "x", SynthConfig(per_class=4))
    assert not (tmp_path / "x").exists()


def test_synth_if_stale_rewrites_only_data_of_another_renderer_or_setting(tmp_path: Path, capsys):
    """`pixelcam data synth --if-stale` (what `make quickstart` runs): each domain records its renderer's
    version and settings; a current dataset is left as it is, one from another version or seed replaced."""
    out = tmp_path / "s"
    args = ["data", "synth", "--out", str(out), "--per-class", "9", "--size", "32", "--if-stale"]
    assert main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    origin = manifest["domains"]["synth-colon"]["origin"]
    assert origin.startswith("pixelcam synthetic synth-colon v2: size 32, seed 0, per_class 9")
    before = (out / "manifest.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    assert "is up to date" in capsys.readouterr().out
    assert (out / "manifest.json").stat().st_mtime_ns == before
    manifest["domains"]["synth-colon"]["origin"] = origin.replace(" v2:", " v1:")  # an older renderer's
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(args) == 0
    assert json.loads((out / "manifest.json").read_text())["domains"]["synth-colon"]["origin"] == origin
    assert main([*args, "--seed", "1"]) == 0
    assert "seed 1" in json.loads((out / "manifest.json").read_text())["domains"]["synth-lymph"]["origin"]
    open_dataset(out, verify=True)
