"""Seeds step: every selected configuration retrained once per seed of `seeds` (baselines first, then each
PixelCAM model on its baseline *of the same seed*), so results carry mean ± 95 % CI over seeds. The tuned
run is the run of the study's own `seed` (not retrained; with several trials it was also selected on that
seed, so its number can be optimistic: the other seeds are not).

The seeds of every baseline on every source run as one wave (`study.waves`: one Tune experiment, FIFO,
`max_concurrent` at once), then those of every PixelCAM model; each is a Ray Train run recorded in MLflow as
a run of kind `seed`. Produces `seeds`: per `<key>@seed<s>` the run's selected checkpoint and metrics."""

from __future__ import annotations

from typing import Any

from pixelcam.results import SeedRecord
from pixelcam.study.context import StudyContext, experiment_key, seed_key, with_seed
from pixelcam.tracking import RunKind


class SeedsStep:
    name = "seeds"
    requires = ("experiments",)
    produces = ("seeds",)

    def skip_reason(self, ctx: StudyContext) -> str | None:
        if not [s for s in ctx.spec.seeds if s != ctx.spec.seed]:
            return "the spec lists no seed besides the study's own (`seeds`)"
        return None

    def run(self, ctx: StudyContext) -> None:
        spec = ctx.spec
        train_seeds(ctx, "baselines", list(spec.methods))
        labels = [x for m in spec.methods for x in spec.variant_labels(m)]
        if labels:
            train_seeds(ctx, "pixelcam", labels)


def seed_runs(ctx: StudyContext, source: str, label: str) -> list[dict[str, Any]]:
    """The wave runs that retrain the selected configuration of (source, label) with every other seed not
    trained yet (a PixelCAM model without its baseline of that seed is recorded as skipped)."""
    from pixelcam.study.waves import wave_run

    spec, key = ctx.spec, experiment_key(source, label)
    todo = [
        s for s in spec.seeds if s != spec.seed and ctx.state.seed_run(seed_key(source, label, s)) is None
    ]
    exp = ctx.state.experiment(key)
    if not todo or exp is None or not exp.checkpoint:
        return []
    var = spec.variant(label)
    baseline = var.baseline
    cfg = spec.base_config(var.method, source, baseline).replace(**var.fixed, **exp.params)
    tags = {"study": spec.name, "method_label": label}
    runs = []
    for seed in todo:
        overrides: dict[str, Any] = {"seed": seed}
        if baseline:
            parent = ctx.seed_checkpoint(source, baseline, seed)
            if parent is None:
                reason = f"baseline {baseline} has no model of seed {seed}"
                rec = SeedRecord(status="skipped", seed=seed, reason=reason)
                ctx.state.put("seeds", seed_key(source, label, seed), rec)
                continue
            overrides["pseudo_labels_from"] = parent
        runs.append(wave_run(key, cfg.to_dict(), ctx.dir / "seeds" / key, tags, overrides))
    return runs


def train_seeds(ctx: StudyContext, phase: str, labels: list[str]) -> None:
    """Retrain the selected configurations of `labels` on every source with every other seed, as one wave
    (`study.waves`); records each run under `<key>@seed<s>` (written together at the wave's end)."""
    from pixelcam.study.waves import run_error, run_wave

    runs = [r for source in ctx.spec.sources for label in labels for r in seed_runs(ctx, source, label)]
    if not runs:
        return
    for key in dict.fromkeys(r["key"] for r in runs):
        seeds = [r["overrides"]["seed"] for r in runs if r["key"] == key]
        ctx.log(f"[{key}] retraining the selected configuration with seeds {seeds}")
    for run, result, info in run_wave(ctx, f"seeds-{phase}", runs, kind=RunKind.SEED):
        seed = run["overrides"]["seed"]
        skey = with_seed(run["key"], seed)
        error = run_error(result, info)
        if error is not None or info is None:
            rec = SeedRecord(status="failed", seed=seed, error=error)
            ctx.log(f"[{skey}] failed: {error}")
        else:
            rec = SeedRecord(
                status="ok", seed=seed, checkpoint=info.checkpoint, metrics=info.metrics, tau=info.tau
            )
            m = rec.metrics
            ctx.log(f"[{skey}] valpx PxAP {m['valpx_pxap']:.2f}, valcl CL {m['valcl_cl']:.1f}")
        ctx.state.put("seeds", skey, rec, save=False)
    ctx.state.save()
