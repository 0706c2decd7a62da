"""Seeds step: every selected configuration retrained once per seed of `seeds` (baselines first, then each
PixelCAM model on its baseline *of the same seed*), so results carry mean ± 95 % CI over seeds. The tuned
run is the run of the study's own `seed` (not retrained; with several trials it was also selected on that
seed, so its number can be optimistic: the other seeds are not).

The seeds of one model run as one Tune experiment, a grid over the seeds (FIFO, `max_concurrent` at once),
each a Ray Train run recorded in MLflow as a run of kind `seed`. Produces `seeds`: per `<key>@seed<s>` the
run's selected checkpoint and metrics."""

from __future__ import annotations

from typing import Any

from pixelcam.study.context import StudyContext, experiment_key, seed_key
from pixelcam.study.trainable import trial_name
from pixelcam.study.tuner import fit_experiment
from pixelcam.tracking import RunKind
from pixelcam.train.checkpoint import selected_in_run


class SeedsStep:
    name = "seeds"
    requires = ("experiments",)
    produces = ("seeds",)

    def run(self, ctx: StudyContext) -> None:
        spec = ctx.spec
        if not [s for s in spec.seeds if s != spec.seed]:
            return
        for source in spec.sources:
            for label in list(spec.methods) + [x for m in spec.methods for x in spec.pixelcam_labels(m)]:
                train_seeds(ctx, source, label)


def train_seeds(ctx: StudyContext, source: str, label: str) -> dict[str, Any]:
    """Retrain the selected configuration of (source, label) with every other seed; {seed: record}."""
    import ray
    import ray.tune

    spec, key = ctx.spec, experiment_key(source, label)
    todo = [s for s in spec.seeds if s != spec.seed and seed_key(source, label, s) not in ctx.state["seeds"]]
    exp = ctx.state["experiments"].get(key, {})
    if not todo or not exp.get("checkpoint"):
        return {}
    baseline, fixed = spec.variant(label)
    cfg = spec.base_config("pixelcam" if baseline else label, source, baseline).replace(
        **fixed, **exp.get("params", {})
    )
    runs = []
    for seed in todo:
        run = {"seed": seed}
        if baseline:
            parent = ctx.seed_checkpoint(source, baseline, seed)
            if parent is None:
                reason = f"baseline {baseline} has no model of seed {seed}"
                ctx.state.record(
                    "seeds", seed_key(source, label, seed), {"status": "skipped", "reason": reason}
                )
                continue
            run["pseudo_labels_from"] = parent
        runs.append(run)
    if not runs:
        return {}
    train_storage = ctx.dir / "seeds" / key
    constants = {
        "base": cfg.to_dict(),
        "searched": [],
        "overrides": ray.tune.grid_search(runs),
        "train_storage": str(train_storage),
        "mlflow_uri": ctx.uri,
        "mlflow_parent": ctx.parent_run_id,
        "kind": RunKind.SEED,
        "tags": {"study": spec.name, "experiment_key": key, "method_label": label},
    }
    path = ctx.dir / "tune" / f"{key}@seeds"
    ctx.log(f"[{key}] retraining the selected configuration with seeds {[r['seed'] for r in runs]}")
    tune_config = ray.tune.TuneConfig(num_samples=1, max_concurrent_trials=ctx.concurrency)
    results = fit_experiment(ctx, path, constants, tune_config, resume_errored=True)
    out = {}
    for r in results:
        seed = r.config["overrides"]["seed"]
        skey = seed_key(source, label, seed)
        info = selected_in_run(train_storage / trial_name(str((r.metrics or {}).get("trial_id"))))
        if r.error is not None or info is None:
            error = str(r.error).strip().splitlines()[-1][:300] if r.error else "no checkpoint"
            rec = {"status": "failed", "seed": seed, "error": error}
            ctx.log(f"[{skey}] failed: {error}")
        else:
            rec = {"status": "ok", "seed": seed, "checkpoint": info["checkpoint"], "metrics": info["metrics"]}
            rec["tau"] = info["tau"]
            m = rec["metrics"]
            ctx.log(f"[{skey}] valpx PxAP {m['valpx_pxap']:.2f}, valcl CL {m['valcl_cl']:.1f}")
        ctx.state.record("seeds", skey, rec)
        out[seed] = rec
    return out
