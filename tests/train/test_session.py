"""The in-process session of single-worker runs: checkpoints written into the run directory whole (a local
directory or a bucket on the test S3 server, through the same code), found again on resume, nothing reported
to Tune outside a trial."""

import json
from pathlib import Path

import pytest

from pixelcam.config import TrainConfig
from pixelcam.storage import Location
from pixelcam.train.session import TUNE_KEYS, LocalSession, tune_metrics


@pytest.fixture(params=["local", "s3"])
def run_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "local":
        (tmp_path / "run").mkdir()
        return Location(tmp_path / "run")
    request.getfixturevalue("s3")
    return Location(f"s3://lab/session-test/{tmp_path.name}/run")


def test_local_session_writes_checkpoints_whole_and_finds_them_again(tmp_path: Path, run_dir: Location):
    run = run_dir
    s = LocalSession(run, dataset=object())
    assert (s.rank, s.world, str(s.device)) == (0, 1, "cpu") and not s.in_tune
    with s.latest_checkpoint() as d:
        assert d is None
    src = tmp_path / "ck"
    src.mkdir()
    (src / "meta.json").write_text(json.dumps({"metrics": {"valpx_pxap": 30.0}, "epoch": 2}))
    s.report({"valpx_pxap": 30.0, "epoch": 2}, str(src), "epoch_002")
    s.report({"valpx_pxap": 20.0, "epoch": 3}, None, "epoch_003")  # not an improvement: no checkpoint
    assert [p.name for p, _ in s.checkpoints] == ["epoch_002"]
    assert [p.name for p in run.iterdir()] == ["epoch_002"]  # no temporary left
    assert {p.name for p in (run / "epoch_002").iterdir()} == {"meta.json", "reported.json"}
    again = LocalSession(run, dataset=object())  # a resumed run
    with again.latest_checkpoint() as d:
        assert d == run / "epoch_002"
    assert again.checkpoints[0][1] == {"valpx_pxap": 30.0, "epoch": 2}  # what was reported, whole
    # an epoch re-run after a crash replaces its checkpoint and its entry
    again.report({"valpx_pxap": 30.0, "epoch": 2, "selection_rank": 30.0}, str(src), "epoch_002")
    assert [(p.name, m["selection_rank"]) for p, m in again.checkpoints] == [("epoch_002", 30.0)]


def test_a_resumed_run_ranks_checkpoints_written_before_reported_json(tmp_path: Path):
    """A trial retried after its node was lost found checkpoints whose meta lacked the selection rank
    (KeyError 'selection_rank' in the driver): ranked from the meta as the worker ranks them."""
    run = tmp_path / "run"
    for epoch, pxap, cl in ((1, 40.0, 90.0), (2, 40.0, 95.0), (3, 35.0, 99.0)):
        d = run / f"epoch_{epoch:03d}"
        d.mkdir(parents=True)
        meta = {"metrics": {"valpx_pxap": pxap, "valcl_cl": cl}, "config": {"selection": "b-loc"}}
        (d / "meta.json").write_text(json.dumps(meta))
    got = LocalSession(run, dataset=object()).checkpoints
    ranks = {p.name: m["selection_rank"] for p, m in got}
    assert max(ranks, key=ranks.get) == "epoch_001"  # the B-LOC best; a tie goes to the earlier epoch
    assert ranks["epoch_003"] == 35.0 - 3e-9 and all(m["epoch"] == int(p.name[-3:]) for p, m in got)


def test_executor_choice():
    assert TrainConfig(num_workers=1).runs_locally and not TrainConfig(num_workers=2).runs_locally
    assert not TrainConfig(num_workers=1, executor="ray_train").runs_locally
    assert TrainConfig(num_workers=1, executor="local").runs_locally


def test_a_trial_reports_to_tune_only_what_the_study_reads():
    """Tune keeps a running analysis of every metric it is given, per trial, in the driver: a trial reports
    the searcher's and ASHA's score, the epoch and the progress line's fields; the rest is in MLflow."""
    from pixelcam.study.progress import epoch_line
    from pixelcam.study.search import TUNE_METRIC
    from pixelcam.train.worker import EPOCH_METRICS

    epoch = {k: 1.0 for k in EPOCH_METRICS} | {"epoch": 3, "selected_score": 41.0, "selection_rank": 41.0}
    sent = tune_metrics(epoch)
    assert set(sent) == set(TUNE_KEYS) and TUNE_METRIC in sent
    assert set(sent) < set(epoch) and "train_s" not in sent and "input_wait_s" not in sent
    assert epoch_line("[t]", sent, 5) == epoch_line("[t]", epoch, 5)  # the progress line loses nothing
    assert tune_metrics({"epoch": 0}) == {"epoch": 0}  # absent keys stay absent
