"""What a trial needs from the cluster, checked before a study starts (study/resources.py)."""

import pytest

from pixelcam.errors import StudyError
from pixelcam.study.resources import check_resources, retry_note
from pixelcam.study.spec import Resources, StudySpec


def test_unschedulable_study_fails_with_need_and_have():
    spec = StudySpec(name="t", resources=Resources(workers=4, gpus_per_worker=1.0))
    with pytest.raises(StudyError, match=r"a trial needs .*GPU: 4.* the cluster has .*GPU: 0"):
        check_resources(spec, {"CPU": 2.0})
    spec = StudySpec(name="t", resources=Resources(workers=2, cpus_per_worker=2.0))
    with pytest.raises(StudyError, match="CPU: 4.01"):
        check_resources(spec, {"CPU": 2.0})


def test_concurrency_from_the_cluster():
    assert check_resources(StudySpec(name="t", resources=Resources(workers=1)), {"CPU": 2.0}) == 1
    assert (
        check_resources(
            StudySpec(name="t", resources=Resources(workers=2, gpus_per_worker=1.0)),
            {"CPU": 16.0, "GPU": 8.0},
        )
        == 4
    )


def test_fractional_gpus_pack_trials_on_one_gpu():
    from pixelcam.study.resources import trial_resources
    from pixelcam.validation import ConfigError, parse

    packed = StudySpec(name="t", resources=Resources(workers=1, gpus_per_worker=0.25, cpus_per_worker=2.0))
    cluster = {"CPU": 16.0, "GPU": 1.0}
    assert check_resources(packed, cluster) == 4  # four single-worker trials share the GPU
    assert trial_resources(packed, cluster) == {"GPU": 0.25, "CPU": 2.0}  # held by the in-process trial
    cfg = packed.base_config("cam", "synth-colon")
    assert cfg.use_gpu and cfg.gpus_per_worker == 0.25
    with pytest.raises(StudyError, match="GPU: 0.25.*GPU: 0"):  # refused before launch on a CPU cluster
        check_resources(packed, {"CPU": 16.0})
    with pytest.raises(ConfigError, match=r"s.yaml.*gpus_per_worker.*1.5: fractions only below 1"):
        parse(Resources, {"workers": 1, "gpus_per_worker": 1.5}, "s.yaml: resources")


def test_retries_on_multi_worker_trials_get_a_note():
    """Retries set on DDP trials are named with what they do not cover (a lost node's trial does not restart
    on Ray 2.60); one-worker trials and specs without retries get no note."""
    note = retry_note(StudySpec(name="t", resources=Resources(workers=2, max_failures=2)))
    assert note and "max_failures 2 with 2 workers" in note and "resources.workers: 1" in note
    assert retry_note(StudySpec(name="t", resources=Resources(workers=1, max_failures=2))) is None
    assert retry_note(StudySpec(name="t", resources=Resources(workers=4))) is None
