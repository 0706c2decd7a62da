"""The sections of a study spec other than the study itself: its budget, resources, stain sweep and ablation,
and which TrainConfig fields a study may search or ablate (`spec.py` composes them into `StudySpec`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from pixelcam.validation import ConfigModel, field_error, one_of

NOT_SEARCHABLE = (
    "method",
    "data",
    "source",
    "name",
    "storage",
    "pseudo_labels_from",
    "num_workers",
    "use_gpu",
    "gpus_per_worker",
)


def pixelcam_params() -> tuple[str, ...]:
    """TrainConfig fields only PixelCAM reads (declared on the method class)."""
    from pixelcam.models.factory import method_class

    return method_class("pixelcam").train_params


def ablatable() -> tuple[str, ...]:
    return pixelcam_params() + ("selection", "lr", "lr_decay", "threshold_criterion")


SEARCHERS = ("optuna", "grid")


class Budget(ConfigModel):
    trials: Annotated[int, Field(ge=1)] = 4  # optuna: trials per experiment; grid: every combination once
    epochs: Annotated[int, Field(ge=1)] = 10  # epochs of every trial (ASHA's max_t)
    grace_period: Annotated[int, Field(ge=1)] = 2  # epochs before ASHA may stop a trial
    reduction_factor: Annotated[int, Field(ge=2)] = 2  # ASHA keeps 1 / reduction_factor trials per rung
    max_concurrent: Annotated[int, Field(ge=1)] | None = None  # default: as many as the cluster fits

    @model_validator(mode="after")
    def _grace_within_epochs(self) -> Budget:
        if self.grace_period > self.epochs:
            raise field_error("grace_period", f"{self.grace_period} exceeds budget.epochs={self.epochs}")
        return self


class Resources(ConfigModel):
    workers: Annotated[int, Field(ge=1)] = 2  # Train workers per trial (1: in-process, several: DDP)
    cpus_per_worker: Annotated[float, Field(gt=0)] | None = None  # None: one CPU to Ray Data, share the rest
    # a fraction packs trials on one GPU (0.25: four at once); above 1, whole GPUs only (Ray's rule)
    gpus_per_worker: Annotated[float, Field(ge=0)] = 0.0
    # retries of a failed trial (Tune's FailureConfig): a retried trial continues from its latest checkpoint
    # and MLflow run, so a lost node costs the epochs since then; 0 records the failure and goes on
    max_failures: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _whole_gpus_above_one(self) -> Resources:
        g = self.gpus_per_worker
        if g > 1 and g != int(g):
            raise field_error("gpus_per_worker", f"{g:g}: fractions only below 1 (Ray's rule)")
        return self


class StainShift(ConfigModel):
    """The staining-robustness sweep run on every selected model after the OOD evaluation."""

    method: str = "reinhard"  # a registered stain transform: reinhard, macenko, hed
    # "styles": `levels` distinct styles from as many reference images, ordered by distance (the paper);
    # "interpolate": one fitted stain approached in `levels` steps up to `max_strength` (ours)
    mode: str = "styles"
    reference: str | None = None  # domain whose stain is approached; default: the first other domain
    domains: Annotated[list[str], Field(min_length=1)] | None = None  # default: each model's own source
    levels: Annotated[int, Field(ge=1, le=50)] = 10  # shift levels after level 0 (the unchanged split)
    max_strength: Annotated[float, Field(gt=0, le=3)] = 1.0  # strength of the last level (1 = full stain)
    fit_images: Annotated[int, Field(ge=1)] = 64  # reference images a stain is fitted on (interpolate)

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        from pixelcam.evaluation.stain_sweep import MODES

        return one_of(value, MODES)

    @field_validator("method")
    @classmethod
    def _registered(cls, value: str) -> str:
        from pixelcam.data.stain import list_stain_transforms

        return one_of(value, list_stain_transforms())


class Ablation(ConfigModel):
    """One PixelCAM model per value of `field` (fixed, not searched), e.g. lambda for the paper's Table 17."""

    field: str  # a PixelCAM setting, selection, lr, lr_decay or threshold_criterion
    values: list[Any]  # >= 2 distinct values: one PixelCAM model each

    @field_validator("field")
    @classmethod
    def _ablatable(cls, value: str) -> str:
        if value not in ablatable():
            raise ValueError(f"{value!r} cannot be ablated; expected one of {list(ablatable())}")
        return value

    @field_validator("values")
    @classmethod
    def _distinct(cls, values: list[Any]) -> list[Any]:
        if len(values) < 2 or len(set(map(str, values))) != len(values):
            raise ValueError(f"expected a list of >= 2 distinct values, got {values!r}")
        return values

    def label(self, baseline: str, value: Any) -> str:
        return f"pixelcam-{baseline}.{self.field}-{value}"
