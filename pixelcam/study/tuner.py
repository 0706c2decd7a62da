"""A Tune experiment of study trials (`trial_driver`), new or restored: shared by the tune and seeds steps."""

from __future__ import annotations

import signal
from typing import Any

from pixelcam.adapters.ray import stop_tune_gracefully
from pixelcam.errors import Terminated
from pixelcam.storage import Location
from pixelcam.study.context import StudyContext
from pixelcam.study.progress import StudyProgress
from pixelcam.study.resources import trial_resources
from pixelcam.study.trainable import trial_driver


def fit_experiment(
    ctx: StudyContext,
    path: Location,
    constants: dict[str, Any],
    tune_config: Any,
    resume_errored: bool = False,
) -> Any:
    """Run the experiment stored at `path` (restored with its finished trials kept when it exists, else new
    with `tune_config`); returns Tune's ResultGrid (KeyboardInterrupt when Ctrl-C cut it). The opened
    dataset and the study's decoded train datasets (`StudyContext.shared_train_data`) reach every trial
    through the object store (no trial re-reads the manifest or decodes its source again); each trial holds
    `trial_resources`."""
    import ray
    import ray.tune

    runs = constants["run"]["grid_search"] if "run" in constants else [constants]  # a wave: one base per run
    shared = ctx.shared_train_data([r["base"] for r in runs])
    trainable = ray.tune.with_resources(
        ray.tune.with_parameters(trial_driver, dataset=ctx.dataset, shared_data=shared),
        trial_resources(ctx.spec, ray.cluster_resources()),
    )
    if ray.tune.Tuner.can_restore(path.uri):  # Tune keeps its state there, a local path or a bucket alike
        tuner = ray.tune.Tuner.restore(
            path.uri, trainable, resume_unfinished=True, resume_errored=resume_errored, param_space=constants
        )
    else:
        tuner = ray.tune.Tuner(
            trainable,
            param_space=constants,
            tune_config=tune_config,
            run_config=ray.tune.RunConfig(
                name=path.name,
                storage_path=path.parent.uri,
                failure_config=ray.tune.FailureConfig(max_failures=ctx.spec.resources.max_failures),
                verbose=0,
                callbacks=[StudyProgress(ctx.log, ctx.spec.budget.epochs)],
            ),
        )
    with stop_tune_gracefully() as signals:
        results = tuner.fit()
    if signals:  # Tune saved its state and returned early: the study stops too; `study resume` restores it
        raise KeyboardInterrupt if signals[0] == signal.SIGINT else Terminated
    return results
