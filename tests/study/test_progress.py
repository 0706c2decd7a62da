"""The study's own console lines (driver side, from Tune results)."""

from types import SimpleNamespace

from pixelcam.study.progress import StudyProgress, epoch_line


def test_epoch_and_trial_lines():
    lines: list[str] = []
    p = StudyProgress(lines.append, epochs=3)
    trial = SimpleNamespace(
        trial_id="ab_00001",
        config={"tags": {"experiment_key": "synth-colon__cam"}, "overrides": {"seed": 2}},
        last_result={"training_iteration": 1, "selected_score": 41.5},
    )
    result = {"epoch": 0, "loss": 0.5, "valpx_pxap": 41.5, "valcl_cl": 90.0, "images_per_s": 20.0}
    p.on_trial_result(1, [], trial, result)
    p.on_trial_result(1, [], trial, {"training_iteration": 1})  # no metrics of ours: nothing printed
    p.on_trial_complete(1, [], trial)
    p.on_trial_recover(1, [], trial)
    p.on_trial_error(1, [], trial)
    assert lines == [
        "[synth-colon__cam@seed2 ab_00001] epoch 1/3  loss 0.5000  valpx PxAP 41.50  valcl CL 90.0  "
        "20.0 img/s",
        "[synth-colon__cam@seed2 ab_00001] stopped early after 1 epoch(s): best valpx PxAP 41.50",
        "[synth-colon__cam@seed2 ab_00001] failed (its worker or node was lost, or it raised); retried "
        "(resources.max_failures), continuing from its latest checkpoint",
        "[synth-colon__cam@seed2 ab_00001] failed (its error is recorded; the study goes on)",
    ]
    assert epoch_line("[x]", {"epoch": 2}, 3).startswith("[x] epoch 3/3  loss nan")


def test_a_retried_trial_that_reached_its_last_epoch_is_done():
    """Retried from its epoch-1 checkpoint, the trial reports 2 Tune iterations for epochs 2 and 3."""
    lines: list[str] = []
    trial = SimpleNamespace(
        trial_id="ab_00000",
        config={"tags": {"experiment_key": "k"}},
        last_result={"training_iteration": 2, "epoch": 2, "selected_score": 40.0},
    )
    StudyProgress(lines.append, epochs=3).on_trial_complete(2, [], trial)
    assert lines == ["[k ab_00000] done: best valpx PxAP 40.00"]


def test_a_waves_run_is_labelled_by_its_own_key_and_seed():
    lines: list[str] = []
    trial = SimpleNamespace(
        trial_id="cd_00003",
        config={"run": {"key": "synth-lymph__cam", "tags": {"experiment_key": "synth-lymph__cam"},
                         "overrides": {"seed": 1}}},
    )  # fmt: skip
    StudyProgress(lines.append, epochs=2).on_trial_result(1, [], trial, {"epoch": 1, "valpx_pxap": 3.0})
    assert lines[0].startswith("[synth-lymph__cam@seed1 cd_00003] epoch 2/2")


def test_the_callback_pickles_whatever_its_log_function_is():
    """Tune pickles callbacks with the experiment state; under `ray job submit` `print` itself is a patched
    object that does not pickle (the job failed with "Can't pickle <built-in function print>")."""
    import pickle

    unpicklable = lambda line: None  # noqa: E731 (a lambda does not pickle with the standard pickler)
    again = pickle.loads(pickle.dumps(StudyProgress(unpicklable, 4)))
    assert again.epochs == 4 and again.log is not unpicklable
