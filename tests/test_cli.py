"""The console script end to end, as a user runs it (real subprocesses, real files)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.data.ingest.fixtures import make_glas


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pixelcam.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_help_lists_subcommands():
    out = run("--help").stdout
    assert "data" in out
    out = run("data", "--help").stdout
    for sub in ("synth", "inspect", "preview", "ingest"):
        assert sub in out


def test_synth_inspect_preview(tmp_path: Path):
    r = run(
        "data", "synth", "--out", str(tmp_path / "ds"), "--per-class", "10", "--size", "64", "--seed", "1"
    )
    assert r.returncode == 0, r.stderr
    assert "wrote 40 images" in r.stdout
    r = run("data", "inspect", str(tmp_path / "ds"), "--verify")
    assert r.returncode == 0, r.stderr
    assert "domain synth-colon" in r.stdout and "valpx" in r.stdout and "64x64" in r.stdout
    r = run("data", "preview", str(tmp_path / "ds"), "--out", str(tmp_path / "grid.png"), "--per-class", "2")
    assert r.returncode == 0, r.stderr
    grid = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB"))
    assert grid.shape[0] > 200 and (grid == [0, 230, 0]).all(-1).sum() > 50  # tiles with green ROI outlines
    r = run("data", "synth", "--out", str(tmp_path / "ds"), "--per-class", "10")
    assert r.returncode == 2 and "already exists; pass --overwrite" in r.stderr


def test_ingest_errors_are_one_clear_line(tmp_path: Path):
    root = make_glas(tmp_path / "GlaS")
    (root / "train_4.bmp").write_bytes(b"corrupt")
    r = run("data", "ingest", "glas", "--root", str(root), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]  # progress lines (stderr is not a terminal) come before it
    assert last.startswith("pixelcam: error:") and "train_4.bmp: cannot decode image" in last
    assert sum("error:" in line for line in r.stderr.splitlines()) == 1
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()
    r = run("data", "inspect", str(tmp_path))
    assert r.returncode == 2 and "not a pixelcam dataset" in r.stderr


def test_a_study_with_an_experiment_without_a_model_exits_1(tmp_path: Path, capsys, monkeypatch):
    """`pixelcam study run/resume` end with `study_summary`: every experiment ok -> 0; any experiment whose
    trials all failed (or that was skipped for want of its baseline) -> 1, naming them."""
    from pixelcam.commands import study_summary

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    state = {"experiments": {"a__cam": {"status": "ok"}}, "parent_run_id": None, "steps": {}}
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert study_summary(tmp_path, "pixelcam-x") == 0
    out, err = capsys.readouterr()
    assert f"study directory: {tmp_path}" in out and "experiment pixelcam-x" in out and err == ""
    state["experiments"] |= {
        "a__deepmil": {"status": "failed", "errors": ["non-finite loss"]},
        "a__pixelcam-deepmil": {"status": "skipped", "reason": "baseline deepmil has no model"},
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert study_summary(tmp_path, "pixelcam-x") == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "pixelcam: error: no successful trial in 2 experiment(s): a__deepmil, a__pixelcam-deepmil"
    )


def test_masks_matched_by_the_slides_pattern_are_masks_not_slides(tmp_path: Path):
    from pixelcam.slide_commands import slide_paths

    for name in ("a.tif", "a_mask.tif", "b.tif", "b_mask.tif"):
        (tmp_path / name).write_bytes(b"x")
    slides, masks = slide_paths([str(tmp_path / "*.tif")], [str(tmp_path / "*_mask.tif")])
    assert [Path(s).name for s in slides] == ["a.tif", "b.tif"]
    assert [Path(m).name for m in masks] == ["a_mask.tif", "b_mask.tif"]
