"""OOD step: the matrix of PxAP and CL of every selected model on every target (`ood.json`, `ood.csv`, a
printed table with the paper's published values beside ours), also logged to the parent run."""

from __future__ import annotations

import json

from pixelcam.study.context import StudyContext
from pixelcam.study.ood import chance_warnings, format_ood, ood_csv, ood_matrix


class OODStep:
    name = "ood"
    requires = ("experiments", "evaluations")
    produces = ("ood",)

    def run(self, ctx: StudyContext) -> None:
        matrix = ood_matrix(ctx.spec, ctx.state.data, ctx.targets)
        classes = {s: len(ctx.dataset.class_names(s)) for s in ctx.spec.sources}
        matrix["warnings"] = chance_warnings(matrix, classes)
        (ctx.dir / "ood.json").write_json(matrix)
        (ctx.dir / "ood.csv").write_text(ood_csv(matrix))
        table = format_ood(matrix, ctx.spec.published)
        if matrix["warnings"]:
            table += "\n\nWARNING (near chance):\n" + "\n".join(f"  {w}" for w in matrix["warnings"])
        ctx.log(table)
        ctx.state["ood"] = {"json": "ood.json", "csv": "ood.csv"}
        ctx.outputs["ood"] = matrix
        parent = ctx.parent_logger()
        if parent is not None:
            parent.text(json.dumps(matrix, indent=2), "ood.json")
            parent.text(ood_csv(matrix), "ood.csv")
            parent.text(table, "ood_table.txt")
