"""The OOD matrix as CSV and a printed table (pure functions of study/ood.py)."""

import csv
import io

from pixelcam.study.ood import format_ood, ood_csv

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
