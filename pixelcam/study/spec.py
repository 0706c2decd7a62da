"""Study specs (YAML in `studies/`): what to tune, on which sources, evaluated on which targets.

```yaml
name: quickstart
data: data/synth
sources: [synth-colon, synth-lymph]
targets: [synth-colon, synth-lymph]      # default: every domain of the dataset
methods: [cam, deepmil]                  # baselines; PixelCAM is tuned on top of each (pixelcam: true)
pixelcam: true
backbone: resnet10t
selection: b-loc
search:                                  # Optuna (TPE) search space; lam and n apply to PixelCAM only
  lr: {low: 1.0e-4, high: 1.0e-2, log: true}
  lr_decay: {low: 0.1, high: 0.9}
  lam: {low: 1.0e-3, high: 1.0, log: true}
  n: {low: 1, high: 20, int: true}
  sampler: [pb, th]                      # a list is a categorical choice
budget: {trials: 2, epochs: 3, grace_period: 2}
resources: {workers: 2, cpus_per_worker: null, gpus_per_worker: 0}
train: {resize: 64, crop: 56, batch_size: 16}   # any other TrainConfig field, fixed for every trial
seed: 0
stain_shift: {method: reinhard, reference: synth-lymph, levels: 10}   # optional staining-robustness sweep
ablation: {field: lam, values: [0.001, 0.01, 0.1, 1.0]}  # optional: one PixelCAM model per value
published: {...}                         # the paper's numbers, printed beside ours
```
Every key is checked; errors name the file and the key path (e.g. `studies/x.yaml: budget.trials`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelcam.config import SELECTIONS, ConfigError, TrainConfig, read_yaml

PIXELCAM_ONLY = ("lam", "n", "sampler", "bg_area", "pixel_head_depth")
NOT_SEARCHABLE = (
    "method",
    "data",
    "source",
    "name",
    "storage",
    "pseudo_labels_from",
    "num_workers",
    "use_gpu",
)


@dataclass(frozen=True)
class Range:
    """A numeric search dimension: uniform (or log-uniform) on [low, high], integers when `int`."""

    low: float
    high: float
    log: bool = False
    int: bool = False


@dataclass(frozen=True)
class Choice:
    """A categorical search dimension."""

    values: tuple[Any, ...]


@dataclass
class Budget:
    trials: int = 4
    epochs: int = 10
    grace_period: int = 2
    reduction_factor: int = 2
    max_concurrent: int | None = None  # default: as many as the cluster fits


@dataclass
class Resources:
    workers: int = 2
    cpus_per_worker: float | None = None
    gpus_per_worker: float = 0.0


@dataclass
class StainShift:
    """The staining-robustness sweep run on every selected model after the OOD evaluation."""

    method: str = "reinhard"  # a registered stain transform: reinhard, macenko, hed
    reference: str | None = None  # domain whose stain is approached; default: the first other domain
    domains: list[str] | None = None  # test splits to shift; default: each model's own source
    levels: int = 10
    max_strength: float = 1.0  # strength of the last level (1 = the reference's full stain)
    fit_images: int = 64


ABLATABLE = PIXELCAM_ONLY + ("selection", "lr", "lr_decay", "threshold_criterion")


@dataclass
class Ablation:
    """One PixelCAM model per value of `field` (fixed, not searched), e.g. lambda for the paper's Table 17."""

    field: str = ""
    values: list[Any] = dataclasses.field(default_factory=list)

    def label(self, baseline: str, value: Any) -> str:
        return f"pixelcam-{baseline}.{self.field}-{value}"


@dataclass
class StudySpec:
    name: str
    data: str = "data/synth"
    sources: list[str] = field(default_factory=lambda: ["synth-colon"])
    targets: list[str] | None = None
    methods: list[str] = field(default_factory=lambda: ["cam"])
    pixelcam: bool = True
    backbone: str | None = None
    selection: str = "b-loc"
    search: dict[str, Range | Choice] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)
    resources: Resources = field(default_factory=Resources)
    train: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    storage: str = "studies-runs"
    experiment: str | None = None  # MLflow experiment (default: pixelcam-study-<name>)
    stain_shift: StainShift | None = None
    ablation: Ablation | None = None
    published: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source_file: str = ""

    def all_methods(self) -> list[str]:
        """Labels of every tuned model: the baselines, then the PixelCAM model(s) of each."""
        return list(self.methods) + [label for m in self.methods for label in self.pixelcam_labels(m)]

    def pixelcam_labels(self, baseline: str) -> list[str]:
        """`pixelcam-<baseline>`, or one `pixelcam-<baseline>.<field>-<value>` per ablation value."""
        if not self.pixelcam:
            return []
        if self.ablation is None:
            return [f"pixelcam-{baseline}"]
        return [self.ablation.label(baseline, v) for v in self.ablation.values]

    def variant(self, label: str) -> tuple[str | None, dict[str, Any]]:
        """(baseline, fixed overrides) of a PixelCAM label; (None, {}) for a baseline label."""
        for baseline in self.methods:
            if self.ablation is None and label == f"pixelcam-{baseline}":
                return baseline, {}
            if self.ablation is not None:
                for v in self.ablation.values:
                    if label == self.ablation.label(baseline, v):
                        return baseline, {self.ablation.field: v}
        return None, {}

    def mlflow_experiment(self) -> str:
        """The MLflow experiment of the study's parent run and of all its trial and evaluation runs."""
        return self.experiment or f"pixelcam-study-{self.name}"

    def base_config(self, method: str, source: str) -> TrainConfig:
        """The fixed part of every trial's TrainConfig for `method` on `source`."""
        cfg = TrainConfig.from_dict(dict(self.train), where=f"{self.source_file}: train")
        return cfg.replace(
            method=method,
            backbone=self.backbone,
            data=self.data,
            source=source,
            selection=self.selection,
            epochs=self.budget.epochs,
            seed=self.seed,
            num_workers=self.resources.workers,
            use_gpu=self.resources.gpus_per_worker > 0,
            cpus_per_worker=self.resources.cpus_per_worker,
            experiment=self.mlflow_experiment(),
        )

    def searched(self, pixelcam: bool) -> dict[str, Range | Choice]:
        return {k: v for k, v in self.search.items() if pixelcam or k not in PIXELCAM_ONLY}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _err(where: str, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{where}: {key}: {msg}")


def _typed(value: Any, kind: type, where: str, key: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise _err(where, key, f"expected {kind.__name__}, got {value!r}")
    return value


def _section(raw: Any, cls: type, where: str, key: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise _err(where, key, f"expected a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise _err(where, key, f"unknown key(s) {unknown}; expected some of {sorted(fields)}")
    out = {}
    for k, v in raw.items():
        default = getattr(cls(), k)
        if v is None:
            out[k] = None
        elif isinstance(default, bool):
            out[k] = _typed(v, bool, where, f"{key}.{k}")
        elif isinstance(default, float) or k == "cpus_per_worker":
            out[k] = _typed(v, float, where, f"{key}.{k}")
        elif isinstance(default, int) or k == "max_concurrent":
            out[k] = _typed(v, int, where, f"{key}.{k}")
        elif isinstance(default, list):
            out[k] = list(_typed(v, list, where, f"{key}.{k}"))
        else:
            out[k] = v
    return cls(**out)


def _dimension(raw: Any, where: str, key: str) -> Range | Choice:
    if isinstance(raw, list):
        if not raw:
            raise _err(where, key, "an empty list of choices")
        return Choice(tuple(raw))
    if not isinstance(raw, dict):
        raise _err(where, key, f"expected {{low, high[, log, int]}} or a list of choices, got {raw!r}")
    r = _section(raw, _RangeRaw, where, key)
    if r.low is None or r.high is None:
        raise _err(where, key, "needs both low and high")
    if not r.low < r.high:
        raise _err(where, key, f"low ({r.low}) must be < high ({r.high})")
    if r.log and r.low <= 0:
        raise _err(where, key, f"a log range needs low > 0, got {r.low}")
    return Range(float(r.low), float(r.high), bool(r.log), bool(r.int))


@dataclass
class _RangeRaw:
    low: float = math.nan
    high: float = math.nan
    log: bool = False
    int: bool = False


def _stain_shift(raw: Any, where: str) -> StainShift:
    from pixelcam.data.stain import list_stain_transforms

    st = _section(raw, StainShift, where, "stain_shift")
    if st.method not in list_stain_transforms():
        raise _err(
            where, "stain_shift.method", f"unknown {st.method!r}; expected one of {list_stain_transforms()}"
        )
    if st.reference is not None and not isinstance(st.reference, str):
        raise _err(where, "stain_shift.reference", f"expected a domain name, got {st.reference!r}")
    if st.domains is not None and (
        not isinstance(st.domains, list) or not st.domains or not all(isinstance(d, str) for d in st.domains)
    ):
        raise _err(where, "stain_shift.domains", f"expected a non-empty list of domains, got {st.domains!r}")
    if st.levels is None or not 1 <= st.levels <= 50:
        raise _err(where, "stain_shift.levels", f"must be in 1..50, got {st.levels}")
    if st.max_strength is None or not 0 < st.max_strength <= 3:
        raise _err(where, "stain_shift.max_strength", f"must be in (0, 3], got {st.max_strength}")
    if st.fit_images is None or st.fit_images < 1:
        raise _err(where, "stain_shift.fit_images", f"must be >= 1, got {st.fit_images}")
    return st


def _ablation(raw: Any, where: str) -> Ablation:
    if not isinstance(raw, dict) or set(raw) != {"field", "values"}:
        raise _err(where, "ablation", f"expected {{field: NAME, values: [...]}}, got {raw!r}")
    if raw["field"] not in ABLATABLE:
        raise _err(
            where, "ablation.field", f"{raw['field']!r} cannot be ablated; expected one of {list(ABLATABLE)}"
        )
    values = raw["values"]
    if not isinstance(values, list) or len(values) < 2 or len(set(map(str, values))) != len(values):
        raise _err(where, "ablation.values", f"expected a list of >= 2 distinct values, got {values!r}")
    return Ablation(raw["field"], list(values))


PUBLISHED_METRICS = ("pxap", "cl")


def _published(raw: Any, where: str) -> dict[str, Any]:
    """{model label: {pxap|cl: {"<source>-><target>": number}}}, plus optional `source`/`note` strings."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _err(where, "published", f"expected a mapping, got {raw!r}")
    for label, block in raw.items():
        if label in ("source", "note"):
            if not isinstance(block, str):
                raise _err(where, f"published.{label}", f"expected text, got {block!r}")
            continue
        if not isinstance(block, dict):
            raise _err(where, f"published.{label}", f"expected {{pxap: {{src->tgt: value}}}}, got {block!r}")
        for metric, cells in block.items():
            key = f"published.{label}.{metric}"
            if metric not in PUBLISHED_METRICS or not isinstance(cells, dict):
                raise _err(
                    where, key, f"expected one of {list(PUBLISHED_METRICS)} mapping 'src->tgt' to a value"
                )
            for pair, v in cells.items():
                if "->" not in str(pair) or isinstance(v, bool) or not isinstance(v, int | float):
                    raise _err(where, f"{key}.{pair}", f"expected 'source->target': number, got {v!r}")
    return dict(raw)


def load_spec(path: str | os.PathLike) -> StudySpec:
    """Read and validate a study spec; ConfigError names the file and the key path."""
    return spec_from_dict(read_yaml(path, "study spec"), str(Path(path)))


def spec_from_dict(raw: Any, where: str = "study") -> StudySpec:
    from pixelcam.models.backbones import list_backbones
    from pixelcam.models.factory import BASELINES

    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name for f in dataclasses.fields(StudySpec)} - {"source_file"}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(fields)}")
    if not raw.get("name") or not isinstance(raw["name"], str):
        raise _err(where, "name", "a study needs a name (letters, digits, - and _)")
    name = raw["name"]
    if not all(c.isalnum() or c in "-_" for c in name):
        raise _err(where, "name", f"{name!r} may only contain letters, digits, - and _")
    kw: dict[str, Any] = {"name": name, "source_file": where}
    for key in ("data", "backbone", "selection", "storage", "experiment", "description"):
        if raw.get(key) is not None:
            kw[key] = _typed(raw[key], str, where, key)
    for key in ("sources", "targets", "methods"):
        if raw.get(key) is not None:
            v = raw[key]
            if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
                raise _err(where, key, f"expected a non-empty list of names, got {v!r}")
            kw[key] = list(v)
    if "pixelcam" in raw:
        kw["pixelcam"] = _typed(raw["pixelcam"], bool, where, "pixelcam")
    if "seed" in raw:
        kw["seed"] = _typed(raw["seed"], int, where, "seed")
    kw["budget"] = _section(raw.get("budget"), Budget, where, "budget")
    kw["resources"] = _section(raw.get("resources"), Resources, where, "resources")
    kw["published"] = _published(raw.get("published"), where)
    if raw.get("ablation") is not None:
        kw["ablation"] = _ablation(raw["ablation"], where)
    if raw.get("stain_shift") is not None:
        kw["stain_shift"] = _stain_shift(raw["stain_shift"], where)
    train = raw.get("train") or {}
    if not isinstance(train, dict):
        raise _err(where, "train", f"expected a mapping of TrainConfig fields, got {train!r}")
    for key in NOT_SEARCHABLE + ("experiment",):
        if key in train:
            raise _err(where, f"train.{key}", "is set by the study itself (sources, methods, resources)")
    TrainConfig.from_dict(train, where=f"{where}: train")  # unknown keys / types
    kw["train"] = dict(train)
    search = raw.get("search") or {}
    if not isinstance(search, dict):
        raise _err(where, "search", f"expected a mapping, got {search!r}")
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    dims = {}
    for key, dim in search.items():
        if key not in train_fields or key in NOT_SEARCHABLE:
            raise _err(where, f"search.{key}", "not a searchable TrainConfig field")
        dims[key] = _dimension(dim, where, f"search.{key}")
    kw["search"] = dims
    spec = StudySpec(**kw)

    if spec.selection not in SELECTIONS:
        raise _err(
            where, "selection", f"unknown value {spec.selection!r}; expected one of {list(SELECTIONS)}"
        )
    for m in spec.methods:
        if m not in BASELINES:
            raise _err(where, "methods", f"unknown baseline {m!r}; expected some of {list(BASELINES)}")
    if spec.backbone is not None and spec.backbone not in list_backbones():
        raise _err(where, "backbone", f"unknown value {spec.backbone!r}; expected one of {list_backbones()}")
    b = spec.budget
    for key in ("trials", "epochs", "grace_period"):
        if getattr(b, key) < 1:
            raise _err(where, f"budget.{key}", f"must be >= 1, got {getattr(b, key)}")
    if b.grace_period > b.epochs:
        raise _err(where, "budget.grace_period", f"{b.grace_period} exceeds budget.epochs={b.epochs}")
    if b.reduction_factor < 2:
        raise _err(where, "budget.reduction_factor", f"must be >= 2, got {b.reduction_factor}")
    if spec.resources.workers < 1:
        raise _err(where, "resources.workers", f"must be >= 1, got {spec.resources.workers}")
    for method in spec.methods:  # every trial config must be valid at the range ends
        spec.base_config(method, spec.sources[0]).validate(where=f"{where}: train")
    if spec.ablation is not None:
        ab = spec.ablation
        if ab.field in spec.search:
            raise _err(where, "ablation.field", f"{ab.field!r} is also in search: an ablated field is fixed")
        for v in ab.values:
            try:
                cfg = spec.base_config("pixelcam", spec.sources[0])
                cfg.replace(pseudo_labels_from="<baseline>", **{ab.field: v}).validate(where="value")
            except (ConfigError, TypeError, ValueError) as exc:
                raise _err(where, f"ablation.values[{v!r}]", str(exc)) from exc
    return spec
