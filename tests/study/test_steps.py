"""The study pipeline's declared inputs and outputs."""

from pixelcam.results import ExperimentRecord
from pixelcam.study.context import StudyState
from pixelcam.study.steps import PIPELINE


def test_every_step_reads_only_what_an_earlier_step_or_the_state_provides(tmp_path):
    available = set(StudyState(tmp_path / "state.json").data)
    names = [s.name for s in PIPELINE]
    assert names == ["tune", "seeds", "evaluate", "stain", "ood", "dashboard"] and len(set(names)) == len(
        names
    )
    for step in PIPELINE:
        missing = set(step.requires) - available
        assert not missing, f"step {step.name} reads {missing} before any step writes it"
        available |= set(step.produces)


def test_state_round_trips_and_records_units_of_work(tmp_path):
    state = StudyState(tmp_path / "state.json")
    rec = ExperimentRecord(status="ok", checkpoint="c", metrics={"valpx_pxap": 1.0})
    state.put("experiments", "synth-colon__cam", rec)
    again = StudyState(tmp_path / "state.json")
    assert again.experiment("synth-colon__cam") == rec and again.experiments() == {"synth-colon__cam": rec}
    assert again.evaluation("synth-colon__cam") is None and again.parent_run_id is None
    assert again.data["steps"] == {}


def test_a_steps_seconds_add_up_over_the_passes_that_ran_it(tmp_path):
    state = StudyState(tmp_path / "state.json")
    state.step_done("tune", (), ("experiments",), 12.5)
    state.step_done("tune", (), ("experiments",), 0.25)  # a resume: the step ran again, little left to do
    step = StudyState(tmp_path / "state.json").data["steps"]["tune"]
    assert step == {"requires": [], "produces": ["experiments"], "seconds": 12.75}


def test_a_study_evaluates_on_the_gpu_it_trains_on(monkeypatch):
    """The driver's evaluation and stain sweep run on its GPU when the spec trains on GPUs and the driver
    sees one; else on its CPU (a CPU study's numbers never move to another device)."""
    from pathlib import Path

    import torch

    from pixelcam.study.context import StudyContext
    from pixelcam.study.spec import load_spec

    spec = load_spec(Path(__file__).parents[2] / "studies" / "quickstart.yaml")
    ctx = StudyContext(spec, None, None, None, [], "")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ctx.eval_device == "cpu"  # no GPU asked for
    on_gpus = spec.resources.model_copy(update={"gpus_per_worker": 0.5})
    ctx.spec = spec.model_copy(update={"resources": on_gpus})
    assert ctx.eval_device == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ctx.eval_device == "cpu"  # asked for, but this driver has none
