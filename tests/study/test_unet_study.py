"""The U-Net upper bound as a model row of a study, through `pixelcam study run` on a real local Ray and a
real MLflow store: trained on the masks, evaluated on both targets, printed beside its published value. The
study is stored on the test S3 server and its trials are Ray Train runs of two DDP workers, which write
their checkpoints to the bucket themselves (the multi-worker path of a study on object storage)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pixelcam.storage import Location
from tests.shared import scenario, scenario_fixture

SPEC = """\
name: upper
data: {data}
sources: [synth-colon]
targets: [synth-colon, synth-lymph]
methods: [cam, unet]
pixelcam: false
backbone: resnet10t
budget: {{trials: 1, epochs: 1, grace_period: 1}}
resources: {{workers: 2, cpus_per_worker: 0.5}}
train: {{resize: 64, crop: 64, batch_size: 16, lr: 0.01}}
storage: {storage}
published:
  source: a test's own figures
  unet:
    pxap: {{synth-colon->synth-colon: 95.8}}
"""


@scenario("tmp_path_factory", "synth_dir", "environment")
def unet_study(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, environment: dict) -> tuple:
    """The study, run in its own process from when the run begins (about a minute, half of it waiting)."""
    root = tmp_path_factory.mktemp("upper")
    spec = root / "upper.yaml"
    storage = f"s3://lab/{root.name}/studies"
    spec.write_text(SPEC.format(data=synth_dir, storage=storage))
    env = {**environment, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'm.db'}"}
    cmd = [sys.executable, "-m", "pixelcam.cli", "study", "run", str(spec)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=root)
    return root, storage, res


unet_study_fixture = scenario_fixture("unet_study")


@pytest.mark.e2e
def test_unet_row_in_a_study(unet_study: tuple):
    tmp_path, storage, res = unet_study
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    study = Location(f"{storage}/upper")
    ood = (study / "ood.json").read_json()
    text = json.dumps(ood)
    assert "unet" in text and "pixelcam-unet" not in text
    rows = {(r["method"], r["source"]): r for r in ood["rows"]}
    unet = rows[("unet", "synth-colon")]  # evaluated on the test splits, in-domain and out of domain
    assert set(unet["cells"]["pxap"]) == {"synth-colon", "synth-lymph"} == set(unet["cells"]["cl"])
    assert all(0 <= c["mean"] <= 100 for c in unet["cells"]["pxap"].values())
    # (how well it localizes is tested on enough images in tests/models/test_unet.py)
    assert "95.8" in res.stdout  # its published value printed beside ours
    # the console is the study's own: none of Ray's or MLflow's internals
    console = res.stdout + res.stderr
    for internal in (
        "(raylet)",
        "core_worker",
        "Execution plan",
        "TensorBoard",
        "Creating initial MLflow",
        "Traceback",
    ):
        assert internal not in console, internal
    # nothing searched: both models trained as one wave (one Tune experiment), each in its own directory
    assert [p.name for p in (study / "tune").iterdir()] == ["fixed-baselines"]
    assert "training the fixed configuration of synth-colon__cam, synth-colon__unet" in res.stdout
    # steps with nothing to do say why on their line, instead of an empty step
    skipped = "== step 2/6: seeds (skipped: the spec lists no seed besides the study's own (`seeds`))"
    assert skipped in res.stdout
    assert "== step 4/6: stain (skipped: the spec has no stain_shift section)" in res.stdout
    for key in ("synth-colon__cam", "synth-colon__unet"):
        (trial,) = (study / "train" / key).glob("trial-*")
        kept = [c for c in trial.glob("epoch_*") if (c / "model.pt").is_file()]  # written by rank 0 there
        assert kept and (trial / "selected.json").is_file()
    assert not (tmp_path / "studies").exists()  # nothing of the study on the local disk
