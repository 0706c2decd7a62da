"""Evaluate step: every selected model on every target's test split (the OOD matrix), each recorded as an
MLflow `evaluation` run with PxAP/CL per pairing, per-image details (for the paired t-test and J) and a
gallery of maps. Produces `evaluations`."""

from __future__ import annotations

import json
from typing import Any

from pixelcam.study.context import StudyContext, experiment_key, seed_key
from pixelcam.study.steps.tune import close_killed_children
from pixelcam.tracking import RunKind, pair_metric


class EvaluateStep:
    name = "evaluate"
    requires = ("experiments",)
    produces = ("evaluations",)

    def run(self, ctx: StudyContext) -> None:
        for source, method in ctx.models():
            evaluate_model(ctx, source, method)
            for seed in ctx.spec.seeds:
                if seed != ctx.spec.seed:
                    evaluate_model(ctx, source, method, seed)
        close_killed_children(ctx)  # trials stopped at their last report, now surely gone


def evaluate_model(
    ctx: StudyContext, source: str, method: str, seed: int | None = None
) -> dict[str, Any] | None:
    """Evaluate one selected model (skipped when it has no checkpoint or was evaluated before); `seed`: its
    retraining with that seed (`seeds` step) instead of the tuned run."""
    from pixelcam.evaluation.details import gallery_bytes
    from pixelcam.evaluation.evaluate import evaluate_with_details

    exp = ctx.state["experiments"].get(experiment_key(source, method), {})
    if seed is None:
        key, rec = experiment_key(source, method), exp
    else:
        key = seed_key(source, method, seed)
        rec = ctx.state["seeds"].get(key, {})
    if key in ctx.state["evaluations"]:
        return ctx.state["evaluations"][key]
    if not rec.get("checkpoint"):
        return None
    report, per_image = evaluate_with_details(rec["checkpoint"], ctx.dataset, ctx.targets)
    tags = {"method": method, "source": source, "best_trial": str(exp.get("best_trial"))}
    if ctx.spec.seeds:
        tags["seed"] = str(ctx.spec.seed if seed is None else seed)
    log = ctx.child_run(
        RunKind.EVALUATION, f"eval-{key}", tags, {k: str(v) for k, v in exp.get("params", {}).items()}
    )
    if log is not None:
        metrics = {}
        for tgt, row in report["results"].items():
            metrics[pair_metric("pxap", source, tgt)] = row["pxap"]
            metrics[pair_metric("cl", source, tgt)] = row["cl"]
        metrics["selected_valcl_cl"] = rec["metrics"]["valcl_cl"]  # for the dashboard's near-chance warning
        metrics["chance_cl"] = 100.0 / len(ctx.dataset.class_names(source))
        log.metrics(metrics)
        log.text(json.dumps(report, indent=2), "evaluation.json")
        for tgt, (details, gallery) in per_image.items():  # per-image PxAP and J, a gallery: the dashboard's
            log.text(json.dumps(details), f"details/{tgt}.json")
            log.data(gallery_bytes(gallery), f"gallery/{tgt}.npz")
        log.finish()
        if seed is None:  # the parent run's summary holds the tuned models (the OOD step adds the CIs)
            ctx.parent_logger().metrics(
                {
                    pair_metric("pxap", source, t, model=method): r["pxap"]
                    for t, r in report["results"].items()
                }
                | {pair_metric("cl", source, t, model=method): r["cl"] for t, r in report["results"].items()}
            )
    ctx.state.record("evaluations", key, report)
    cells = "  ".join(f"{t}: PxAP {r['pxap']:.2f} CL {r['cl']:.1f}" for t, r in report["results"].items())
    ctx.log(f"[{key}] test  {cells}")
    return report
