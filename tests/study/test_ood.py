"""The OOD matrix from a study state: every figure aggregated over seeds by one function (mean, Student-t
95 % CI and n, checked against scipy), the long-format CSV, the printed table and near-chance flags on every
seed."""

import csv
import io
import math
from pathlib import Path

import pytest
from scipy import stats

from pixelcam.results import DomainResult, EvaluationReport, ExperimentRecord, SeedRecord
from pixelcam.study.context import StudyState
from pixelcam.study.ood import format_ood, ood_csv, ood_matrix
from pixelcam.study.spec import StudySpec

PRIORS = {"a": 38.5, "b": 9.75}  # each target's test split's ROI prior, as an evaluation reports it


def report(pxap: dict[str, float], cl: dict[str, float]) -> EvaluationReport:
    results = {
        t: DomainResult(
            pxap=pxap[t], cl=cl[t], images=10, tp_star=0, fn_star=0, tn_star=0, fp_star=0, roi_prior=PRIORS[t]
        )
        for t in pxap
    }
    return EvaluationReport(
        checkpoint="c", method="cam", backbone="b", source="a", split="test", tau=0.5,
        normalization="minmax", eval_size=224, precision="fp32", channels_last=False, dataset_hash="h",
        results=results,
    )  # fmt: skip


def metrics(valcl: float) -> dict[str, float]:
    return {"valpx_pxap": 1.0, "valcl_cl": valcl}


@pytest.fixture
def state(tmp_path: Path) -> StudyState:
    """cam <- a with seeds 0 (the tuned run), 1, 2 on targets a and b; seed 1 classifies at chance;
    pixelcam-cam failed."""
    st = StudyState(tmp_path / "state.json")
    st.put("experiments", "a__cam", ExperimentRecord(status="ok", checkpoint="c0", metrics=metrics(90.0)))
    st.put("experiments", "a__pixelcam-cam", ExperimentRecord(status="failed"))
    st.put("seeds", "a__cam@seed1", SeedRecord(status="ok", seed=1, checkpoint="c1", metrics=metrics(51.0)))
    st.put("seeds", "a__cam@seed2", SeedRecord(status="ok", seed=2, checkpoint="c2", metrics=metrics(95.0)))
    st.put("evaluations", "a__cam", report({"a": 40.0, "b": 20.0}, {"a": 90.0, "b": 60.0}))
    st.put("evaluations", "a__cam@seed1", report({"a": 44.0, "b": 18.0}, {"a": 92.0, "b": 55.0}))
    st.put("evaluations", "a__cam@seed2", report({"a": 45.0, "b": 25.0}, {"a": 97.0, "b": 58.0}))
    return st


SPEC = StudySpec(name="t", sources=["a"], targets=["a", "b"], methods=["cam"], seeds=[0, 1, 2])


def test_cells_aggregate_every_seed_with_a_student_t_ci(state: StudyState):
    m = ood_matrix(SPEC, StudyState(state.path), ["a", "b"], {"a": 2})  # read back from the file
    cam = m.rows[0]
    cell = cam.cell("pxap", "a")
    assert cell.seeds == [0, 1, 2] and cell.values == [40.0, 44.0, 45.0] and cell.study_seed_value == 40.0
    lo, hi = stats.t.interval(0.95, 2, loc=43.0, scale=stats.sem([40.0, 44.0, 45.0]))
    assert cell.mean == pytest.approx(43.0) and cell.half_width == pytest.approx((hi - lo) / 2)
    assert cell.n == 3 and cam.cell("cl", "b").mean == pytest.approx(57.666666)
    assert m.rows[1].status == "failed" and not m.rows[1].cells
    # a seed at chance (valcl CL 51 on 2 classes) flags the model, whichever seed it is
    assert cam.near_chance == [
        "cam <- a (seed 1): valcl CL 51.0 is within 5 points of chance (50.0); this model does not "
        "classify, read its PxAP with care"
    ]
    assert m.warnings == cam.near_chance


def test_table_shows_mean_and_ci_marks_chance_in_domain_and_failures(state: StudyState):
    m = ood_matrix(SPEC, state, ["a", "b"], {"a": 2})
    text = format_ood(m, {"cam": {"pxap": {"a->b": 18.5}}})
    hw = m.rows[0].cell("pxap", "a").half_width
    assert f"43.00 ± {hw:.2f}*" in text and "over 3 seeds" in text
    assert "[18.5]" in text and "failed" in text and "cam <- a !" in text and "(seed 1)" in text
    assert text.index("PxAP") < text.index("CL on test")
    prior = next(line for line in text.splitlines() if line.startswith("ROI prior"))
    assert prior.split()[-2:] == ["38.50", "9.75"] and text.index(prior) < text.index("CL on test")


def test_the_roi_prior_goes_with_the_matrix_and_the_parent_runs_metrics(state: StudyState):
    from pixelcam.study.steps.ood import summary_metrics

    m = ood_matrix(SPEC, state, ["a", "b"], {"a": 2})
    assert m.roi_prior == PRIORS
    metrics = summary_metrics(m)
    assert (metrics["roi_prior__a"], metrics["roi_prior__b"]) == (38.5, 9.75)


def test_csv_is_long_format_with_aggregate_rows(state: StudyState):
    m = ood_matrix(SPEC, state, ["a", "b"], {"a": 2})
    rows = list(csv.DictReader(io.StringIO(ood_csv(m))))
    cam_a = [r for r in rows if r["method"] == "cam" and r["target"] == "a"]
    assert [r["seed"] for r in cam_a] == ["0", "1", "2", "all"]
    assert [float(r["pxap"]) for r in cam_a[:3]] == [40.0, 44.0, 45.0]
    agg = cam_a[3]
    assert float(agg["pxap"]) == pytest.approx(43.0) and agg["n"] == "3" and agg["near_chance"] == "yes"
    assert float(agg["pxap_ci95"]) == pytest.approx(m.rows[0].cell("pxap", "a").half_width, abs=1e-4)
    failed = [r for r in rows if r["method"] == "pixelcam-cam"]
    assert len(failed) == 2 and all(r["status"] == "failed" and r["pxap"] == "" for r in failed)


def test_one_seed_has_no_ci(tmp_path: Path):
    st = StudyState(tmp_path / "s.json")
    st.put("experiments", "a__cam", ExperimentRecord(status="ok", checkpoint="c", metrics=metrics(90.0)))
    st.put("evaluations", "a__cam", report({"a": 40.0}, {"a": 90.0}))
    spec = StudySpec(name="t", sources=["a"], targets=["a"], methods=["cam"], pixelcam=False)
    cell = ood_matrix(spec, st, ["a"], {"a": 2}).rows[0].cell("pxap", "a")
    assert (cell.n, cell.half_width, cell.mean) == (1, None, 40.0)
    assert "40.00*" in format_ood(ood_matrix(spec, st, ["a"], {"a": 2}))
    assert not math.isnan(cell.mean)


def test_a_corrupted_state_fails_when_opened_naming_the_record(tmp_path: Path):
    from pixelcam.errors import StudyError

    f = tmp_path / "state.json"
    f.write_text('{"experiments": {"a__cam": {"status": "done"}}}')
    with pytest.raises(StudyError, match=r"state.json: experiments.a__cam.status: Input should be 'ok'"):
        StudyState(f)
