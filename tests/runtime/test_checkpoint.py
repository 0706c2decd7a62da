import json
import pickle
from pathlib import Path

import pytest
import torch

from pixelcam.models import create_wsol_model
from pixelcam.runtime.checkpoint import (
    CheckpointError,
    baseline_checkpoint,
    load_checkpoint,
    resolve_checkpoint_dir,
    resolve_pseudo_label_source,
    run_checkpoints,
    save_checkpoint,
    selected_in_run,
)
from pixelcam.storage import Location


def meta(method="pixelcam"):
    return {
        "method": method,
        "backbone": "resnet10t",
        "pixel_head_depth": 3,
        "class_names": ["a", "b"],
        "epoch": 2,
        "tau": 0.4,
        "metrics": {},
    }


def test_roundtrip_rebuilds_the_same_model(tmp_path: Path):
    torch.manual_seed(0)
    model = create_wsol_model("pixelcam", "resnet10t", pixel_head_depth=3).eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    save_checkpoint(tmp_path / "ck", model, meta(), opt, torch.optim.lr_scheduler.StepLR(opt, 2))
    loaded = load_checkpoint(tmp_path / "ck")
    again = loaded.build_model()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(again.cam(x, torch.tensor([0, 1])), model.cam(x, torch.tensor([0, 1])))
    assert loaded.meta["tau"] == 0.4 and (tmp_path / "ck" / "optim.pt").is_file()


def test_run_directory_resolves_through_selected_json(tmp_path: Path):
    model = create_wsol_model("cam", "resnet10t")
    save_checkpoint(tmp_path / "run" / "epoch_001", model, meta("cam"))
    (tmp_path / "run" / "selected.json").write_text(
        json.dumps({"checkpoint": str(tmp_path / "run" / "epoch_001")})
    )
    assert resolve_checkpoint_dir(tmp_path / "run") == Location(tmp_path / "run" / "epoch_001")
    assert load_checkpoint(tmp_path / "run").method == "cam"


def test_selected_json_is_relative_so_a_moved_run_directory_still_resolves(tmp_path: Path):
    model = create_wsol_model("cam", "resnet10t")
    save_checkpoint(tmp_path / "run" / "epoch_001", model, meta("cam"))
    (tmp_path / "run" / "selected.json").write_text(json.dumps({"checkpoint": "epoch_001", "tau": 0.5}))
    (tmp_path / "run").rename(tmp_path / "moved")
    assert resolve_checkpoint_dir(tmp_path / "moved") == Location(tmp_path / "moved" / "epoch_001")
    assert selected_in_run(tmp_path / "moved").checkpoint == str(tmp_path / "moved" / "epoch_001")
    (tmp_path / "moved" / "selected.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"selected.json: cannot be read as JSON"):
        resolve_checkpoint_dir(tmp_path / "moved")


def test_weights_of_another_model_are_named(tmp_path: Path):
    save_checkpoint(
        tmp_path / "c", create_wsol_model("cam", "resnet10t"), {**meta("cam"), "method": "deepmil"}
    )
    with pytest.raises(CheckpointError, match=r"the weights do not fit deepmil on resnet10t with 2 classes"):
        load_checkpoint(tmp_path / "c").build_model()


def test_bad_references(tmp_path: Path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        resolve_checkpoint_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither a checkpoint"):
        resolve_checkpoint_dir(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="no MLflow run with that id"):
        resolve_pseudo_label_source("0123456789abcdef")


def test_weights_are_loaded_without_running_pickled_code(tmp_path: Path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    d = tmp_path / "ck"
    d.mkdir()
    (d / "meta.json").write_text(json.dumps(meta("cam")))
    with open(d / "model.pt", "wb") as fh:
        pickle.dump({"x": Evil()}, fh)
    with pytest.raises(CheckpointError, match="model.pt: not a readable PyTorch state dict"):
        load_checkpoint(d)


def baseline_run(tmp_path: Path, by_selection: bool = True) -> Path:
    """A finished baseline run keeping its B-LOC best (epoch 3) and its B-CL best (epoch 1)."""
    model = create_wsol_model("cam", "resnet10t")
    run = tmp_path / "cam-run"
    for epoch in (1, 3):
        save_checkpoint(run / f"epoch_{epoch:03d}", model, {**meta("cam"), "epoch": epoch})
    sel = {"checkpoint": "epoch_003", "selection": "b-loc", "tau": 0.5}
    if by_selection:
        sel["by_selection"] = {"b-loc": "epoch_003", "b-cl": "epoch_001"}
    (run / "selected.json").write_text(json.dumps(sel))
    return run


def test_baseline_checkpoint_picks_the_runs_b_loc_or_b_cl_best(tmp_path: Path):
    run = baseline_run(tmp_path)
    assert run_checkpoints(run) == {"b-loc": Location(run / "epoch_003"), "b-cl": Location(run / "epoch_001")}
    # a run directory, or any checkpoint of the run (what a study passes), stands for the run
    for ref in (run, run / "epoch_003", run / "epoch_001"):
        assert baseline_checkpoint(str(ref), "b-loc")[0] == Location(run / "epoch_003")
        assert baseline_checkpoint(str(ref), "b-cl")[0] == Location(run / "epoch_001")


def test_an_unfinished_run_resolves_through_its_latest_best_by(tmp_path: Path):
    run = baseline_run(tmp_path)
    (run / "selected.json").unlink()
    latest = json.loads((run / "epoch_003" / "meta.json").read_text())
    latest.update(selection="b-loc", best={"epoch": 3}, best_by={"b-loc": {"epoch": 3}, "b-cl": {"epoch": 1}})
    (run / "epoch_003" / "meta.json").write_text(json.dumps(latest))
    assert run_checkpoints(run) == {"b-loc": Location(run / "epoch_003"), "b-cl": Location(run / "epoch_001")}


def test_an_older_run_without_a_b_cl_checkpoint_is_named(tmp_path: Path):
    run = baseline_run(tmp_path, by_selection=False)
    assert baseline_checkpoint(str(run), "b-loc")[0] == Location(run / "epoch_003")
    with pytest.raises(
        CheckpointError, match=r"keeps no B-CL checkpoint .*pseudo_labels_checkpoint / init_from"
    ):
        baseline_checkpoint(str(run), "b-cl")


def test_a_lone_checkpoint_is_used_for_either_selection(tmp_path: Path):
    save_checkpoint(tmp_path / "lone", create_wsol_model("cam", "resnet10t"), meta("cam"))
    assert baseline_checkpoint(str(tmp_path / "lone"), "b-cl") == (
        Location(tmp_path / "lone"),
        "lone checkpoint",
    )


def test_init_from_baseline_copies_backbone_and_a_matching_head():
    from pixelcam.runtime.build import init_from_baseline

    torch.manual_seed(0)
    cam = create_wsol_model("cam", "resnet10t")
    pc = create_wsol_model("pixelcam", "resnet10t")
    assert init_from_baseline(pc, cam.state_dict()) == ["backbone", "head"]
    for k, v in cam.state_dict().items():
        torch.testing.assert_close(pc.state_dict()[k], v)
    mil = create_wsol_model("deepmil", "resnet10t")  # attention head: not PixelCAM's g, backbone only
    pc2 = create_wsol_model("pixelcam", "resnet10t")
    head = pc2.head.fc.weight.clone()
    assert init_from_baseline(pc2, mil.state_dict()) == ["backbone"]
    assert torch.equal(pc2.head.fc.weight, head)
    with pytest.raises(ValueError, match="backbone weights do not fit"):
        init_from_baseline(create_wsol_model("pixelcam", "resnet18"), cam.state_dict())


def test_a_checkpoint_on_s3_loads_by_its_uri(s3, tmp_path: Path):
    """`evaluate`, `predict` and `--pseudo-labels-from` take a run or checkpoint stored on object storage:
    it is read where it is (no local copy), through the same code as a local one."""
    import pyarrow.fs as pafs

    from pixelcam.runtime.checkpoint import baseline_checkpoint, load_checkpoint
    from pixelcam.storage import Location
    from tests.checkpoints import random_checkpoint

    run = tmp_path / "run"
    random_checkpoint(run / "epoch_000", "cam", selection="b-loc")
    (run / "epoch_000" / "optim.pt").write_bytes(b"optimizer state")
    sel = {"checkpoint": "epoch_000", "by_selection": {"b-loc": "epoch_000", "b-cl": "epoch_000"}}
    (run / "selected.json").write_text(json.dumps(sel))
    pafs.copy_files(str(run), "s3://lab/ckpt-test/run")
    ck = load_checkpoint("s3://lab/ckpt-test/run")
    assert ck.path == Location("s3://lab/ckpt-test/run/epoch_000")
    assert ck.meta["method"] == "cam"
    assert set(ck.model_state) == set(create_wsol_model("cam", "resnet10t").state_dict())
    path, how = baseline_checkpoint("s3://lab/ckpt-test/run", "b-cl")
    assert path == ck.path and how == "b-cl of run run"
