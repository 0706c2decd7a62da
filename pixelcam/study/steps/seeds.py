"""Seeds step: every selected configuration retrained once per seed of `seeds` (baselines first, then each
PixelCAM model on its baseline *of the same seed*), so results carry mean ± 95 % CI over seeds. The tuned
run is the run of the study's own `seed` (not retrained; with several trials it was also selected on that
seed, so its number can be optimistic: the other seeds are not). Produces `seeds`: per `<key>@seed<s>` the
run's selected checkpoint and metrics."""

from __future__ import annotations

from typing import Any

from pixelcam.study.context import StudyContext, experiment_key, seed_key
from pixelcam.tracking import RunKind
from pixelcam.train.checkpoint import selected_in_run


class SeedsStep:
    name = "seeds"
    requires = ("experiments",)
    produces = ("seeds",)

    def run(self, ctx: StudyContext) -> None:
        spec = ctx.spec
        others = [s for s in spec.seeds if s != spec.seed]
        if not others:
            return
        for source in spec.sources:
            labels = list(spec.methods) + [lab for m in spec.methods for lab in spec.pixelcam_labels(m)]
            for label in labels:
                for seed in others:
                    train_seed(ctx, source, label, seed)


def train_seed(ctx: StudyContext, source: str, label: str, seed: int) -> dict[str, Any] | None:
    """Retrain the selected configuration of (source, label) with `seed`; its record (or None if the model
    has no tuned configuration or its baseline has no model of this seed)."""
    from pixelcam.train.runner import train

    spec, key = ctx.spec, seed_key(source, label, seed)
    done = ctx.state["seeds"].get(key)
    if done is not None:
        return done
    exp = ctx.state["experiments"].get(experiment_key(source, label), {})
    if not exp.get("checkpoint"):
        return None
    baseline, fixed = spec.variant(label)
    cfg = spec.base_config("pixelcam" if baseline else label, source).replace(
        **fixed, **exp.get("params", {})
    )
    if baseline:
        parent = ctx.seed_checkpoint(source, baseline, seed)
        if parent is None:
            rec = {"status": "skipped", "reason": f"baseline {baseline} has no model of seed {seed}"}
            ctx.state.record("seeds", key, rec)
            return rec
        cfg = cfg.replace(pseudo_labels_from=parent)
    storage = ctx.dir / "seeds" / experiment_key(source, label)
    cfg = cfg.replace(seed=seed, name=f"seed-{seed}", storage=str(storage))
    run_dir = storage / cfg.run_name()
    info = selected_in_run(run_dir) if (run_dir / "selected.json").is_file() else None
    if info is None:
        ctx.log(f"[{key}] retraining the selected configuration with seed {seed}")
        train(
            cfg,
            resume=run_dir.exists(),
            parent_run_id=ctx.parent_run_id,
            mlflow_uri=ctx.uri,
            extra_tags={
                "study": spec.name,
                "experiment_key": experiment_key(source, label),
                "method_label": label,
                "seed": str(seed),
            },
            dataset=ctx.dataset,
            kind=RunKind.SEED,
        )
        info = selected_in_run(run_dir)
    rec = {
        "status": "ok",
        "seed": seed,
        "checkpoint": info["checkpoint"],
        "metrics": info["metrics"],
        "tau": info["tau"],
    }
    ctx.state.record("seeds", key, rec)
    m = rec["metrics"]
    ctx.log(f"[{key}] valpx PxAP {m['valpx_pxap']:.2f}, valcl CL {m['valcl_cl']:.1f}")
    return rec
