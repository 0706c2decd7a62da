"""Fixed-configuration trainings of several experiments as one Tune experiment (a "wave").

When nothing is searched, each experiment is a single training, and one Tune experiment per model would run
them one after the other with the rest of the machine idle (a trial holds the CPUs of its workers, and the
quickstart's two sources need not wait for each other). A wave is one Tune experiment whose grid is the runs
of every model that is ready (the baselines of every source, then every PixelCAM model on its trained
baseline; the seeds step likewise per seed): FIFO, `max_concurrent` at once, trial actors reused between
runs (no second start-up of the Python process, torch and MLflow). Each run keeps its own Train directory,
MLflow run, tags and record, exactly as when it ran alone.
"""

from __future__ import annotations

from typing import Any

from pixelcam.results import SelectedCheckpoint
from pixelcam.runtime.checkpoint import selected_in_run
from pixelcam.storage import Location
from pixelcam.study.context import StudyContext
from pixelcam.study.trainable import trial_name
from pixelcam.study.tuner import fit_experiment


def wave_run(
    key: str,
    base: dict[str, Any],
    train_storage: Location,
    tags: dict[str, str],
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One training of a wave: the trial driver merges it over the experiment's constants."""
    return {
        "key": key,
        "base": base,
        "train_storage": str(train_storage),
        "tags": {**tags, "experiment_key": key},
        "overrides": overrides or {},
    }


def run_wave(
    ctx: StudyContext, name: str, runs: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], Any, SelectedCheckpoint | None]]:
    """Train `runs` (from `wave_run`) as the Tune experiment `tune/<name>` (restored when it exists);
    returns (run, Tune result, the run's selected checkpoint info or None) per run, in the order given. A run
    carries its own MLflow run kind (`"kind"`, e.g. a seed run's); the default is a trial's."""
    import ray.tune

    constants: dict[str, Any] = {
        "run": ray.tune.grid_search(runs),
        "searched": [],
        "mlflow_uri": ctx.uri,
        "mlflow_parent": ctx.parent_run_id,
    }
    tune_config = ray.tune.TuneConfig(num_samples=1, max_concurrent_trials=ctx.concurrency, reuse_actors=True)
    results = fit_experiment(ctx, ctx.dir / "tune" / name, constants, tune_config, resume_errored=True)
    by_key = {}
    for r in results:
        run = r.config["run"]
        trial_id = (r.metrics or {}).get("trial_id")
        info = (
            selected_in_run(Location(run["train_storage"]) / trial_name(str(trial_id))) if trial_id else None
        )
        by_key[_identity(run)] = (run, r, info)
    return [by_key[_identity(run)] for run in runs if _identity(run) in by_key]


def _identity(run: dict[str, Any]) -> tuple[str, Any]:
    return run["key"], run["overrides"].get("seed")


def run_error(result: Any, info: SelectedCheckpoint | None) -> str | None:
    """Why a wave's run has no model (None when it has one)."""
    if result.error is not None:
        return str(result.error).strip().splitlines()[-1][:300]
    return None if info is not None else "no checkpoint"
