"""End to end on a real local Ray instance (2 CPUs, 2 Train workers), real Parquet files, a real MLflow store.

The CAM baseline on Ray Train with 2 DDP workers, one of which is killed after the first epoch (replaced,
the run continuing from its latest checkpoint with every epoch logged once) -> PixelCAM from its B-LOC
checkpoint, through the CLI and an MLflow run id -> evaluation on both synthetic domains, MLflow runs read
back; a run interrupted after one epoch and resumed (`--resume`) equals an uninterrupted run of the same seed;
a single worker runs in-process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from pixelcam.cli import main
from pixelcam.config import TrainConfig
from pixelcam.train.runner import train

pytestmark = pytest.mark.e2e

CONFIG = """\
method: cam
backbone: resnet10t
source: synth-colon
resize: 64
crop: 56
epochs: 2
batch_size: 8
lr: 0.01
seed: 5
num_workers: 2
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, local_ray: None):
    root = tmp_path_factory.mktemp("e2e")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    (root / "train.yaml").write_text(CONFIG + f"data: {synth_dir}\nstorage: {root / 'runs'}\n")
    return {"root": root, "config": root / "train.yaml", "uri": uri, "data": synth_dir}


@pytest.fixture(autouse=True)
def _tracking(env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["uri"])  # the module's store, not the per-test default


BASELINE_EPOCHS = 4


@pytest.fixture(scope="module")
def baseline(env) -> Path:
    """The DDP baseline; a Train worker is SIGKILLed once the first epoch's checkpoint exists."""
    cfg = TrainConfig.from_dict(yaml.safe_load(env["config"].read_text()))
    cfg = cfg.replace(name="cam", epochs=BASELINE_EPOCHS)
    run_dir = Path(cfg.storage) / "cam"
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", train(cfg)))
    thread.start()
    victim = None
    deadline = time.time() + 240
    while victim is None and time.time() < deadline and thread.is_alive():
        if (run_dir / "epoch_000").is_dir():
            workers = [p for p in psutil.Process().children(recursive=True) if _is_train_worker(p)]
            if workers:
                victim = workers[0]
                victim.send_signal(signal.SIGKILL)
        time.sleep(0.2)
    thread.join(timeout=300)
    assert victim is not None, "no Train worker process was found to kill"
    assert "r" in result, "the run did not finish"
    return run_dir


@pytest.fixture(scope="module")
def warm(env):
    """An uninterrupted single-worker run (in-process) whose epochs before 1 are not selectable."""
    cfg = TrainConfig.from_dict(yaml.safe_load(env["config"].read_text()))
    return train(cfg.replace(name="warm", epochs=2, select_from_epoch=1, num_workers=1))


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_baseline_then_pixelcam_then_evaluation(env, baseline: Path, capsys):
    sel = json.loads((baseline / "selected.json").read_text())
    client = MlflowClient(env["uri"])
    run = client.get_run(sel["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["method"] == "cam" and run.data.tags["source"] == "synth-colon"
    assert run.data.tags["backbone"] == "resnet10t"
    manifest = json.loads((env["data"] / "manifest.json").read_text())
    assert run.data.params["dataset_hash"] == manifest["hash"] and run.data.params["lr"] == "0.01"
    pxap = history(client, run.info.run_id, "valpx_pxap")
    # the killed worker was replaced and the run continued from its latest checkpoint: every epoch once
    assert [s for s, _ in pxap] == list(range(BASELINE_EPOCHS))
    best = max(pxap, key=lambda sv: (sv[1], sv[0]))  # B-LOC: best valpx PxAP, latest on ties
    assert sel["epoch"] == best[0] and sel["metrics"]["valpx_pxap"] == pytest.approx(best[1])
    assert run.data.metrics["selected_valpx_pxap"] == pytest.approx(best[1])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "cam_overlays")}
    assert artifacts == {f"cam_overlays/epoch_{e:03d}.png" for e in range(BASELINE_EPOCHS)}
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
        "config.yaml",
        "dataset_manifest.json",
    }
    assert 0.0 <= sel["tau"] < 1.0
    # the run keeps exactly its B-LOC and B-CL bests (PixelCAM may use either), every other epoch pruned
    assert set(sel["by_selection"]) == {"b-loc", "b-cl"} and sel["by_selection"]["b-loc"] == sel["checkpoint"]
    cl = history(client, run.info.run_id, "valcl_cl")
    best_cl = max(cl, key=lambda sv: (sv[1], sv[0]))  # ties: the latest epoch (checkpoint_ties)
    assert sel["by_selection"]["b-cl"] == f"epoch_{best_cl[0]:03d}"
    assert {p.name for p in baseline.glob("epoch_*")} == set(sel["by_selection"].values())

    # PixelCAM from the baseline run directory (its selected checkpoint), by MLflow run id as well
    assert (
        main(
            [
                "train",
                "pixelcam",
                "--config",
                str(env["config"]),
                "--name",
                "pixelcam",
                "--pseudo-labels-from",
                run.info.run_id,
                "--num-workers",
                "1",  # in-process (Ray Train DDP is the baseline's and the resumed run's)
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "selected epoch" in out and "checkpoint:" in out
    pc_dir = env["root"] / "runs" / "pixelcam"
    pc_sel = json.loads((pc_dir / "selected.json").read_text())
    pc_run = client.get_run(pc_sel["mlflow_run_id"])
    assert pc_run.data.tags["method"] == "pixelcam" and pc_run.data.params["lam"] == "1.0"
    assert all(v > 0 for _, v in history(client, pc_run.info.run_id, "pixel_ce"))
    # recorded with the run: where seeds were drawn, which baseline checkpoints gave CAMs and weights
    params = pc_run.data.params
    assert (params["seed_grid"], params["pseudo_labels_checkpoint"], params["init_from"]) == (
        "image",
        "b-loc",
        "b-cl",
    )
    assert (params["bg_sampling"], params["eval_size"]) == ("inverse", "224")
    # the protocol switches, each recorded with the run (defaults: the official code's)
    assert (params["eval_input"], params["threshold_criterion"], params["checkpoint_ties"]) == (
        "crop",
        "miou",
        "latest",
    )
    pc_meta = json.loads((pc_dir / pc_sel["checkpoint"] / "meta.json").read_text())
    assert pc_meta["init"]["parts"] == ["backbone", "head"]
    assert pc_meta["init"]["checkpoint"] == str((baseline / sel["by_selection"]["b-cl"]).resolve())

    # evaluation of both selected models on both domains' test splits
    for name, run_dir in (("cam", baseline), ("pixelcam", pc_dir)):
        out_json = env["root"] / f"{name}.json"
        assert (
            main(
                [
                    "evaluate",
                    "--checkpoint",
                    str(run_dir),
                    "--data",
                    str(env["data"]),
                    "--domains",
                    "synth-colon",
                    "synth-lymph",
                    "--json",
                    str(out_json),
                ]
            )
            == 0
        )
        report = json.loads(out_json.read_text())
        assert report["method"] == name and report["tau"] == pytest.approx(
            json.loads((run_dir / "selected.json").read_text())["tau"]
        )
        for domain in ("synth-colon", "synth-lymph"):
            row = report["results"][domain]
            assert 0 < row["pxap"] <= 100 and 0 <= row["cl"] <= 100
            assert row["tp_star"] + row["fn_star"] == pytest.approx(100)
    printed = capsys.readouterr().out
    assert "synth-lymph" in printed and "PxAP" in printed


def test_a_resumed_run_under_load_equals_an_uninterrupted_one(env, warm):
    """`--resume` of a run stopped after one epoch continues it: the same MLflow run, and the same values as
    the uninterrupted run epoch by epoch (its `select_from_epoch` changes which epoch it keeps, not its
    training), bit for bit although a CPU-bound process runs beside its resumed epoch (same machine, same
    seed: the numbers do not depend on the load)."""
    cfg = TrainConfig.from_dict(yaml.safe_load(env["config"].read_text())).replace(
        name="again", num_workers=1
    )
    first = train(cfg.replace(epochs=1))
    assert first.epoch == 0
    # at the lowest priority: it fills an idle core, and takes next to nothing from a suite that already
    # keeps both cores busy (its load is then the other tests')
    hogs = [subprocess.Popen([sys.executable, "-c", "import os; os.nice(19)\nwhile True: pass"])]
    try:
        resumed = train(cfg.replace(epochs=2), resume=True)  # continues at epoch 1, beside a busy core
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    client = MlflowClient(env["uri"])
    assert resumed.mlflow_run_id == first.mlflow_run_id  # the same MLflow run continued
    for key in ("loss", "valpx_pxap", "valcl_cl", "tau"):
        assert history(client, resumed.mlflow_run_id, key) == history(client, warm.mlflow_run_id, key), key
    assert client.get_run(resumed.mlflow_run_id).info.status == "FINISHED"


def test_local_executor_and_select_from_epoch(env, warm):
    """One worker runs in-process (no Ray Train actors); epochs before select_from_epoch are never selected
    nor checkpointed."""
    res = warm
    run_dir = Path(env["root"]) / "runs" / "warm"
    assert res.epoch == 1 and [p.name for p in run_dir.glob("epoch_*")] == ["epoch_001"]
    client = MlflowClient(env["uri"])
    assert [s for s, _ in history(client, res.mlflow_run_id, "valpx_pxap")] == [0, 1]  # both epochs logged
    assert client.get_run(res.mlflow_run_id).data.params["executor"] == "auto"
    assert client.get_run(res.mlflow_run_id).data.tags["train_input"] == "stream"  # auto on a CPU
    assert {"startup_workers_s", "startup_model_s", "startup_first_step_s"} <= set(
        client.get_run(res.mlflow_run_id).data.metrics
    )


def test_the_train_split_kept_on_the_device(env, capsys):
    """`train_input: device`: the shard is read once onto the worker's device (here the CPU) and each epoch
    is cropped, flipped and normalised there; the choice is a parameter and the path taken a tag."""
    cfg = TrainConfig.from_dict(yaml.safe_load(env["config"].read_text()))
    res = train(cfg.replace(name="resident", epochs=2, num_workers=1, train_input="device"))
    assert "train split kept on cpu" in capsys.readouterr().out
    client = MlflowClient(env["uri"])
    run = client.get_run(res.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["train_input"] == "device" and run.data.tags["train_input"] == "device"
    losses = history(client, res.mlflow_run_id, "loss")
    assert [s for s, _ in losses] == [0, 1] and all(0 < v < 10 for _, v in losses)
    assert 0 < run.data.metrics["valpx_pxap"] <= 100


def test_a_small_train_split_read_here_equals_the_distributed_read(env, monkeypatch: pytest.MonkeyPatch):
    """A train split under `READ_HERE_BYTES` is read by this process and handed to Ray Data (no footer-reader
    actors or read tasks); above it, `read_parquet` reads it. Decoded and cached, both give the same rows in
    the same order, masks included, in one block per file (what the workers are split by)."""
    import numpy as np

    import pixelcam.runtime.data as data
    from pixelcam.data import open_dataset

    ds = open_dataset(env["data"])
    here = data.train_dataset(ds, "synth-lymph", 32, cache=True, masks=True)
    monkeypatch.setattr(data, "READ_HERE_BYTES", 0)
    there = data.train_dataset(ds, "synth-lymph", 32, cache=True, masks=True)
    assert "FromArrow" in here.stats() and "ReadParquet" not in here.stats()
    assert "FromArrow" not in there.stats()
    assert here.num_blocks() == there.num_blocks() == 1
    rows, others = list(here.iter_rows()), list(there.iter_rows())
    assert len(rows) == sum(ds.counts("synth-lymph")["train"].values()) == len(others)
    for a, b in zip(rows, others, strict=True):
        assert a["image_id"] == b["image_id"] and a["label"] == b["label"]
        assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["mask"], b["mask"])


def _is_train_worker(p: psutil.Process) -> bool:
    """A Ray Train worker of this test's own Ray (it runs under this process), never another test's."""
    try:
        return "RayTrainWorker" in p.name() + " ".join(p.cmdline())
    except psutil.Error:  # gone meanwhile
        return False


def test_a_foundation_backbone_from_a_pinned_local_file(env, tmp_path: Path, capsys):
    """`pixelcam train baseline` on `timm:ARCH` with `backbone_weights`: the run starts from the file (at a
    learning rate too small to move them, the selected checkpoint's backbone is still the file's), records
    the file and its hash, and rebuilds without it; a wrong hash is refused in one line before Ray starts."""
    import hashlib

    import timm

    from pixelcam.runtime.checkpoint import load_checkpoint

    arch = "vit_tiny_patch16_224"  # a small stand-in for a pathology foundation ViT a lab has downloaded
    torch.manual_seed(1)
    state = timm.create_model(arch, pretrained=False, num_classes=0).state_dict()
    weights = tmp_path / "foundation.pth"
    torch.save(state, weights)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    cfg = yaml.safe_load(env["config"].read_text())
    cfg.update(backbone=f"timm:{arch}", epochs=1, num_workers=1, lr=1e-12, resize=32, crop=32)
    config = tmp_path / "vit.yaml"
    config.write_text(yaml.safe_dump({**cfg, "backbone_weights": {"path": str(weights), "sha256": "0" * 64}}))
    argv = [
        "train",
        "baseline",
        "--config",
        str(config),
        "--name",
        "vit",
        "--storage",
        str(tmp_path / "runs"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    pinned = "0" * 64
    line = f"{weights}: sha256 {sha}, expected {pinned} (backbone_weights.sha256): not the pinned file"
    assert err == [f"pixelcam: error: {line}"]
    assert not (tmp_path / "runs" / "vit").exists()

    config.write_text(yaml.safe_dump({**cfg, "backbone_weights": {"path": str(weights), "sha256": sha}}))
    assert main(argv) == 0
    ckpt = load_checkpoint(str(tmp_path / "runs" / "vit"))
    assert ckpt.meta["backbone"] == f"timm:{arch}"
    assert ckpt.meta["config"]["backbone_weights"] == {"path": str(weights), "sha256": sha}
    weights.unlink()  # the checkpoint carries its weights: the file is not needed to rebuild the model
    own = ckpt.build_model().backbone.model.state_dict()
    assert max((own[k] - v).abs().max().item() for k, v in state.items()) < 1e-6
