import json
from pathlib import Path

import pytest
import torch

from pixelcam.cli import main
from pixelcam.data import open_dataset
from pixelcam.data.stain import create_stain_transform, delta_e
from pixelcam.evaluation.evaluate import evaluate
from pixelcam.evaluation.stain_sweep import format_sweep, reference_images, stain_sweep
from pixelcam.metrics import pxap
from pixelcam.models import create_wsol_model
from pixelcam.runtime.data import iter_split
from pixelcam.runtime.transforms import normalize, unnormalize
from tests.checkpoints import random_checkpoint


@pytest.fixture(scope="module")
def cam_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("ck") / "ck", "cam", seed=2)


def test_sweep_level_zero_is_plain_evaluation_and_levels_follow_the_shift(cam_ckpt: Path, synth_dir: Path):
    rep = stain_sweep(
        cam_ckpt,
        synth_dir,
        "synth-colon",
        "synth-lymph",
        "reinhard",
        levels=4,
        fit_images=8,
        mode="interpolate",
    )
    plain = evaluate(cam_ckpt, synth_dir, ["synth-colon"]).results["synth-colon"]
    rows = rep["rows"]
    assert [r["level"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["strength"] for r in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert rows[0]["pxap"] == pytest.approx(plain.pxap, abs=1e-9)
    assert rows[0]["cl"] == pytest.approx(plain.cl, abs=1e-9) and rows[0]["delta_e"] == 0
    assert all(b["delta_e"] > a["delta_e"] for a, b in zip(rows, rows[1:]))
    assert rep["images"] == plain.images and "synth-lymph" in format_sweep(rep)

    # level 4 recomputed by hand: shift with an independently fitted transform, then PxAP of the model's CAMs
    ds = open_dataset(synth_dir)
    t = create_stain_transform("reinhard").fit(reference_images(synth_dir, "synth-lymph", 64, 8))
    model = create_wsol_model("cam", "resnet10t")
    model.load_state_dict(torch.load(cam_ckpt / "model.pt", weights_only=True))
    model.eval()
    maps, masks, de = [], [], []
    for b in iter_split(ds, "synth-colon", "test", 64):
        x = unnormalize(b.images)
        shifted = t(x, 1.0)
        de.append(delta_e(x, shifted))
        with torch.no_grad():
            maps += list(model.cam(normalize(shifted).float(), b.labels))
        masks += [torch.from_numpy(m) for m in b.masks]
    # the sweep feeds channels-last batches (faster CPU convolutions): sums in another order, 1e-4 points
    assert rows[4]["pxap"] == pytest.approx(pxap(maps, masks), abs=1e-3)
    assert rows[4]["delta_e"] == pytest.approx(float(torch.cat(de).mean()), rel=1e-5)


def test_sweep_errors_and_cli(cam_ckpt: Path, synth_dir: Path, tmp_path: Path, capsys):
    with pytest.raises(ValueError, match="nothing would shift"):
        stain_sweep(cam_ckpt, synth_dir, "synth-colon", "synth-colon")
    out = tmp_path / "sweep.json"
    args = ["stain-sweep", "--checkpoint", str(cam_ckpt), "--data", str(synth_dir), "--domain", "synth-lymph"]
    assert (
        main([*args, "--reference", "synth-colon", "--levels", "2", "--stain", "hed", "--json", str(out)])
        == 0
    )
    rep = json.loads(out.read_text())
    assert rep["stain"] == "hed" and len(rep["rows"]) == 3
    assert main([*args, "--reference", "synth-lymph"]) == 2
    assert "nothing would shift" in capsys.readouterr().err
    assert main([*args, "--reference", "no-such-domain"]) == 2


def test_styles_mode_applies_distinct_reference_styles_ordered_by_distance(cam_ckpt: Path, synth_dir: Path):
    """The paper's protocol: level k is the full stain of the k-th closest of L reference images' styles."""
    rep = stain_sweep(cam_ckpt, synth_dir, "synth-colon", "synth-lymph", "reinhard", levels=3)
    rows = rep["rows"]
    assert rep["mode"] == "styles" and [r["strength"] for r in rows] == [0.0, 1.0, 1.0, 1.0]
    assert rows[0]["style"] == "original" and len({r["style"] for r in rows[1:]}) == 3
    # by hand: one Reinhard fit per reference image, each applied in full to the test split
    ds = open_dataset(synth_dir)
    images, ids = reference_images(synth_dir, "synth-lymph", 64, 3, with_ids=True)
    test = torch.cat([unnormalize(b.images) for b in iter_split(ds, "synth-colon", "test", 64)])
    by_id = {}
    for img, image_id in zip(images, ids, strict=True):
        t = create_stain_transform("reinhard").fit(img[None])
        by_id[f"style of {image_id}"] = float(delta_e(test, t(test, 1.0)).mean())
    assert {r["style"] for r in rows[1:]} == set(by_id)
    for r in rows[1:]:
        assert r["delta_e"] == pytest.approx(by_id[r["style"]], rel=1e-5)
    assert [r["delta_e"] for r in rows[1:]] == sorted(r["delta_e"] for r in rows[1:])  # closest style first
