"""Tune step: per source, each baseline, then NEGEV and PixelCAM on each tuned baseline (Ray Tune, Optuna,
ASHA; every trial a Ray Train run). Produces `experiments`: per model, its best trial's checkpoint, metrics
and parameters (or why it has none)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from pixelcam.errors import Terminated
from pixelcam.results import ExperimentRecord
from pixelcam.runtime.checkpoint import selected_in_run
from pixelcam.storage import Location
from pixelcam.study.context import StudyContext, experiment_key
from pixelcam.study.search import TUNE_METRIC, make_scheduler, make_searcher
from pixelcam.study.spec import StudySpec
from pixelcam.study.trainable import trial_name
from pixelcam.study.tuner import fit_experiment
from pixelcam.tracking import RunKind, RunLogger, child_runs
from pixelcam.train.run_tracking import close_stopped_run


class TuneStep:
    name = "tune"
    requires: tuple[str, ...] = ()
    produces = ("experiments",)

    def skip_reason(self, ctx: StudyContext) -> str | None:
        return None

    def run(self, ctx: StudyContext) -> None:
        spec = ctx.spec
        labels = [x for m in spec.methods for x in spec.variant_labels(m)]
        if is_fixed(spec, list(spec.methods) + labels):  # nothing to tune: waves of single trainings
            train_fixed(ctx, "baselines", list(spec.methods))
            if labels:  # NEGEV and PixelCAM models need only their baselines: one wave for both
                train_fixed(ctx, "pixelcam", labels)
            return
        for source in spec.sources:
            for method in spec.methods:
                tune_experiment(ctx, source, method)
            for method in spec.methods:
                for label in spec.variant_labels(method):
                    tune_experiment(ctx, source, label)


def tune_experiment(ctx: StudyContext, source: str, method: str) -> ExperimentRecord:
    """Tune one (source, model label) experiment; returns its record (best trial, checkpoint, metrics)."""
    import ray.tune

    spec = ctx.spec
    key = experiment_key(source, method)
    done = ctx.state.experiment(key)
    if not _to_run(done):
        ctx.log(f"[{key}] done earlier: best trial {done.best_trial}")
        return done
    var = spec.variant(method)
    baseline, fixed = var.baseline, var.fixed
    base = spec.base_config(var.method, source, baseline)
    if baseline is not None:
        parent = ctx.state.experiment(experiment_key(source, baseline))
        if parent is None or not parent.checkpoint:
            rec = ExperimentRecord(status="skipped", reason=f"baseline {baseline} has no model")
            ctx.state.put("experiments", key, rec)
            return rec
        base = base.replace(pseudo_labels_from=parent.checkpoint, **fixed)
    dims = searched_dims(spec, method)
    train_storage = ctx.dir / "train" / key
    tune_root = ctx.dir / "tune"
    grid = spec.searcher == "grid"
    constants = {
        "base": base.to_dict(),
        "searched": sorted(dims),
        **({k: ray.tune.grid_search(list(d.values)) for k, d in dims.items()} if grid else {}),
        "train_storage": str(train_storage),
        "mlflow_uri": ctx.uri,
        "mlflow_parent": ctx.parent_run_id,
        "tags": {"study": spec.name, "experiment_key": key, "method_label": method},
        **({"stand_in": True} if spec.stand_in else {}),
    }
    path = tune_root / key
    if ray.tune.Tuner.can_restore(path.uri):
        ctx.log(f"[{key}] restoring the Tune experiment (finished trials are kept)")
    elif not dims:
        ctx.log(f"[{key}] training the fixed configuration")
    elif grid:
        ctx.log(
            f"[{key}] grid over {sorted(dims)} ({math.prod(len(d.values) for d in dims.values())} trials)"
        )
    else:
        ctx.log(f"[{key}] tuning {sorted(dims)} over {spec.budget.trials} trials")
    tune_config = ray.tune.TuneConfig(
        metric=TUNE_METRIC,
        mode="max",
        # nothing searched: the fixed config; grid: every combination once (no searcher)
        search_alg=make_searcher(dims, spec.seed) if dims and not grid else None,
        scheduler=make_scheduler(spec.budget, ctx.early_stopping),
        num_samples=1 if grid else spec.budget.trials,
        max_concurrent_trials=ctx.concurrency,
        # a trial's actor runs the next trial (no new process, torch, MLflow client: ~4 s on 2 cores)
        reuse_actors=True,
    )
    with interrupted_as(ctx, [key]):
        results = fit_experiment(ctx, path, constants, tune_config)
    rec = best_trial(results, train_storage, dims)
    close_stopped_trials(results, train_storage, spec.budget.epochs)
    close_killed_children(ctx)
    ctx.state.put("experiments", key, rec)
    _log_record(ctx, key, rec)
    return rec


@contextlib.contextmanager
def interrupted_as(ctx: StudyContext, keys: list[str]) -> Iterator[None]:
    """Ctrl-C or SIGTERM inside: the experiments `keys` are recorded `interrupted` (never `ok`), which
    `study resume` reruns, restoring their Tune state, before the interrupt goes on."""
    try:
        yield
    except (KeyboardInterrupt, Terminated):
        reason = "stopped by Ctrl-C or SIGTERM during its trials; `pixelcam study resume` completes it"
        for key in keys:
            ctx.state.put("experiments", key, ExperimentRecord(status="interrupted", reason=reason))
        raise


def searched_dims(spec: StudySpec, label: str) -> dict[str, Any]:
    """What is searched for model `label` (a PixelCAM ablation's own field is fixed, not searched)."""
    var = spec.variant(label)
    return {k: v for k, v in spec.searched(var.method).items() if k not in var.fixed}


def is_fixed(spec: StudySpec, labels: list[str]) -> bool:
    """Every model of the study is one training of a fixed configuration (one trial, nothing searched)."""
    return spec.budget.trials == 1 and not any(searched_dims(spec, label) for label in labels)


def train_fixed(ctx: StudyContext, phase: str, labels: list[str]) -> None:
    """Train the fixed configuration of `labels` on every source as one wave (`study.waves`): the same
    records, Train directories and MLflow runs as `tune_experiment`, without one Tune experiment each. The
    other seeds of `seeds` (known now: nothing is searched) train in the same wave, recorded as the seeds
    step records them."""
    from pixelcam.study.steps.seeds import announce_seeds, record_seed_run, seed_runs
    from pixelcam.study.waves import run_wave

    spec = ctx.spec
    runs = []
    for source in spec.sources:
        for label in labels:
            run = _fixed_run(ctx, source, label)
            if run is not None:
                runs.append(run)
    for run in runs:
        done = ctx.state.experiment(run["key"])
        if not _to_run(done):
            ctx.log(f"[{run['key']}] done earlier: best trial {done.best_trial}")
    # a wave's records are written together, so a resumed wave is the same grid as the interrupted one
    runs = [r for r in runs if _to_run(ctx.state.experiment(r["key"]))]
    seeded = [
        r for source in spec.sources for label in labels for r in seed_runs(ctx, source, label, fixed=True)
    ]
    if not runs and not seeded:
        return
    if runs:
        keys = ", ".join(r["key"] for r in runs)
        ctx.log(f"training the fixed configuration of {keys} ({ctx.concurrency} at once)")
    announce_seeds(ctx, seeded)
    with interrupted_as(ctx, [r["key"] for r in runs]):
        results = run_wave(ctx, f"fixed-{phase}", runs + seeded)
    for run, result, info in results:
        if run.get("kind") == RunKind.SEED:
            record_seed_run(ctx, run, result, info)
            continue
        storage = Location(run["train_storage"])
        rec = best_trial([result], storage, {})
        ctx.state.put("experiments", run["key"], rec, save=False)
        close_stopped_trials([result], storage, spec.budget.epochs)
        _log_record(ctx, run["key"], rec)
    ctx.state.save()
    close_killed_children(ctx)


def _to_run(rec: ExperimentRecord | None) -> bool:
    """Whether an experiment still has to run: never recorded, or interrupted."""
    return rec is None or rec.status == "interrupted"


def _fixed_run(ctx: StudyContext, source: str, label: str) -> dict[str, Any] | None:
    """The wave run of one fixed model (None for a PixelCAM model whose baseline has no model: recorded as
    skipped)."""
    from pixelcam.study.waves import wave_run

    spec, key = ctx.spec, experiment_key(source, label)
    var = spec.variant(label)
    baseline, fixed = var.baseline, var.fixed
    base = spec.base_config(var.method, source, baseline)
    if baseline is not None:
        parent = ctx.state.experiment(experiment_key(source, baseline))
        if parent is None or not parent.checkpoint:
            if _to_run(ctx.state.experiment(key)):
                rec = ExperimentRecord(status="skipped", reason=f"baseline {baseline} has no model")
                ctx.state.put("experiments", key, rec)
            return None
        base = base.replace(pseudo_labels_from=parent.checkpoint, **fixed)
    tags = {"study": spec.name, "method_label": label}
    return wave_run(key, base.to_dict(), ctx.dir / "train" / key, tags)


def _log_record(ctx: StudyContext, key: str, rec: ExperimentRecord) -> None:
    if rec.checkpoint:
        m = rec.metrics
        ctx.log(
            f"[{key}] best trial {rec.best_trial}: valpx PxAP {m['valpx_pxap']:.2f}, valcl CL "
            f"{m['valcl_cl']:.1f} with {rec.params} ({rec.trials_ok} ok, "
            f"{rec.trials_failed} failed, {rec.trial_epochs} trial-epochs)"
        )
    else:
        ctx.log(f"[{key}] every trial failed: {rec.errors}")


def best_trial(grid: Any, train_storage: Location, dims: dict) -> ExperimentRecord:
    """The experiment's record from Tune's results: the trial with the best score that has a checkpoint."""
    best, ok, failed, epochs, errors = None, 0, 0, 0, []
    for r in grid:
        if r.error is not None:
            failed += 1
            errors.append(str(r.error).strip().splitlines()[-1][:300])
            continue
        m = r.metrics or {}
        epochs += int(m.get("training_iteration", 0))
        trial_id = m.get("trial_id")
        info = selected_in_run(train_storage / trial_name(str(trial_id)))
        if info is None:  # stopped before its first checkpoint
            continue
        ok += 1
        score = m.get(TUNE_METRIC, -math.inf)
        if best is None or score > best[0]:
            best = (score, trial_id, info, {k: r.config.get(k) for k in dims})
    counts = {"trials_ok": ok, "trials_failed": failed, "trial_epochs": epochs, "errors": errors}
    if best is None:
        return ExperimentRecord(status="failed", **counts)
    score, trial_id, info, params = best
    return ExperimentRecord(
        status="ok",
        best_trial=str(trial_id),
        score=score,
        checkpoint=info.checkpoint,
        metrics=info.metrics,
        tau=info.tau,
        params=params,
        mlflow_run_id=info.mlflow_run_id,
        **counts,
    )


def close_stopped_trials(grid: Any, train_storage: Location, epochs: int) -> None:
    """Tune is the judge of how a trial ended: a trial it reports without error was stopped by the
    scheduler (or finished), whatever its Train run's exception looked like while it was being torn down.
    Its MLflow run ends KILLED (stopped early) or FINISHED (every epoch ran), never FAILED."""
    for r in grid:
        trial_id = (r.metrics or {}).get("trial_id")
        if r.error is None and trial_id:
            close_stopped_run(train_storage / trial_name(str(trial_id)), epochs)


def close_killed_children(ctx: StudyContext) -> None:
    """Trials stopped by ASHA never finish their MLflow runs: mark them KILLED."""
    if not ctx.parent_run_id:
        return
    for run in child_runs(ctx.parent_run_id, ctx.uri, status="RUNNING"):
        if run.data.tags.get("kind") == RunKind.TRIAL:
            RunLogger(run.info.run_id, ctx.uri).finish("KILLED")
            ctx.log(f"closed MLflow run {run.info.run_name} of a stopped trial (KILLED)")
