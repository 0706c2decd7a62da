"""OOD step: the matrix of PxAP and CL of every selected model on every target, aggregated over seeds
(`ood.json`, `ood.csv`, a printed table with the paper's published values beside ours); the parent MLflow
run gets the same aggregates (mean, CI half-width and n per pairing and model) and the files, and every
selected model is logged as an MLflow LoggedModel with its test metrics (`study/models.py`)."""

from __future__ import annotations

import json

from pixelcam.results import OODMatrix
from pixelcam.study.context import StudyContext
from pixelcam.study.models import log_study_models
from pixelcam.study.ood import format_ood, ood_csv, ood_matrix
from pixelcam.tracking import pair_metric


class OODStep:
    name = "ood"
    requires = ("experiments", "evaluations")
    produces = ("ood",)

    def skip_reason(self, ctx: StudyContext) -> str | None:
        return None

    def run(self, ctx: StudyContext) -> None:
        classes = {s: len(ctx.dataset.class_names(s)) for s in ctx.spec.sources}
        matrix = ood_matrix(ctx.spec, ctx.state, ctx.targets, classes)
        (ctx.dir / "ood.json").write_json(matrix.to_json())
        (ctx.dir / "ood.csv").write_text(ood_csv(matrix))
        table = format_ood(matrix, ctx.spec.published)
        ctx.log(table)
        ctx.state.mark("ood", {"json": "ood.json", "csv": "ood.csv"})
        ctx.outputs["ood"] = matrix
        parent = ctx.parent_logger()
        if parent is not None:
            parent.metrics(summary_metrics(matrix))
            parent.text(json.dumps(matrix.to_json(), indent=2), "ood.json")
            parent.text(ood_csv(matrix), "ood.csv")
            parent.text(table, "ood_table.txt")
            models = log_study_models(ctx.spec, ctx.state, matrix.to_json(), ctx.uri, log=ctx.log)
            ctx.log(
                f"{len(models)} selected model(s) logged to MLflow as LoggedModels; register them with: "
                f"pixelcam models register {ctx.dir} --alias champion"
            )


def summary_metrics(matrix: OODMatrix) -> dict[str, float]:
    """The parent run's summary: per model and pairing, `<metric>` (the mean over seeds), `<metric>_ci95`
    (its 95 % CI half-width, with >= 2 seeds) and `<metric>_n` (the number of seeds); per target,
    `roi_prior__<target>` (the PxAP of a constant map: the floor)."""
    out: dict[str, float] = {f"roi_prior__{t}": v for t, v in matrix.roi_prior.items()}
    for row in matrix.rows:
        for metric, by_target in row.cells.items():
            for target, cell in by_target.items():
                out[pair_metric(metric, row.source, target, model=row.method)] = cell.mean
                out[pair_metric(f"{metric}_n", row.source, target, model=row.method)] = float(cell.n)
                if cell.half_width is not None:
                    ci = pair_metric(f"{metric}_ci95", row.source, target, model=row.method)
                    out[ci] = cell.half_width
    return out
