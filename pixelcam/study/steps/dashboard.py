"""Dashboard step: `dashboard.html` in the study directory, drawn from the study's MLflow records, with its
figures logged to the parent run. A broken figure never fails a study whose results are saved."""

from __future__ import annotations

from pixelcam.study.context import StudyContext


class DashboardStep:
    name = "dashboard"
    requires = ("evaluations",)
    produces = ("dashboard",)

    def skip_reason(self, ctx: StudyContext) -> str | None:
        return None if ctx.parent_run_id else "the study has no MLflow parent run to draw it from"

    def run(self, ctx: StudyContext) -> None:
        from pixelcam.report import build_dashboard

        try:
            build_dashboard(ctx.parent_run_id, ctx.dir / "dashboard.html")
        except Exception as exc:  # noqa: BLE001 - results are saved; a broken figure must not fail the study
            ctx.log(f"dashboard not built ({type(exc).__name__}: {exc}); retry: pixelcam dashboard {ctx.dir}")
            return
        ctx.state.mark("dashboard", "dashboard.html")
