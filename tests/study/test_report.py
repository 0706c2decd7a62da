"""OOD matrix formatting and the resource check (pure functions)."""

import csv
import io

import pytest

from pixelcam.study.runner import StudyError, check_resources, format_ood, ood_csv
from pixelcam.study.spec import Resources, StudySpec

MATRIX = {
    "study": "t",
    "targets": ["a", "b"],
    "rows": [
        {
            "method": "cam",
            "source": "a",
            "status": "ok",
            "pxap": {"a": 50.0, "b": 20.0},
            "cl": {"a": 90.0, "b": 60.0},
        },
        {"method": "pixelcam-cam", "source": "a", "status": "failed"},
    ],
}


def test_table_marks_in_domain_failures_and_published_values():
    text = format_ood(MATRIX, {"cam": {"pxap": {"a->b": 18.5}}})
    assert "50.00*" in text and "20.00 [18.5]" in text and "failed" in text
    assert text.index("PxAP") < text.index("CL on test")


def test_csv_has_one_row_per_pairing():
    rows = list(csv.DictReader(io.StringIO(ood_csv(MATRIX))))
    assert len(rows) == 4
    assert rows[1] == {
        "method": "cam",
        "source": "a",
        "target": "b",
        "pxap": "20.0000",
        "cl": "60.0000",
        "status": "ok",
    }
    assert rows[2]["pxap"] == "" and rows[2]["status"] == "failed"


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
