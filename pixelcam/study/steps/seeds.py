"""Seeds step: every selected configuration retrained once per seed of `seeds` (baselines first, then each
PixelCAM model on its baseline *of the same seed*), so results carry mean ± 95 % CI over seeds. The tuned
run is the run of the study's own `seed` (not retrained; with several trials it was also selected on that
seed, so its number can be optimistic: the other seeds are not).

The seeds of every baseline on every source run as one wave (`study.waves`: one Tune experiment, FIFO,
`max_concurrent` at once), then those of every PixelCAM model; each is a Ray Train run recorded in MLflow as
a run of kind `seed`. When nothing is searched the configuration is known from the start, and the tune step
trains the seeds in its own two waves, beside the tuned runs (half the waves: no second start of the trial
processes, and fuller waves); this step then finds them done. Produces `seeds`: per `<key>@seed<s>` the
run's selected checkpoint and metrics."""

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
        spec = ctx.spec
        others = [s for s in spec.seeds if s != spec.seed]
        if not others:
            return "the spec lists no seed besides the study's own (`seeds`)"
        keys = [
            seed_key(src, label, s) for src in spec.sources for label in spec.all_methods() for s in others
        ]
        if all(ctx.state.seed_run(k) is not None for k in keys):
            return "every seed was trained beside the tuned runs (step 1: nothing is searched)"
        return None

    def run(self, ctx: StudyContext) -> None:
        spec = ctx.spec
        train_seeds(ctx, "baselines", list(spec.methods))
        labels = [x for m in spec.methods for x in spec.variant_labels(m)]
        if labels:
            train_seeds(ctx, "pixelcam", labels)


def seed_runs(ctx: StudyContext, source: str, label: str, fixed: bool = False) -> list[dict[str, Any]]:
    """The wave runs that retrain the selected configuration of (source, label) with every other seed not
    trained yet (a PixelCAM model without its baseline of that seed is recorded as skipped). `fixed`: nothing
    is searched, so the configuration is known before its tuned run ends (the tune step trains these beside
    it, `TuneStep`); otherwise it is the tuned run's, and none is retrained when that run has no model."""
    spec, key = ctx.spec, experiment_key(source, label)
    todo = [
        s for s in spec.seeds if s != spec.seed and ctx.state.seed_run(seed_key(source, label, s)) is None
    ]
    exp = ctx.state.experiment(key)
    if not todo or (not fixed and (exp is None or not exp.checkpoint)):
        return []
    if fixed and exp is not None and exp.status == "skipped":  # a PixelCAM model whose baseline has no model
        return []
    var = spec.variant(label)
    params = exp.params if exp is not None and not fixed else {}
    cfg = spec.base_config(var.method, source, var.baseline).replace(**var.fixed, **params)
    return [run for seed in todo if (run := _seed_run(ctx, source, label, cfg.to_dict(), seed)) is not None]


def _seed_run(
    ctx: StudyContext, source: str, label: str, base: dict[str, Any], seed: int
) -> dict[str, Any] | None:
    """One seed's wave run (a run of kind `seed`, in `seeds/<key>`); None, recorded as skipped, for a PixelCAM
    model whose baseline has no model of that seed."""
    from pixelcam.study.waves import wave_run

    key, baseline = experiment_key(source, label), ctx.spec.variant(label).baseline
    overrides: dict[str, Any] = {"seed": seed}
    if baseline:
        parent = ctx.seed_checkpoint(source, baseline, seed)
        if parent is None:
            reason = f"baseline {baseline} has no model of seed {seed}"
            ctx.state.put(
                "seeds", seed_key(source, label, seed), SeedRecord(status="skipped", seed=seed, reason=reason)
            )
            return None
        overrides["pseudo_labels_from"] = parent
    tags = {"study": ctx.spec.name, "method_label": label}
    return {**wave_run(key, base, ctx.dir / "seeds" / key, tags, overrides), "kind": RunKind.SEED}


def announce_seeds(ctx: StudyContext, runs: list[dict[str, Any]]) -> None:
    """One console line per model that seed runs retrain."""
    seeded = [r for r in runs if r.get("kind") == RunKind.SEED]
    for key in dict.fromkeys(r["key"] for r in seeded):
        seeds = [r["overrides"]["seed"] for r in seeded if r["key"] == key]
        ctx.log(f"[{key}] retraining the selected configuration with seeds {seeds}")


def record_seed_run(ctx: StudyContext, run: dict[str, Any], result: Any, info: Any) -> None:
    """Record a finished seed run under `<key>@seed<s>` (not saved: a wave's records are saved together)."""
    from pixelcam.study.waves import run_error

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


def train_seeds(ctx: StudyContext, phase: str, labels: list[str]) -> None:
    """Retrain the selected configurations of `labels` on every source with every other seed, as one wave
    (`study.waves`); records each run under `<key>@seed<s>` (written together at the wave's end)."""
    from pixelcam.study.waves import run_wave

    runs = [r for source in ctx.spec.sources for label in labels for r in seed_runs(ctx, source, label)]
    if not runs:
        return
    announce_seeds(ctx, runs)
    for run, result, info in run_wave(ctx, f"seeds-{phase}", runs):
        record_seed_run(ctx, run, result, info)
    ctx.state.save()
