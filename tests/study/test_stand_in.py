"""The benchmark-only stand-in trial (spec `stand_in: true`): a trial's bookkeeping without its training, in a
real MLflow store, with Tune's report taken by the test."""

import math
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pixelcam.config import TrainConfig
from pixelcam.data.reader import open_dataset
from pixelcam.study.spec import spec_from_dict
from pixelcam.study.stand_in import run_stand_in, stand_in_score
from pixelcam.train.run_tracking import RUN_FILE
from pixelcam.train.worker import EPOCH_METRICS


def test_the_score_rises_over_epochs_and_peaks_where_the_values_sit_near_1e_2():
    assert 0 < stand_in_score({"lr": 0.01}, 0) < stand_in_score({"lr": 0.01}, 2) < 100
    assert stand_in_score({"lr": 1e-4}, 2) < stand_in_score({"lr": 1e-3}, 2) < stand_in_score({"lr": 1e-2}, 2)
    # by hand: one value at 1e-2 fits fully; epoch 0 reaches 1 - exp(-1/2) of it
    assert stand_in_score({"lr": 0.01, "sampler": "pb"}, 0) == pytest.approx(100 * (1 - math.exp(-0.5)))


def test_a_stand_in_trial_logs_its_run_and_reports_every_epoch(
    tmp_path: Path, synth_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    import ray.tune

    reports: list[dict] = []
    monkeypatch.setattr(ray.tune, "report", reports.append)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = TrainConfig(
        data=str(synth_dir),
        epochs=3,
        lr=0.01,
        select_from_epoch=1,
        name="trial-x",
        storage=str(tmp_path / "t"),
    )
    run_stand_in(cfg, open_dataset(synth_dir), {"lr": 0.01}, None, uri, {"trial_id": "x"})
    assert [r["epoch"] for r in reports] == [0, 1, 2]
    scores = [stand_in_score({"lr": 0.01}, e) for e in range(3)]
    assert [r["valpx_pxap"] for r in reports] == pytest.approx(scores)
    # epoch 0 is not selectable: its selected score is its own; then the best from epoch 1 on
    assert [r["selected_score"] for r in reports] == pytest.approx([scores[0], scores[1], scores[2]])
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert (
        run.info.status == "FINISHED"
        and run.data.tags["kind"] == "trial"
        and run.data.tags["trial_id"] == "x"
    )
    for key in EPOCH_METRICS:  # every per-epoch metric a training logs, once per epoch
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [0, 1, 2], key
    assert (tmp_path / "t" / "trial-x" / RUN_FILE).is_file()  # the run directory a training has


def test_stand_in_is_a_spec_setting_off_by_default():
    assert spec_from_dict({"name": "s"}).stand_in is False
    assert spec_from_dict({"name": "s", "stand_in": True}).stand_in is True
