"""Typed records of results that cross layers: built in one place, read in one place, stored as JSON.

- `EvaluationReport` (built by `evaluation.evaluate`, read by the study, the CLI and reports) with a
  `DomainResult` per target, `ImageDetails` and a `Gallery` of maps per target;
- `SelectedCheckpoint` (what a run directory says it selected: `runtime.checkpoint.selected_in_run`);
- `ExperimentRecord` and `SeedRecord` (a study's tuned model and its retrainings: the study state);
- `OODCell` (one model on one target: every seed's value with their mean, 95 % CI and n, the value of the
  study's own seed, and whether the model classifies above chance), in `OODRow`s of an `OODMatrix`.

Records are pydantic models (the project's one validation library): unknown keys are errors, so a state
file or report of another shape fails when it is read, naming what is wrong, instead of as a KeyError later.
NaN is a valid float (an undefined per-image PxAP) and survives the JSON round trip.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

R = TypeVar("R", bound="Record")


class Record(BaseModel):
    """Base of every result record: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN kept as NaN, as `json.dumps` writes it)."""
        return self.model_dump(mode="python")

    @classmethod
    def from_json(cls: type[R], data: Any) -> R:
        return cls.model_validate(data)


# Model labels of a study: a baseline's own name (`cam`), or `<method>-<baseline>` for a model trained on its
# pseudo-labels (`pixelcam-cam`, `negev-cam`; a PixelCAM ablation adds `.<field>-<value>`).
VARIANT_NAMES = {"negev": "NEGEV", "pixelcam": "PixelCAM"}  # the pseudo-label methods, as tables name them


def variant_label(method: str, baseline: str) -> str:
    return f"{method}-{baseline}"


def label_parts(label: str) -> tuple[str | None, str]:
    """(pseudo-label method, baseline) of a variant's label; (None, label) of a baseline's."""
    for method in VARIANT_NAMES:
        if label.startswith(f"{method}-"):
            return method, label[len(method) + 1 :].split(".", 1)[0]
    return None, label


def display_name(label: str) -> str:
    """What verdicts call a model: "PixelCAM", "NEGEV" or "baseline"."""
    method, _ = label_parts(label)
    return VARIANT_NAMES[method] if method else "baseline"


class DomainResult(Record):
    """One target's test split: PxAP and CL in percent, TP*/FN*/TN*/FP* at the run's tau, and the ROI prior
    (the PxAP of a constant map on the same pixels; None in reports written before it was recorded)."""

    pxap: float
    cl: float
    images: int
    tp_star: float
    fn_star: float
    tn_star: float
    fp_star: float
    roi_prior: float | None = None


class EvaluationReport(Record):
    """`pixelcam evaluate`'s report: one `DomainResult` per target, with what produced them."""

    checkpoint: str
    method: str
    backbone: str
    source: str
    split: str
    tau: float
    normalization: str
    eval_size: int | str
    precision: str
    channels_last: bool
    dataset_hash: str
    results: dict[str, DomainResult]
    warnings: list[str] = Field(default_factory=list)


class ImageDetails(Record):
    """Per-image values of one split: PxAP and separability J (NaN where an image has no ROI or no
    background, so AP and J are undefined)."""

    domain: str
    split: str
    image_ids: list[str]
    labels: list[int]
    pxap: list[float]
    j: list[float]


@dataclass(frozen=True)
class Gallery:
    """The first images of each class with their ROI and map: image (k, S, S, 3) uint8, mask (k, S, S) uint8,
    map (k, S, S) float16, label (k,), image_id (k,)."""

    image: np.ndarray
    mask: np.ndarray
    map: np.ndarray
    label: np.ndarray
    image_id: np.ndarray

    FIELDS = ("image", "mask", "map", "label", "image_id")

    def to_bytes(self) -> bytes:
        """The gallery as .npz bytes (what an evaluation run stores in MLflow)."""
        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: getattr(self, k) for k in self.FIELDS})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Gallery:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(**{k: z[k] for k in cls.FIELDS})

    def __len__(self) -> int:
        return int(self.label.shape[0]) if self.label.ndim else 0


class SelectedCheckpoint(Record):
    """A run directory's selected checkpoint (its URI or path) with the metrics it was selected on."""

    checkpoint: str
    epoch: int
    metrics: dict[str, float]
    tau: float
    selection: str | None = None
    mlflow_run_id: str | None = None
    by_selection: dict[str, str] = Field(default_factory=dict)


ExperimentStatus = Literal["ok", "failed", "skipped", "interrupted"]


class ExperimentRecord(Record):
    """A study's tuned model (`state.json` `experiments`): its best trial's checkpoint, metrics and searched
    parameters, or why it has none."""

    status: ExperimentStatus
    reason: str | None = None
    best_trial: str | None = None
    score: float | None = None
    checkpoint: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    tau: float | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    mlflow_run_id: str | None = None
    trials_ok: int = 0
    trials_failed: int = 0
    trial_epochs: int = 0
    errors: list[str] = Field(default_factory=list)


class SeedRecord(Record):
    """A tuned model retrained with another seed (`state.json` `seeds`)."""

    status: ExperimentStatus
    seed: int | None = None
    checkpoint: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    tau: float | None = None
    error: str | None = None
    reason: str | None = None


class OODCell(Record):
    """One model on one target for one metric: the value of every seed evaluated (in `seeds` order), their
    mean and 95 % CI half-width (None below 2 seeds), and the study's own seed's value."""

    seeds: list[int]
    values: list[float]
    mean: float
    half_width: float | None
    n: int
    study_seed_value: float | None = None


class OODRow(Record):
    """One selected model (label <- source): its cells per metric and target, and its selection."""

    method: str
    source: str
    status: str
    cells: dict[str, dict[str, OODCell]] = Field(default_factory=dict)  # metric -> target -> cell
    params: dict[str, Any] = Field(default_factory=dict)
    valpx_pxap: float | None = None
    valcl_cl: float | None = None
    near_chance: list[str] = Field(default_factory=list)  # one line per seed/target at chance

    def cell(self, metric: str, target: str) -> OODCell | None:
        return self.cells.get(metric, {}).get(target)


PRIOR_LABEL = "ROI prior (a constant map)"  # the row of every table: the PxAP a map that knows nothing scores


class OODMatrix(Record):
    """The study's table: every selected model on every target, aggregated over seeds."""

    study: str
    targets: list[str]
    seeds: list[int] = Field(default_factory=list)
    rows: list[OODRow]
    warnings: list[str] = Field(default_factory=list)
    # per target: its test split's ROI prior, the PxAP of a constant map (the floor a model must beat)
    roi_prior: dict[str, float] = Field(default_factory=dict)

    def prior_text(self, target: str) -> str:
        """A target's ROI prior as the tables show it ("-" when its reports predate it)."""
        return f"{self.roi_prior[target]:.2f}" if target in self.roi_prior else "-"

    def max_seeds(self) -> int:
        """The most seeds any cell aggregates (0 without results)."""
        return max((c.n for r in self.rows for m in r.cells.values() for c in m.values()), default=0)
