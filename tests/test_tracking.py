"""The tracking service on a real SQLite MLflow store: run kinds, metric names, the experiment's UI kind."""

import pytest
from mlflow.tracking import MlflowClient

from pixelcam.tracking import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    PairMetric,
    RunKind,
    child_runs,
    pair_metric,
    parse_pair_metric,
    start_run,
)


@pytest.mark.parametrize(
    "args, name",
    [
        (("pxap", "synth-colon", "synth-lymph"), "pxap__synth-colon__to__synth-lymph"),
        (("cl", "glas", "camelyon16", "pixelcam-cam.n-10"), "pixelcam-cam.n-10__cl__glas__to__camelyon16"),
        (("stain_delta_e", "a", "b"), "stain_delta_e__a__to__b"),
    ],
)
def test_pair_metric_names_round_trip(args, name):
    assert pair_metric(*args) == name
    assert parse_pair_metric(name) == PairMetric(*args)


def test_parse_rejects_other_metrics():
    assert parse_pair_metric("valpx_pxap") is None
    assert parse_pair_metric("pxap__a__to__b", metrics=("cl",)) is None
    assert parse_pair_metric("x__y__z__w__to__b") is None


def test_runs_carry_their_kind_and_experiments_open_on_the_runs_table(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = start_run(RunKind.STUDY, "study-x", experiment="exp", params={"seed": 0}, uri=uri)
    child = start_run(
        RunKind.EVALUATION, "eval", parent_run_id=parent.run_id, tags={"method": "cam"}, uri=uri
    )
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("exp")
    assert exp.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND  # MLflow 3's UI: "model training" experiment
    run = client.get_run(child.run_id)
    assert run.data.tags["kind"] == "evaluation" and run.data.tags["method"] == "cam"
    assert run.info.experiment_id == exp.experiment_id  # a child run lives in its parent's experiment
    assert client.get_run(parent.run_id).data.params == {"seed": "0"}
    assert [r.info.run_id for r in child_runs(parent.run_id, uri)] == [child.run_id]
    child.finish()
    assert child_runs(parent.run_id, uri, status="RUNNING") == []
    with pytest.raises(ValueError, match="unknown run kind 'eval'"):
        start_run("eval", "x", experiment="exp", uri=uri)


def _ensure(uri: str) -> str:
    from pixelcam.tracking import ensure_experiment

    return ensure_experiment("raced", uri)


def test_concurrent_studies_create_one_tagged_experiment(tmp_path):
    """Two jobs of one study start at once (two submissions of one spec): one experiment, tagged, no error."""
    from concurrent.futures import ProcessPoolExecutor

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # create the schema once, as a tracking server would have
    with ProcessPoolExecutor(4) as pool:
        ids = list(pool.map(_ensure, [uri] * 4))
    assert len(set(ids)) == 1
    assert MlflowClient(uri).get_experiment(ids[0]).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
