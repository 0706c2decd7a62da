"""Stain step: every selected model swept over stain-shift levels (spec `stain_shift`) on its source's (or
the listed domains') test split, each as an MLflow `stain_sweep` run with the level as the step; writes
`stain.json`/`stain.csv`, prints the table and logs them to the parent run. Produces `stain`."""

from __future__ import annotations

import json
from typing import Any

from pixelcam.study.context import StudyContext, experiment_key
from pixelcam.study.stain import format_stain, stain_csv, sweep_plan
from pixelcam.tracking import RunKind, pair_metric


class StainStep:
    name = "stain"
    requires = ("experiments",)
    produces = ("stain",)

    def skip_reason(self, ctx: StudyContext) -> str | None:
        return "the spec has no stain_shift section" if ctx.spec.stain_shift is None else None

    def run(self, ctx: StudyContext) -> None:
        st = ctx.spec.stain_shift
        for source, method in ctx.models():
            key = experiment_key(source, method)
            if ctx.state.stain(key) is None:
                ctx.log(f"[{key}] stain-shift sweep ({st.method})")
            sweep_model(ctx, source, method)
        reports = ctx.state.stain_reports()
        (ctx.dir / "stain.json").write_json(reports)
        (ctx.dir / "stain.csv").write_text(stain_csv(reports))
        table = format_stain(reports)
        ctx.log(table)
        parent = ctx.parent_logger()
        if parent is not None and table:
            parent.text(json.dumps(reports, indent=2), "stain.json")
            parent.text(stain_csv(reports), "stain.csv")
            parent.text(table, "stain_table.txt")


def sweep_model(ctx: StudyContext, source: str, method: str) -> list[dict[str, Any]] | None:
    """Sweep one selected model (skipped when it has no checkpoint or was swept before)."""
    from pixelcam.evaluation.stain_sweep import stain_sweep

    st = ctx.spec.stain_shift
    key = experiment_key(source, method)
    done = ctx.state.stain(key)
    if done is not None:
        return done
    rec = ctx.state.experiment(key)
    if rec is None or not rec.checkpoint:
        return None
    reports = []
    for domain, ref in sweep_plan(ctx.spec, ctx.dataset.domains, source):
        rep = stain_sweep(
            rec.checkpoint,
            ctx.dataset,
            domain,
            ref,
            st.method,
            st.levels,
            st.max_strength,
            st.fit_images,
            mode=st.mode,
            device=ctx.eval_device,
        )
        rep["label"] = method
        reports.append(rep)
    tags = {"method": method, "source": source}
    log = ctx.child_run(
        RunKind.STAIN_SWEEP,
        f"stain-{key}",
        tags,
        {"stain": st.method, "levels": str(st.levels), "mode": st.mode},
    )
    if log is not None:
        for rep in reports:
            for row in rep["rows"]:
                log.metrics(
                    {
                        pair_metric(f"stain_{m}", source, rep["domain"]): row[k]
                        for m, k in (("pxap", "pxap"), ("cl", "cl"), ("delta_e", "delta_e"))
                    },
                    step=row["level"],
                )
        log.text(json.dumps(reports, indent=2), "stain_sweep.json")
        log.finish()
    ctx.state.put("stain", key, reports)
    return reports
