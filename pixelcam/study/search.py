"""The Optuna search space of a study as a define-by-run function, and ASHA, for Ray Tune.

Define-by-run keeps integer, log and categorical dimensions exact (Optuna's own distributions) and lets the
PixelCAM-only dimensions (lam, n, sampler, ...) exist only in PixelCAM experiments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pixelcam.study.spec import Budget, Choice, Range

TUNE_METRIC = "selected_score"  # best-so-far selection score (B-LOC PxAP or B-CL accuracy) at each epoch


class SearchSpace:
    """Define-by-run space: `space(trial)` suggests every dimension (a class, so the searcher pickles)."""

    def __init__(self, dims: dict[str, Range | Choice]) -> None:
        self.dims = dict(dims)

    def __call__(self, trial: Any) -> None:
        for key, d in self.dims.items():
            if isinstance(d, Choice):
                trial.suggest_categorical(key, list(d.values))
            elif d.int:
                trial.suggest_int(key, int(d.low), int(d.high), log=d.log)
            else:
                trial.suggest_float(key, d.low, d.high, log=d.log)


def space_fn(dims: dict[str, Range | Choice]) -> Callable[[Any], None]:
    """`fn(trial)` suggesting every dimension of `dims` (used by OptunaSearch)."""
    return SearchSpace(dims)


def make_searcher(dims: dict[str, Range | Choice], seed: int):
    """Seeded TPE over `dims`, maximising TUNE_METRIC."""
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(space=space_fn(dims), metric=TUNE_METRIC, mode="max", seed=seed)


def asha_settings(budget: Budget) -> dict[str, Any]:
    """ASHA's settings for a study budget: epochs are the time unit (one Tune result per epoch)."""
    return {
        "time_attr": "training_iteration",
        "max_t": budget.epochs,
        "grace_period": budget.grace_period,
        "reduction_factor": budget.reduction_factor,
        "stop_last_trials": False,  # trials reaching max_t end by themselves (no killed Train controller)
    }


def make_scheduler(budget: Budget, early_stopping: bool = True):
    """ASHA over epochs, or FIFO when early stopping is off."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    return ASHAScheduler(**asha_settings(budget)) if early_stopping else FIFOScheduler()
