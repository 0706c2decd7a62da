"""The driver's checks that run before Ray starts, and its pure helpers."""

from pathlib import Path

import pytest

from pixelcam.config import ConfigError, TrainConfig
from pixelcam.data import DatasetError
from pixelcam.models import create_wsol_model
from pixelcam.runtime.checkpoint import CheckpointError, save_checkpoint
from pixelcam.train.runner import TrainError, check_schedulable, train, worker_resources


def test_worker_resources_leave_a_cpu_to_ray_data():
    cfg = TrainConfig(num_workers=2)
    assert worker_resources(cfg, {"CPU": 2.0}) == {"CPU": 0.5}
    assert worker_resources(cfg, {"CPU": 16.0}) == {"CPU": 7.5}
    assert worker_resources(cfg.replace(cpus_per_worker=3.0), {"CPU": 16.0}) == {"CPU": 3.0}
    assert worker_resources(cfg.replace(use_gpu=True), {"CPU": 16.0, "GPU": 2.0}) == {"GPU": 1.0}


def test_unschedulable_fails_at_once_with_need_and_have():
    with pytest.raises(TrainError, match="GPU: needs 4, cluster has 1"):
        check_schedulable({"GPU": 1.0}, 4, {"CPU": 8.0, "GPU": 1.0})
    check_schedulable({"CPU": 0.5}, 2, {"CPU": 2.0})


def ckpt(tmp_path: Path, method: str, backbone: str = "resnet10t") -> Path:
    meta = {
        "method": method,
        "backbone": backbone,
        "pixel_head_depth": 1,
        "class_names": ["normal", "cancer"],
        "epoch": 0,
        "tau": 0.5,
        "metrics": {},
    }
    return save_checkpoint(tmp_path / method, create_wsol_model(method, backbone), meta)


def test_bad_inputs_fail_before_ray_starts(synth_dir: Path, tmp_path: Path):
    base = TrainConfig(data=str(synth_dir), storage=str(tmp_path / "runs"), backbone="resnet10t")
    with pytest.raises(DatasetError, match="unknown domain 'synth-kidney'"):
        train(base.replace(source="synth-kidney"))
    pc = base.replace(method="pixelcam", pseudo_labels_from=str(ckpt(tmp_path, "pixelcam")))
    with pytest.raises(
        CheckpointError, match="a 'pixelcam' checkpoint; pixelcam's pseudo-labels come from a baseline"
    ):
        train(pc)
    pc = pc.replace(pseudo_labels_from=str(ckpt(tmp_path, "cam", "resnet18")))
    with pytest.raises(ConfigError, match="differs from the baseline's 'resnet18'"):
        train(pc)
    with pytest.raises(CheckpointError, match="not a checkpoint or run directory"):
        train(pc.replace(pseudo_labels_from=str(tmp_path / "nowhere")))
    (tmp_path / "runs" / base.run_name()).mkdir(parents=True)
    with pytest.raises(TrainError, match="exists: pass --resume"):
        train(base)
    with pytest.raises(TrainError, match="nothing to resume"):
        train(base.replace(name="other"), resume=True)


def test_cli_reports_config_errors(tmp_path: Path, capsys):
    from pixelcam.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("method: pixelcam\n")
    assert main(["train", "baseline", "--config", str(cfg)]) == 2
    assert "pseudo_labels_from" in capsys.readouterr().err
    cfg.write_text("method: cam\nepochs: 0\n")
    assert main(["train", "baseline", "--config", str(cfg)]) == 2
    assert "epochs: must be > 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("exc", "epochs_done", "status"),
    [
        (RuntimeError("worker torn down"), 2, "FAILED"),  # an error, even after the last epoch
        (SystemExit(0), 1, "KILLED"),  # Tune's scheduler stopped the trial early (sys.exit at a report)
        (KeyboardInterrupt(), 0, "KILLED"),  # Ctrl-C before the first checkpoint
        (SystemExit(0), 2, "FINISHED"),  # stopped at its last report: every epoch done, selection logged
    ],
)
def test_interrupted_runs_are_closed_by_what_stopped_them(
    tmp_path: Path, exc: BaseException, epochs_done: int, status: str
):
    import json

    from mlflow.tracking import MlflowClient

    from pixelcam.tracking import RunKind, start_run
    from pixelcam.train.run_tracking import RUN_FILE, close_interrupted, close_stopped_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = start_run(RunKind.TRIAL, "trial-x", experiment="t", uri=uri).run_id
    run_dir = tmp_path / "run"
    metrics = [{"valpx_pxap": 30.0, "valcl_cl": 60.0}, {"valpx_pxap": 20.0, "valcl_cl": 70.0}]
    for e in range(epochs_done):  # epoch 0 stays the best (B-LOC); every epoch ran is logged once
        MlflowClient(uri).log_metric(run_id, "valpx_pxap", metrics[e]["valpx_pxap"], step=e)
        d = run_dir / f"epoch_{e:03d}"
        d.mkdir(parents=True)
        meta = {"epoch": e, "metrics": metrics[e], "tau": 0.4, "best": {"epoch": 0}}
        (d / "meta.json").write_text(json.dumps(meta))
    run_dir.mkdir(exist_ok=True)
    (run_dir / RUN_FILE).write_text(json.dumps({"mlflow_run_id": run_id, "tracking_uri": uri}))
    close_interrupted(uri, run_id, run_dir, 2, exc)
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == status
    if status == "FAILED":  # the study's reconciliation when Tune says the trial was only stopped
        assert close_stopped_run(run_dir, 2) == "FINISHED"
        run = MlflowClient(uri).get_run(run_id)
        status = run.info.status
    if status == "FINISHED":
        assert run.data.metrics["selected_epoch"] == 0 and run.data.metrics["selected_valpx_pxap"] == 30.0
        assert run.data.tags["pixelcam.checkpoint"] == str(run_dir / "epoch_000")
    else:
        assert "selected_epoch" not in run.data.metrics
