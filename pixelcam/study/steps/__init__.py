"""A study is a pipeline of steps. Each step declares the state sections it reads (`requires`) and writes
(`produces`), is idempotent (work recorded in the state is not redone, so `resume` is running the pipeline
again) and runs on a `StudyContext`. Adding a step: one module here and one line in `PIPELINE`."""

from __future__ import annotations

from typing import Protocol

from pixelcam.study.context import StudyContext
from pixelcam.study.steps.dashboard import DashboardStep
from pixelcam.study.steps.evaluate import EvaluateStep
from pixelcam.study.steps.ood import OODStep
from pixelcam.study.steps.seeds import SeedsStep
from pixelcam.study.steps.stain import StainStep
from pixelcam.study.steps.tune import TuneStep


class Step(Protocol):
    name: str
    requires: tuple[str, ...]
    produces: tuple[str, ...]

    def skip_reason(self, ctx: StudyContext) -> str | None:
        """Why the step has nothing to do in this study (printed on its console line), else None."""

    def run(self, ctx: StudyContext) -> None: ...


PIPELINE: tuple[Step, ...] = (
    TuneStep(),
    SeedsStep(),
    EvaluateStep(),
    StainStep(),
    OODStep(),
    DashboardStep(),
)

__all__ = ["PIPELINE", "Step"]
