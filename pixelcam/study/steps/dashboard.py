"""Dashboard step: the paired t-tests printed and logged to the parent run (`paired_tests.json`), and
`dashboard.html` in the study directory, drawn from the study's MLflow records, with its figures logged to
the parent run. A broken figure never fails a study whose results are saved."""

from __future__ import annotations

import json

from pixelcam.study.context import StudyContext


class DashboardStep:
    name = "dashboard"
    requires = ("evaluations",)
    produces = ("dashboard",)

    def skip_reason(self, ctx: StudyContext) -> str | None:
        return None if ctx.parent_run_id else "the study has no MLflow parent run to draw it from"

    def run(self, ctx: StudyContext) -> None:
        from pixelcam.report import build_dashboard, load_records
        from pixelcam.report.compare import format_paired_tests
        from pixelcam.report.plots import paired_tests

        try:
            records = load_records(ctx.parent_run_id)
            tests = paired_tests(records)  # baseline vs NEGEV / PixelCAM, NEGEV vs PixelCAM
            ctx.log(format_paired_tests(tests))
            parent = ctx.parent_logger()
            if parent is not None:
                parent.text(json.dumps(tests, indent=2), "paired_tests.json")
            build_dashboard(ctx.parent_run_id, ctx.dir / "dashboard.html", records=records)
        except Exception as exc:  # noqa: BLE001 - results are saved; a broken figure must not fail the study
            ctx.log(f"dashboard not built ({type(exc).__name__}: {exc}); retry: pixelcam dashboard {ctx.dir}")
            return
        ctx.state.mark("dashboard", "dashboard.html")
