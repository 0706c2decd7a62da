"""Evaluate step: every selected model on every target's test split (the OOD matrix), each recorded as an
MLflow `evaluation` run with PxAP/CL per pairing, per-image details (for the paired t-test and J) and a
gallery of maps. Produces `evaluations`."""

from __future__ import annotations

import json

from pixelcam.results import EvaluationReport, Gallery, ImageDetails
from pixelcam.study.context import StudyContext, experiment_key, seed_key
from pixelcam.study.steps.tune import close_killed_children
from pixelcam.tracking import RunKind, RunLogger, pair_metric


class EvaluateStep:
    name = "evaluate"
    requires = ("experiments",)
    produces = ("evaluations",)

    def skip_reason(self, ctx: StudyContext) -> str | None:
        return None

    def run(self, ctx: StudyContext) -> None:
        for source, method in ctx.models():
            evaluate_model(ctx, source, method)
            for seed in ctx.spec.seeds:
                if seed != ctx.spec.seed:
                    evaluate_model(ctx, source, method, seed)
        close_killed_children(ctx)  # trials stopped at their last report, now surely gone


def evaluate_model(
    ctx: StudyContext, source: str, method: str, seed: int | None = None
) -> EvaluationReport | None:
    """Evaluate one selected model (skipped when it has no checkpoint or was evaluated before); `seed`: its
    retraining with that seed (`seeds` step) instead of the tuned run."""
    from pixelcam.evaluation.evaluate import evaluate_with_details

    exp = ctx.state.experiment(experiment_key(source, method))
    key = experiment_key(source, method) if seed is None else seed_key(source, method, seed)
    rec = exp if seed is None else ctx.state.seed_run(key)
    done = ctx.state.evaluation(key)
    if done is not None:
        return done
    if exp is None or rec is None or not rec.checkpoint:
        return None
    device = ctx.eval_device
    report, per_image = evaluate_with_details(rec.checkpoint, ctx.dataset, ctx.targets, device=device)
    tags = {"method": method, "source": source, "best_trial": str(exp.best_trial)}
    if ctx.spec.seeds:
        tags["seed"] = str(ctx.spec.seed if seed is None else seed)
    log = ctx.child_run(RunKind.EVALUATION, f"eval-{key}", tags, {k: str(v) for k, v in exp.params.items()})
    if log is not None:
        _log_evaluation(ctx, log, source, report, per_image, rec.metrics["valcl_cl"])
    ctx.state.put("evaluations", key, report)
    cells = "  ".join(f"{t}: PxAP {r.pxap:.2f} CL {r.cl:.1f}" for t, r in report.results.items())
    ctx.log(f"[{key}] test  {cells}")
    return report


def _log_evaluation(
    ctx: StudyContext,
    log: RunLogger,
    source: str,
    report: EvaluationReport,
    per_image: dict[str, tuple[ImageDetails, Gallery]],
    valcl_cl: float,
) -> None:
    """The evaluation run: PxAP/CL per pairing, the report, per-image details and galleries (the dashboard's
    bars, t-tests, J histograms and map gallery)."""
    metrics = {}
    for tgt, row in report.results.items():
        metrics[pair_metric("pxap", source, tgt)] = row.pxap
        metrics[pair_metric("cl", source, tgt)] = row.cl
    metrics["selected_valcl_cl"] = valcl_cl  # for the dashboard's near-chance warning
    metrics["chance_cl"] = 100.0 / len(ctx.dataset.class_names(source))
    log.metrics(metrics)
    log.text(json.dumps(report.to_json(), indent=2), "evaluation.json")
    for tgt, (details, gallery) in per_image.items():
        log.text(json.dumps(details.to_json()), f"details/{tgt}.json")
        log.data(gallery.to_bytes(), f"gallery/{tgt}.npz")
    log.finish()
