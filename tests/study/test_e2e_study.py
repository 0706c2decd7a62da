"""A tiny study end to end on a real local Ray instance and a real MLflow store, stored on an S3 protocol
server (written there directly: nothing of it on the local disk): the driver is interrupted (SIGINT) in
the second experiment's trials, `pixelcam study resume s3://...` finishes it from the bucket, and the
MLflow records and the bucket's contents are read back."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from mlflow.tracking import MlflowClient
from scipy import stats

from pixelcam.cli import main
from pixelcam.data import open_dataset
from pixelcam.data.png import decode_mask
from pixelcam.results import PRIOR_LABEL
from pixelcam.storage import Location
from tests.tiny_study import SPEC, TinyStudy

pytestmark = pytest.mark.e2e


def test_an_interrupted_study_stops_records_interrupted_and_resumes(tiny_study: TinyStudy):
    """Ctrl-C in the PixelCAM experiment's trials: exit 130 with one line saying what was kept and how to
    continue; the cut experiment recorded `interrupted` (never `ok`), the finished one kept; no process of
    the study outlives it; `study resume` reruns the cut experiment (each trial once, checked below)."""
    out = tiny_study.interrupt_output
    assert tiny_study.interrupt_returncode == 130, out[-3000:]
    line = (
        "pixelcam: interrupted (Ctrl-C); finished trials and steps are kept; continue with: "
        f"pixelcam study resume {tiny_study.stored}"
    )
    assert out.rstrip().endswith(line) and "Traceback" not in out, out[-3000:]
    exps = tiny_study.interrupted_state["experiments"]
    assert exps["synth-colon__cam"]["status"] == "ok"
    assert exps["synth-colon__pixelcam-cam"]["status"] == "interrupted"
    assert "study resume" in exps["synth-colon__pixelcam-cam"]["reason"]
    steps = tiny_study.interrupted_state["steps"]
    assert "tune" not in steps and "ood" not in steps  # it stopped: no later step ran on a cut model
    assert tiny_study.left_after_interrupt == 0
    # a first resume was SIGKILLed (a crash) while it ran the restored trials: still `interrupted`, the last
    # resume restores the experiment again and completes it
    killed = (tiny_study.root / "killed-resume.log").read_text()
    assert "[synth-colon__pixelcam-cam] restoring the Tune experiment" in killed and "epoch " in killed
    resumed = tiny_study.resume_output
    assert "[synth-colon__pixelcam-cam] restoring the Tune experiment" in resumed
    assert (tiny_study.study_dir / "state.json").read_json()["experiments"]["synth-colon__pixelcam-cam"][
        "status"
    ] == "ok"


def test_study_resumed_and_recorded(tiny_study: TinyStudy):
    study_dir, uri, out = tiny_study.study_dir, tiny_study.uri, tiny_study.resume_output
    cam_trials_before = tiny_study.cam_trials_before_kill
    assert len(cam_trials_before) == 2
    assert tiny_study.resume_returncode == 0, out[-3000:]
    assert "[synth-colon__cam] done earlier" in out
    # the console shows the study's own progress, not Ray's internals (those stay in Ray's session logs)
    assert "== step 1/6: tune" in out and "Ray's own logs" in out
    assert "epoch 2/2" in out and "Execution plan" not in out and "tensorboard" not in out.lower()
    assert "(pid=" not in out and "RayTrainWorker" not in out
    assert "MLflow: pixelcam ui --experiment pixelcam-study-tiny" in out
    assert f"dashboard: {study_dir / 'dashboard.html'}" in out
    client = MlflowClient(uri)
    # nothing of the study on the local disk: the working directory holds the spec, the two commands' logs
    # and the MLflow store (tracking, not storage) only; no staged copy anywhere
    assert {p.name for p in tiny_study.root.iterdir()} == {
        "tiny.yaml",
        "run.log",
        "resume.log",
        "killed-resume.log",
        "mlflow.db",
        "mlartifacts",
    }
    assert not Path(tempfile.gettempdir(), "pixelcam-stage").exists()

    matrix = (study_dir / "ood.json").read_json()
    rows = {r["method"]: r for r in matrix["rows"]}
    assert set(rows) == {"cam", "pixelcam-cam"}
    for row in rows.values():
        assert set(row["cells"]["pxap"]) == {"synth-colon", "synth-lymph"}
        assert 0 < row["cells"]["pxap"]["synth-lymph"]["mean"] <= 100
    csv_rows = list(csv.DictReader(io.StringIO((study_dir / "ood.csv").read_text())))
    assert len(csv_rows) == 2 * 2 * 3  # 2 models x 2 targets x (seed 0, seed 1, all)
    # seeds [0, 1]: seed 0 is the tuned run; seed 1 retrains cam, then PixelCAM on cam *of seed 1*
    state = (study_dir / "state.json").read_json()
    assert set(state["seeds"]) == {"synth-colon__cam@seed1", "synth-colon__pixelcam-cam@seed1"}
    # each step's wall time, summed over the interrupted run and the resumes (training dominates)
    seconds = {name: step["seconds"] for name, step in state["steps"].items()}
    assert seconds["tune"] > seconds["dashboard"] > 0 and seconds["seeds"] > 0, seconds
    # as two waves (one Tune experiment each: the baselines' seeds, then PixelCAM's on them), whose Tune
    # state Tune keeps in the bucket itself
    stored = bucket_files(tiny_study.stored)
    assert sorted({k.split("/")[1] for k in stored if k.startswith("tune/seeds-")}) == [
        "seeds-baselines",
        "seeds-pixelcam",
    ]
    assert f"study directory: {tiny_study.stored}" in out
    pc1 = (
        Location(state["seeds"]["synth-colon__pixelcam-cam@seed1"]["checkpoint"]) / "meta.json"
    ).read_json()
    assert pc1["config"]["seed"] == 1
    # the bucket holds the study: spec, state, results, and every model's run pruned to its B-LOC and B-CL
    # checkpoints with the weights, written there by the trials
    assert {"spec.yaml", "state.json", "ood.json", "ood.csv", "stain.json", "dashboard.html"} <= set(stored)
    assert json.loads(stored["state.json"]) == state
    for rec in [*state["experiments"].values(), *state["seeds"].values()]:
        run = Location(rec["checkpoint"]).parent.relative_to(study_dir)
        kept = {k.split("/")[-2] for k in stored if k.startswith(f"{run}/epoch_") and k.endswith("model.pt")}
        assert (
            1 <= len(kept) <= 2 and f"{run}/selected.json" in stored and f"{run}/pixelcam_run.json" in stored
        )
        assert f"{Location(rec['checkpoint']).relative_to(study_dir)}/optim.pt" in stored
    assert pc1["config"]["pseudo_labels_from"] == state["seeds"]["synth-colon__cam@seed1"]["checkpoint"]
    for row in rows.values():
        for t in ("synth-colon", "synth-lymph"):
            cell = row["cells"]["pxap"][t]
            values = cell["values"]
            assert cell["seeds"] == [0, 1] and cell["study_seed_value"] == values[0] and len(values) == 2
            ref = stats.t.interval(0.95, 1, loc=np.mean(values), scale=stats.sem(values))  # scipy's
            assert cell["mean"] == pytest.approx(np.mean(values)) and cell["n"] == 2
            assert cell["mean"] + cell["half_width"] == pytest.approx(ref[1])
            agg = next(
                r for r in csv_rows if (r["method"], r["target"], r["seed"]) == (row["method"], t, "all")
            )  # the CSV's aggregate row holds the same figures
            assert float(agg["pxap"]) == pytest.approx(cell["mean"], abs=1e-4) and agg["n"] == "2"
            assert float(agg["pxap_ci95"]) == pytest.approx(cell["half_width"], abs=1e-4)
    assert "± " in out  # the printed OOD table shows mean ± CI

    exps = [e.experiment_id for e in client.search_experiments()]
    parents = client.search_runs(exps, "tags.kind = 'study'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0].info.run_id
    summary = parents[0].data.metrics  # the parent run: mean, CI half-width and n of every cell
    for method, row in rows.items():
        for metric in ("pxap", "cl"):
            for t, cell in row["cells"][metric].items():
                key = f"{method}__{metric}__synth-colon__to__{t}"
                assert (
                    summary[key] == pytest.approx(cell["mean"])
                    and summary[f"{method}__{metric}_n__synth-colon__to__{t}"] == 2
                )
                assert summary[f"{method}__{metric}_ci95__synth-colon__to__{t}"] == pytest.approx(
                    cell["half_width"]
                )
    children = client.search_runs(exps, f"tags.mlflow.parentRunId = '{parent}'")
    trials = [r for r in children if r.data.tags.get("kind") == "trial"]
    cam_trials = [r for r in trials if r.data.tags["experiment_key"] == "synth-colon__cam"]
    assert {r.data.tags["trial_id"] for r in cam_trials} == cam_trials_before and len(
        cam_trials
    ) == 2  # not rerun
    assert len({r.data.tags["trial_id"] for r in trials}) == len(trials)  # no duplicate runs
    assert {float(r.data.params["lr"]) for r in cam_trials} == {1e-3, 3e-2}  # the grid: each value once
    assert all(
        r.data.tags["method"] in ("cam", "pixelcam") and r.data.tags["source"] == "synth-colon"
        for r in trials
    )
    assert {r.info.experiment_id for r in children} == {parents[0].info.experiment_id}  # nested in the UI
    running = [(r.info.run_name, dict(r.data.tags)) for r in children if r.info.status == "RUNNING"]
    assert not running
    assert all(e["trials_failed"] == 0 for e in state["experiments"].values())
    for r in trials:  # no trial failed in Tune: ASHA-stopped runs are KILLED, complete ones FINISHED
        epochs = {m.step for m in client.get_metric_history(r.info.run_id, "valpx_pxap")}
        assert r.info.status == ("FINISHED" if len(epochs) == 2 else "KILLED"), (r.data.tags, r.info.status)
    seed_runs = [r for r in children if r.data.tags.get("kind") == "seed"]
    assert sorted((r.data.tags["method_label"], r.data.tags["seed"], r.info.status) for r in seed_runs) == [
        ("cam", "1", "FINISHED"),
        ("pixelcam-cam", "1", "FINISHED"),
    ]
    all_evals = [r for r in children if r.data.tags.get("kind") == "evaluation"]
    assert sorted((r.data.tags["method"], r.data.tags["seed"]) for r in all_evals) == [
        ("cam", "0"),
        ("cam", "1"),
        ("pixelcam-cam", "0"),
        ("pixelcam-cam", "1"),
    ]
    evals = {r.data.tags["method"]: r for r in all_evals if r.data.tags["seed"] == "0"}
    assert set(evals) == {"cam", "pixelcam-cam"}
    for method, run in evals.items():
        m = run.data.metrics
        assert m["pxap__synth-colon__to__synth-lymph"] == pytest.approx(
            rows[method]["cells"]["pxap"]["synth-lymph"]["study_seed_value"]
        )
        assert "cl__synth-colon__to__synth-colon" in m
    artifacts = {a.path for a in client.list_artifacts(parent)}
    assert {
        "study_spec.yaml",
        "dataset_manifest.json",
        "environment.json",
        "ood.json",
        "ood.csv",
    } <= artifacts
    assert {"stain.json", "stain.csv", "stain_table.txt", "dashboard"} <= artifacts
    pngs = {a.path for a in client.list_artifacts(parent, "dashboard")}
    assert {"dashboard/ood.png", "dashboard/stain-shift.png", "dashboard/index.html"} <= pngs
    for run in evals.values():
        assert {"details", "gallery", "evaluation.json"} <= {
            a.path for a in client.list_artifacts(run.info.run_id)
        }
    sweeps = (study_dir / "stain.json").read_json()
    assert {(r["label"], r["domain"], r["reference"]) for r in sweeps} == {
        ("cam", "synth-colon", "synth-lymph"),
        ("pixelcam-cam", "synth-colon", "synth-lymph"),
    }
    for rep in sweeps:  # level 0 is the unshifted test split: the OOD matrix's in-domain cell
        assert [r["level"] for r in rep["rows"]] == [0, 1, 2]
        own = rows[rep["label"]]["cells"]["pxap"]["synth-colon"]["study_seed_value"]
        assert rep["rows"][0]["pxap"] == pytest.approx(own)
    stain_runs = {r.data.tags["method"]: r for r in children if r.data.tags.get("kind") == "stain_sweep"}
    assert set(stain_runs) == {"cam", "pixelcam-cam"}
    hist = client.get_metric_history(
        stain_runs["cam"].info.run_id, "stain_pxap__synth-colon__to__synth-colon"
    )
    assert sorted(m.step for m in hist) == [0, 1, 2]
    some_trial = trials[0]
    assert "valpx_pxap" in some_trial.data.metrics and "lr" in some_trial.data.params


def test_the_console_and_dashboard_show_the_ood_steps_aggregates(tiny_study: TinyStudy):
    """One aggregation path (issue 28): every cell of the printed table and of the dashboard is the OOD
    matrix's mean ± CI over the two seeds (which differ), the figures `ood.csv` and the parent run hold
    (checked against scipy above); no seed-0 value is shown in their place."""
    import html

    from pixelcam.environment import describe
    from pixelcam.metrics.aggregate import cell_text
    from pixelcam.results import OODMatrix

    matrix = OODMatrix.from_json((tiny_study.study_dir / "ood.json").read_json())
    page = html.unescape((tiny_study.study_dir / "dashboard.html").read_text())
    console = tiny_study.resume_output
    cells = [c for row in matrix.rows for by_target in row.cells.values() for c in by_target.values()]
    assert len(cells) == 2 * 2 * 2 and all(c.n == 2 for c in cells)
    assert any(c.values[0] != c.values[1] for c in cells)  # the seeds differ: mean != seed 0
    for c in cells:
        text = cell_text(c.mean, c.half_width, c.n)
        assert text in console and f">{text}<" in page, text
    assert "mean ± 95 % CI over 2 seeds" in console and "mean ± 95 % CI over 2 seeds" in page
    env = (tiny_study.study_dir / "environment.json").read_json()  # the fingerprint, on the dashboard too
    assert f"environment: {describe(env)}" in page
    for row in matrix.rows:  # a model flagged near chance is marked in both tables
        assert (f"{row.method} <- {row.source} !" in console) == bool(row.near_chance)
        assert (f">{row.method} <- {row.source} !<" in page) == bool(row.near_chance)
    # the floor of every PxAP column, the same in every surface: the ROI's share of the test pixels at the
    # evaluation size (masks nearest to 224 x 224, as wsolevaluation scores them), computed here from the data
    data = open_dataset(yaml.safe_load((tiny_study.study_dir / "spec.yaml").read_text())["data"])
    prior_line = next(line for line in console.splitlines() if line.startswith(PRIOR_LABEL))
    parent_id = (tiny_study.study_dir / "state.json").read_json()["parent_run_id"]
    parent = MlflowClient(tiny_study.uri).get_run(parent_id).data.metrics
    for t in ("synth-colon", "synth-lymph"):
        masks = [decode_mask(m) for m in data.read_table([t], ["test"], columns=["mask"])["mask"].to_pylist()]
        at_224 = [F.interpolate(torch.tensor(m)[None, None].float(), size=224, mode="nearest") for m in masks]
        ref = 100 * float(torch.cat(at_224).double().mean())
        assert matrix.roi_prior[t] == pytest.approx(ref, abs=1e-6)
        text = f"{matrix.roi_prior[t]:.2f}"
        assert text in prior_line.split() and f">{text}<" in page
        assert parent[f"roi_prior__{t}"] == pytest.approx(matrix.roi_prior[t])


def bucket_files(uri: str) -> dict[str, bytes]:
    """{path under `uri`: bytes} of every object under `uri` (directory markers left out)."""
    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri(uri)
    out = {}
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(info.path) as f:
                out[info.path[len(root) + 1 :]] = f.read() if info.size < 1 << 20 else b""
    return out


def test_unschedulable_study_fails_at_once(
    tmp_path: Path, synth_dir: Path, local_ray: None, capsys: pytest.CaptureFixture
):
    """A study whose trials need 4 GPUs, on this machine's local Ray (none): refused before anything is
    written, by `pixelcam study run` in this process on the session's Ray (`tests/conftest.py`)."""
    spec = tmp_path / "big.yaml"
    spec.write_text(
        SPEC.format(data=synth_dir, storage=tmp_path / "s").replace(
            "workers: 1", "workers: 4, gpus_per_worker: 1"
        )
    )
    assert main(["study", "run", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "a trial needs" in err and "GPU: 4" in err and "GPU: 0" in err
    assert len(err.strip().splitlines()) == 1, err  # one line
    assert not (tmp_path / "s").exists()  # refused before its directory (or any training) was made
