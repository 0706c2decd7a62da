"""The paper's rows in one study, through `pixelcam study run` on a real local Ray and a real MLflow store:
the CAM baseline, CAM w/ NEGEV and CAM w/ PixelCAM, with their paired t-tests in the console, the dashboard
and MLflow, and the U-Net upper bound (trained on the masks, printed beside its published value). The study
is stored on the test S3 server; its trials train in their Tune actors, which write their checkpoints to the
bucket themselves. It searches nothing and has two seeds, as the quickstart: its other seed trains in the
tune step's two waves beside the tuned runs (the baselines' seeds in the baselines' wave, NEGEV's and
PixelCAM's on their baseline *of the same seed* in the next), the seeds step finds them done, and the results
are those of every seed. The multi-worker path of a study on object storage (a trial of two DDP workers whose
rank 0 writes to the bucket) is the smaller study below."""

import csv
import io
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
pixelcam: true
negev: true
backbone: resnet10t
budget: {{trials: 1, epochs: 1, grace_period: 1}}
resources: {{workers: 1}}
train: {{resize: 64, crop: 64, batch_size: 16, lr: 0.01}}
seeds: [0, 1]
method_train: {{negev: {{n: 1, seed_dilation: 3, crf_weight: 2.0e-9, crf_scale: 0.5}}}}
storage: {storage}
published:
  source: a test's own figures
  unet:
    pxap: {{synth-colon->synth-colon: 95.8}}
"""


@scenario("tmp_path_factory", "synth_dir", "environment")
def unet_study(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, environment: dict) -> tuple:
    """The study, run in its own process from when the run begins (about a minute, half of it waiting)."""
    return run_on_s3(tmp_path_factory.mktemp("upper"), SPEC, synth_dir, environment)


def run_on_s3(root: Path, spec_text: str, synth_dir: Path, environment: dict) -> tuple:
    """`pixelcam study run` of `spec_text` stored under the test bucket, its MLflow store in `root`;
    returns (root, the storage URI, the finished process)."""
    spec = root / "study.yaml"
    storage = f"s3://lab/{root.name}/studies"
    spec.write_text(spec_text.format(data=synth_dir, storage=storage))
    env = {**environment, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'm.db'}"}
    cmd = [sys.executable, "-m", "pixelcam.cli", "study", "run", str(spec)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=root)
    return root, storage, res


unet_study_fixture = scenario_fixture("unet_study")

DDP_SPEC = """\
name: ddp
data: {data}
sources: [synth-colon]
targets: [synth-colon]
methods: [cam]
pixelcam: false
backbone: resnet10t
budget: {{trials: 1, epochs: 1, grace_period: 1}}
resources: {{workers: 2, cpus_per_worker: 0.5}}
train: {{resize: 32, crop: 32, batch_size: 16, lr: 0.01, eval_size: 32}}
storage: {storage}
"""


@scenario("tmp_path_factory", "synth_dir", "environment")
def ddp_study(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, environment: dict) -> tuple:
    """The smallest study whose trial is a Ray Train run of two DDP workers, stored on the test S3 server:
    the multi-worker path of a study on object storage, on its own (the paper's rows above train in one
    process each: four DDP runs cost 2.9x the CPU of the whole study for no other coverage)."""
    return run_on_s3(tmp_path_factory.mktemp("ddp"), DDP_SPEC, synth_dir, environment)


ddp_study_fixture = scenario_fixture("ddp_study")


@pytest.mark.e2e
def test_a_study_trial_of_two_ddp_workers_writes_its_checkpoints_to_the_bucket(ddp_study: tuple):
    tmp_path, storage, res = ddp_study
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    study = Location(f"{storage}/ddp")
    rec = (study / "state.json").read_json()["experiments"]["synth-colon__cam"]
    assert rec["status"] == "ok" and rec["checkpoint"].startswith(f"{storage}/ddp/train/")
    assert (Location(rec["checkpoint"]) / "meta.json").read_json()["config"]["num_workers"] == 2
    (trial,) = (study / "train" / "synth-colon__cam").glob("trial-*")
    kept = [c for c in trial.glob("epoch_*") if (c / "model.pt").is_file()]  # written there by rank 0
    assert kept and (trial / "selected.json").is_file()
    cell = (study / "ood.json").read_json()["rows"][0]["cells"]["pxap"]["synth-colon"]
    assert 0 <= cell["mean"] <= 100 and cell["n"] == 1
    assert "(raylet)" not in res.stdout + res.stderr and "Traceback" not in res.stdout + res.stderr
    assert not (tmp_path / "studies").exists()  # nothing of the study on the local disk


@pytest.mark.e2e
def test_baseline_negev_pixelcam_and_unet_rows_in_a_study(unet_study: tuple):
    tmp_path, storage, res = unet_study
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    study = Location(f"{storage}/upper")
    ood = (study / "ood.json").read_json()
    text = json.dumps(ood)
    assert "unet" in text and "pixelcam-unet" not in text and "negev-unet" not in text  # WSOL baselines only
    rows = {(r["method"], r["source"]): r for r in ood["rows"]}
    assert [r["method"] for r in ood["rows"]] == ["cam", "unet", "negev-cam", "pixelcam-cam"]
    for label in ("cam", "negev-cam", "pixelcam-cam"):  # each with its cells (mean, CI fields, n)
        cell = rows[(label, "synth-colon")]["cells"]["pxap"]["synth-lymph"]
        assert 0 <= cell["mean"] <= 100 and cell["n"] == 2  # both seeds
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
    # nothing searched: the baselines trained as one wave (one Tune experiment), then NEGEV and PixelCAM on
    # the CAM baseline as another, each model in its own directory
    assert sorted(p.name for p in (study / "tune").iterdir()) == ["fixed-baselines", "fixed-pixelcam"]
    assert "training the fixed configuration of synth-colon__cam, synth-colon__unet" in res.stdout
    assert (
        "training the fixed configuration of synth-colon__negev-cam, synth-colon__pixelcam-cam" in res.stdout
    )
    # the paired t-tests: baseline vs NEGEV, baseline vs PixelCAM, NEGEV vs PixelCAM, per pairing
    assert "paired t-tests of the mean per-image PxAP (unit: image, df = images - 1" in res.stdout
    for pair in ("cam -> negev-cam", "cam -> pixelcam-cam", "negev-cam -> pixelcam-cam"):
        for target in ("synth-colon", "synth-lymph"):
            assert f"  {pair} on synth-colon -> {target}: per-image " in res.stdout, pair
    state = (study / "state.json").read_json()
    neg = state["experiments"]["synth-colon__negev-cam"]
    assert neg["status"] == "ok" and neg["checkpoint"].startswith(f"{storage}/upper/train/")
    meta = (Location(neg["checkpoint"]) / "meta.json").read_json()
    assert meta["method"] == "negev" and meta["config"]["seed_dilation"] == 3  # method_train.negev
    assert meta["config"]["crf_weight"] == 2e-9
    html = (study / "dashboard.html").read_text()
    assert "Baseline vs NEGEV vs PixelCAM" in html and "negev-cam" in html
    import html as html_lib

    from pixelcam.metrics.aggregate import cell_text

    page = html_lib.unescape(html)
    for label in ("cam", "negev-cam", "pixelcam-cam"):  # the three rows, mean ± CI over both seeds, alike
        for target, cell in rows[(label, "synth-colon")]["cells"]["pxap"].items():
            text = cell_text(cell["mean"], cell["half_width"], cell["n"])
            assert "±" in text and text in res.stdout and f">{text}" in page, (label, target, text)
    from mlflow.tracking import MlflowClient

    ml = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    parent = ml.search_runs(
        [ml.get_experiment_by_name("pixelcam-study-upper").experiment_id], "tags.kind = 'study'"
    )[0]
    metrics = parent.data.metrics  # the parent's summary: mean over seeds and n per model and pairing
    for label in ("cam", "negev-cam", "pixelcam-cam"):
        assert f"{label}__pxap__synth-colon__to__synth-lymph" in metrics
        assert metrics[f"{label}__pxap_n__synth-colon__to__synth-lymph"] == 2
        assert metrics[f"{label}__pxap_ci95__synth-colon__to__synth-lymph"] == pytest.approx(
            rows[(label, "synth-colon")]["cells"]["pxap"]["synth-lymph"]["half_width"]
        )
    assert "paired_tests.json" in {a.path for a in ml.list_artifacts(parent.info.run_id)}
    # steps with nothing to do say why on their line, instead of an empty step
    assert "== step 4/6: stain (skipped: the spec has no stain_shift section)" in res.stdout
    for key in ("synth-colon__cam", "synth-colon__unet"):
        (trial,) = (study / "train" / key).glob("trial-*")
        kept = [c for c in trial.glob("epoch_*") if (c / "model.pt").is_file()]  # written there
        assert kept and (trial / "selected.json").is_file()
    assert not (tmp_path / "studies").exists()  # nothing of the study on the local disk


@pytest.mark.e2e
def test_a_fixed_studys_seeds_train_beside_its_tuned_runs(unet_study: tuple):
    tmp_path, storage, res = unet_study
    out = res.stdout
    assert res.returncode == 0, out[-3000:] + res.stderr[-3000:]
    study = Location(f"{storage}/upper")
    # two waves (one Tune experiment each), no third and fourth for the seeds
    assert sorted(p.name for p in (study / "tune").iterdir()) == ["fixed-baselines", "fixed-pixelcam"]
    for label in ("cam", "unet", "negev-cam", "pixelcam-cam"):
        assert f"[synth-colon__{label}] retraining the selected configuration with seeds [1]" in out, label
    assert "== step 2/6: seeds (skipped: every seed was trained beside the tuned runs" in out
    state = (study / "state.json").read_json()
    seeds = state["seeds"]
    labels = ("cam", "unet", "negev-cam", "pixelcam-cam")
    assert {k: v["status"] for k, v in seeds.items()} == {f"synth-colon__{x}@seed1": "ok" for x in labels}
    # NEGEV and PixelCAM of seed 1 learned from the CAM baseline of seed 1, seed 0's from seed 0's (tuned run)
    cam1 = seeds["synth-colon__cam@seed1"]["checkpoint"]
    cam0 = state["experiments"]["synth-colon__cam"]["checkpoint"]
    for label in ("negev-cam", "pixelcam-cam"):
        one = (Location(seeds[f"synth-colon__{label}@seed1"]["checkpoint"]) / "meta.json").read_json()
        assert one["config"]["seed"] == 1 and one["config"]["pseudo_labels_from"] == cam1, label
        zero = (
            Location(state["experiments"][f"synth-colon__{label}"]["checkpoint"]) / "meta.json"
        ).read_json()
        assert zero["config"]["seed"] == 0 and zero["config"]["pseudo_labels_from"] == cam0, label
    # in MLflow: the tuned runs as trials, the other seeds as seed runs, every one finished
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    kinds = sorted((r.data.tags["kind"], r.data.tags.get("seed", "0"), r.info.status) for r in runs)
    assert [k for k in kinds if k[0] in ("trial", "seed")] == [("seed", "1", "FINISHED")] * 4 + [
        ("trial", "0", "FINISHED")
    ] * 4
    # the results are over both seeds
    rows = list(csv.DictReader(io.StringIO((study / "ood.csv").read_text())))
    assert {r["seed"] for r in rows} == {"0", "1", "all"}
