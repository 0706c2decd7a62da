"""NEGEV end to end through the CLI, on the session's trained CAM baseline (a real local Ray Data input, a
real MLflow store): `pixelcam train negev --pseudo-labels-from <the CAM run>` with every loss switched on,
then `pixelcam evaluate` of its selected checkpoint beside the baseline's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from pixelcam.cli import main
from pixelcam.runtime.checkpoint import load_checkpoint

pytestmark = pytest.mark.e2e

CONFIG = """\
backbone: resnet10t
source: synth-colon
resize: 64
crop: 64
epochs: 2
batch_size: 16
lr: 0.05
n: 1
seed_dilation: 3
neg_evidence_weight: 1.0
crf_weight: 2.0e-9
crf_scale: 0.5
size_weight: 0.01
"""


def test_negev_trains_on_a_baselines_seeds_and_keeps_its_classifier(
    trained, tmp_path: Path, capsys, local_ray: None
):
    cfg = tmp_path / "negev.yaml"
    cfg.write_text(CONFIG + f"data: {trained.data}\nstorage: {tmp_path / 'runs'}\n")
    baseline_run = str(Path(trained.cam.checkpoint).parent)  # the CAM run directory: its selected checkpoint
    args = ["train", "negev", "--config", str(cfg), "--name", "negev", "--pseudo-labels-from", baseline_run]
    assert main([*args, "--num-workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "selected epoch" in out and "checkpoint:" in out

    run = tmp_path / "runs" / "negev"
    sel = json.loads((run / "selected.json").read_text())
    ck = load_checkpoint(run / sel["checkpoint"])
    assert ck.method == "negev" and ck.meta["model_kwargs"]["baseline_method"] == "cam"
    # the classifier is the baseline's B-CL checkpoint, unchanged by training
    init = ck.meta["init"]
    base_sel = json.loads((Path(baseline_run) / "selected.json").read_text())
    assert init["checkpoint"].endswith(base_sel["by_selection"]["b-cl"]) and init["parts"] == [
        "backbone",
        "head",
    ]
    base = load_checkpoint(init["checkpoint"]).model_state
    state = ck.model_state
    assert all(torch.equal(state[f"classifier.{k}"], v) for k, v in base.items())

    # every switch recorded with the run; each loss term logged per epoch
    ml = MlflowClient()
    mlrun = ml.get_run(sel["mlflow_run_id"])
    params = mlrun.data.params
    assert (params["method"], params["seed_dilation"], params["crf_weight"]) == ("negev", "3", "2e-09")
    assert (params["neg_evidence_weight"], params["size_weight"], params["crf_scale"]) == (
        "1.0",
        "0.01",
        "0.5",
    )
    assert params["baseline_method"] == "cam"
    assert all(v > 0 for v in (m.value for m in ml.get_metric_history(mlrun.info.run_id, "pixel_ce")))

    out_json = tmp_path / "eval.json"
    argv = ["evaluate", "--checkpoint", str(run), "--data", str(trained.data), "--json", str(out_json)]
    assert main([*argv, "--domains", "synth-colon"]) == 0
    report = json.loads(out_json.read_text())
    assert report["method"] == "negev" and report["normalization"] == "none"
    row = report["results"]["synth-colon"]
    assert 0 < row["pxap"] <= 100 and 0 <= row["cl"] <= 100
    # its CL is the frozen baseline's: the same classifier on the same images
    base_json = tmp_path / "base.json"
    argv = [
        "evaluate",
        "--checkpoint",
        init["checkpoint"],
        "--data",
        str(trained.data),
        "--json",
        str(base_json),
    ]
    assert main([*argv, "--domains", "synth-colon"]) == 0
    assert json.loads(base_json.read_text())["results"]["synth-colon"]["cl"] == row["cl"]
