"""A study that searches nothing, with seeds (as the quickstart), through `pixelcam study run` on a real local
Ray and MLflow store: its other seeds train in the tune step's two waves beside the tuned runs (the baselines'
seeds in the baselines' wave, PixelCAM's on its baseline *of the same seed* in the next), the seeds step finds
them done, and the results are those of every seed."""

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pixelcam.storage import Location
from tests.shared import scenario, scenario_fixture

SPEC = """\
name: fixed
data: {data}
sources: [synth-colon]
targets: [synth-colon]
methods: [cam]
pixelcam: true
backbone: resnet10t
budget: {{trials: 1, epochs: 1, grace_period: 1, max_concurrent: 2}}
resources: {{workers: 1, cpus_per_worker: 0.5}}
train: {{resize: 32, crop: 32, batch_size: 16, lr: 0.01, eval_size: 32}}
seeds: [0, 1]
storage: {storage}
"""


@scenario("tmp_path_factory", "synth_dir", "environment")
def fixed_study(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, environment: dict) -> tuple:
    """The study, run in its own process from when the run begins."""
    root = tmp_path_factory.mktemp("fixed")
    spec = root / "fixed.yaml"
    spec.write_text(SPEC.format(data=synth_dir, storage=root / "studies"))
    env = {**environment, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'm.db'}"}
    cmd = [sys.executable, "-m", "pixelcam.cli", "study", "run", str(spec)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=root)
    return root, res


fixed_study_fixture = scenario_fixture("fixed_study")


@pytest.mark.e2e
def test_a_fixed_studys_seeds_train_beside_its_tuned_runs(fixed_study: tuple):
    root, res = fixed_study
    out = res.stdout
    assert res.returncode == 0, out[-3000:] + res.stderr[-3000:]
    study = Location(root / "studies" / "fixed")
    # two waves (one Tune experiment each), no third and fourth for the seeds
    assert sorted(p.name for p in (study / "tune").iterdir()) == ["fixed-baselines", "fixed-pixelcam"]
    assert "[synth-colon__cam] retraining the selected configuration with seeds [1]" in out
    assert "[synth-colon__pixelcam-cam] retraining the selected configuration with seeds [1]" in out
    assert "== step 2/6: seeds (skipped: every seed was trained beside the tuned runs" in out
    state = (study / "state.json").read_json()
    seeds = state["seeds"]
    assert {k: v["status"] for k, v in seeds.items()} == {
        "synth-colon__cam@seed1": "ok",
        "synth-colon__pixelcam-cam@seed1": "ok",
    }
    # PixelCAM of seed 1 learned from the CAM baseline of seed 1, seed 0's from seed 0's (the tuned run)
    pc1 = (Location(seeds["synth-colon__pixelcam-cam@seed1"]["checkpoint"]) / "meta.json").read_json()
    cam1 = seeds["synth-colon__cam@seed1"]["checkpoint"]
    assert pc1["config"]["seed"] == 1 and pc1["config"]["pseudo_labels_from"] == cam1
    pc0 = (
        Location(state["experiments"]["synth-colon__pixelcam-cam"]["checkpoint"]) / "meta.json"
    ).read_json()
    cam0 = state["experiments"]["synth-colon__cam"]["checkpoint"]
    assert pc0["config"]["seed"] == 0 and pc0["config"]["pseudo_labels_from"] == cam0
    # in MLflow: the tuned runs as trials, the other seeds as seed runs, every one finished
    client = MlflowClient(f"sqlite:///{root / 'm.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    kinds = sorted((r.data.tags["kind"], r.data.tags.get("seed", "0"), r.info.status) for r in runs)
    assert [k for k in kinds if k[0] in ("trial", "seed")] == [
        ("seed", "1", "FINISHED"),
        ("seed", "1", "FINISHED"),
        ("trial", "0", "FINISHED"),
        ("trial", "0", "FINISHED"),
    ]
    # the results are over both seeds
    rows = list(csv.DictReader(io.StringIO((study / "ood.csv").read_text())))
    assert {r["seed"] for r in rows} == {"0", "1", "all"}
