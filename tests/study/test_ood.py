"""The OOD matrix as CSV and a printed table (pure functions of study/ood.py)."""

import csv
import io

import numpy as np
import pytest
from scipy import stats

from pixelcam.study.ood import chance_warnings, format_ood, ood_csv, ood_matrix
from pixelcam.study.spec import StudySpec

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
        "seeds": "",
        "pxap_mean": "",
        "pxap_ci95": "",
        "cl_mean": "",
        "cl_ci95": "",
    }
    assert rows[2]["pxap"] == "" and rows[2]["status"] == "failed"


def report(pxap_a: float, cl_a: float) -> dict:
    return {"results": {"a": {"pxap": pxap_a, "cl": cl_a}}}


def test_seeds_give_mean_and_95_ci_per_pairing():
    spec = StudySpec(name="t", sources=["a"], targets=["a"], methods=["cam"], pixelcam=False, seeds=[0, 1, 2])
    state = {
        "experiments": {
            "a__cam": {"status": "ok", "params": {}, "metrics": {"valpx_pxap": 1.0, "valcl_cl": 52.0}}
        },
        "evaluations": {
            "a__cam": report(40.0, 90.0),  # the tuned run is seed 0's
            "a__cam@seed1": report(44.0, 92.0),
            "a__cam@seed2": report(45.0, 97.0),
        },
    }
    m = ood_matrix(spec, state, ["a"])
    row = m["rows"][0]
    assert row["seeds_run"] == [0, 1, 2] and row["seeds"]["pxap"]["a"] == [40.0, 44.0, 45.0]
    lo, hi = stats.t.interval(0.95, 2, loc=43.0, scale=stats.sem([40.0, 44.0, 45.0]))
    assert row["ci"]["pxap"]["a"]["mean"] == pytest.approx(43.0)
    assert row["ci"]["pxap"]["a"]["half_width"] == pytest.approx((hi - lo) / 2)
    text = format_ood(m)
    assert f"43.00 ± {(hi - lo) / 2:.2f}*" in text and "over 3 seeds" in text
    # valcl CL 52 on 2 classes: within 5 points of chance
    (w,) = chance_warnings(m, {"a": 2})
    assert "cam <- a: valcl CL 52.0 is within 5 points of chance (50.0)" in w
    assert not chance_warnings(m, {"a": 10})  # 52 vs chance 10: classifies
    assert np.isfinite(row["ci"]["cl"]["a"]["half_width"])
