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
seeds: [0, 1, 2]                         # optional: retrain each selected model per seed (mean ± 95 % CI)
stain_shift: {method: reinhard, reference: synth-lymph, levels: 10}   # optional staining-robustness sweep
ablation: {field: lam, values: [0.001, 0.01, 0.1, 1.0]}  # optional: one PixelCAM model per value
published: {...}                         # the paper's numbers, printed beside ours
```
Validated by `pixelcam.validation` (the mechanism TrainConfig uses); errors name the file and the key path
(e.g. `studies/x.yaml: budget.trials`). Every search range is checked at both ends against TrainConfig's
limits when the spec loads, so a bad range never reaches a Tune trial.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from pixelcam.config import SELECTIONS, TrainConfig
from pixelcam.results import label_parts, variant_label
from pixelcam.storage import Location
from pixelcam.study.dimensions import Choice, Dimension, Range, published_values
from pixelcam.study.spec_sections import (
    NOT_SEARCHABLE,
    SEARCHERS,
    Ablation,
    Budget,
    Resources,
    StainShift,
    ablatable,
    pixelcam_params,
)
from pixelcam.validation import ConfigError, ConfigModel, field_error, one_of, parse, parse_yaml, read_yaml

__all__ = [
    "Ablation",
    "Budget",
    "Choice",
    "Range",
    "Resources",
    "StainShift",
    "StudySpec",
    "ablatable",
    "load_spec",
    "pixelcam_params",
    "spec_from_dict",
]

Names = Annotated[list[str], Field(min_length=1)]


class StudySpec(ConfigModel):
    name: str  # the study directory's name (letters, digits, - and _)
    data: str = "data/synth"  # the dataset: a directory or URI holding every source and target domain
    sources: Names = Field(default_factory=lambda: ["synth-colon"])  # domains models are trained on
    targets: Names | None = None  # domains every model is evaluated on (default: all of the dataset's)
    methods: Names = Field(default_factory=lambda: ["cam"])  # baselines (and unet, the supervised bound)
    pixelcam: bool = True  # a PixelCAM model on top of each WSOL baseline
    # a NEGEV model on top of each WSOL baseline with a CNN backbone (the paper's "w/ NEGEV" rows); its own
    # settings in method_train.negev, its own search keys (crf_weight, ...) searched for it alone
    negev: bool = False
    backbone: str | None = None  # every model's backbone (default: each method's own)
    # per-method backbones, e.g. {sat: deit_tiny_sat} beside CNNs on `backbone` (the paper's Table 1);
    # a PixelCAM model runs on its baseline's backbone
    backbones: dict[str, str] = Field(default_factory=dict)
    # per-method fixed settings on top of `train`, e.g. {sat: {pretrained: false}} (a PixelCAM model takes its
    # baseline's)
    method_train: dict[str, dict[str, Any]] = Field(default_factory=dict)
    selection: str = "b-loc"  # how each run selects its checkpoint and Tune its trials: b-loc or b-cl
    search: dict[str, Dimension] = Field(default_factory=dict)  # TrainConfig field -> range or choices
    # "optuna" (TPE over `search`, `budget.trials` trials) or "grid" (every combination of list-valued
    # dimensions once: the paper's protocol, lr in {1e-4, 1e-3, 1e-2} x lr_decay in {0.1, 0.4, 0.9})
    searcher: str = "optuna"
    budget: Budget = Field(default_factory=Budget)  # trials, epochs, ASHA (below)
    resources: Resources = Field(default_factory=Resources)  # per trial (below)
    train: dict[str, Any] = Field(default_factory=dict)  # other TrainConfig fields, fixed for every trial
    seed: int = 0  # the tuned runs' seed (and the searcher's)
    # Each selected configuration retrained once per seed (the tuned run is the run of `seed`); tables then
    # show mean ± 95 % CI over seeds. A PixelCAM model of seed s takes its CAMs from its baseline of seed s.
    seeds: list[int] = Field(default_factory=list)
    storage: str = "studies-runs"  # parent of the study directory: a path or a URI (s3://bucket/studies)
    experiment: str | None = None  # MLflow experiment (default: pixelcam-study-<name>)
    stain_shift: StainShift | None = None  # a staining-robustness sweep of every selected model (below)
    ablation: Ablation | None = None  # one PixelCAM model per value of one field (below)
    # the paper's numbers, printed beside ours: {method: {pxap|cl: {"source->target": value}}, source: text}
    published: Annotated[dict[str, Any], BeforeValidator(published_values)] = Field(default_factory=dict)
    description: str = ""  # free text, shown nowhere but the spec
    # benchmarks only (benchmarks/sweep_scale.py): each trial a no-op stand-in that opens, logs and ends its
    # MLflow run and reports to Tune like a training, without a model (no checkpoint, so no later step runs)
    stand_in: bool = False
    source_file: str = Field(default="", exclude=True)  # where the spec was read from (messages)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError(f"{value!r} may only contain letters, digits, - and _")
        return value

    @field_validator("methods")
    @classmethod
    def _baselines(cls, value: list[str]) -> list[str]:
        from pixelcam.models.factory import list_methods

        known = list_methods(kind="baseline") + list_methods(kind="supervised")  # U-Net: an upper-bound row
        for m in value:
            if m not in known:
                raise ValueError(f"unknown baseline {m!r}; expected some of {known}")
        return value

    @field_validator("searcher")
    @classmethod
    def _searcher(cls, value: str) -> str:
        return one_of(value, SEARCHERS)

    @model_validator(mode="after")
    def _grid_needs_lists(self) -> StudySpec:
        if self.searcher == "grid":
            for key, dim in self.search.items():
                if not isinstance(dim, Choice):
                    raise field_error(f"search.{key}", "a grid search takes a list of values, not a range")
        return self

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct, got {value}")
        return value

    @field_validator("selection")
    @classmethod
    def _selection(cls, value: str) -> str:
        return one_of(value, SELECTIONS)

    @field_validator("backbone")
    @classmethod
    def _backbone(cls, value: str | None) -> str | None:
        from pixelcam.models.backbones import check_backbone

        return value if value is None else check_backbone(value)

    @field_validator("backbones")
    @classmethod
    def _backbones(cls, value: dict[str, str]) -> dict[str, str]:
        from pixelcam.models.backbones import check_backbone

        for method, name in value.items():
            try:
                check_backbone(name)
            except ValueError as exc:
                raise ValueError(f"{method}: {exc}") from None
        return value

    def all_methods(self) -> list[str]:
        """Labels of every tuned model: the baselines, then the NEGEV and PixelCAM model(s) of each."""
        return list(self.methods) + [label for m in self.methods for label in self.variant_labels(m)]

    def variant_labels(self, baseline: str) -> list[str]:
        """The labels of the models trained on `baseline`'s pseudo-labels: NEGEV's, then PixelCAM's."""
        return self.negev_labels(baseline) + self.pixelcam_labels(baseline)

    def negev_labels(self, baseline: str) -> list[str]:
        """`negev-<baseline>` for a WSOL baseline on a CNN backbone (NEGEV's U-Net needs a feature pyramid:
        none for SAT's DeiT, as in the paper's tables)."""
        from pixelcam.models.backbones import is_vit_backbone
        from pixelcam.models.factory import method_class

        cls = method_class(baseline)
        backbone = self.backbones.get(baseline, self.backbone) or cls.default_backbone
        if not self.negev or not cls.is_baseline() or is_vit_backbone(backbone):
            return []
        return [variant_label("negev", baseline)]

    def pixelcam_labels(self, baseline: str) -> list[str]:
        """`pixelcam-<baseline>`, or one `pixelcam-<baseline>.<field>-<value>` per ablation value (none for a
        supervised model such as the U-Net upper bound: PixelCAM learns from WSOL baselines' CAMs)."""
        from pixelcam.models.factory import method_class

        if not self.pixelcam or not method_class(baseline).is_baseline():
            return []
        if self.ablation is None:
            return [variant_label("pixelcam", baseline)]
        return [self.ablation.label(baseline, v) for v in self.ablation.values]

    def variant(self, label: str) -> Variant:
        """What model `label` trains: its method, the baseline whose pseudo-labels it learns from (None for a
        baseline, or a label that is not one of this study's) and an ablation's fixed override."""
        method, baseline = label_parts(label)
        if method is None or baseline not in self.methods or label not in self.variant_labels(baseline):
            return Variant(label, None, {})
        ab = self.ablation
        values = [v for v in ab.values if ab.label(baseline, v) == label] if ab is not None else []
        return Variant(method, baseline, {ab.field: values[0]} if values else {})

    def mlflow_experiment(self) -> str:
        """The MLflow experiment of the study's parent run and of all its trial and evaluation runs."""
        return self.experiment or f"pixelcam-study-{self.name}"

    def base_config(self, method: str, source: str, baseline: str | None = None) -> TrainConfig:
        """The fixed part of every trial's TrainConfig for `method` on `source` (a pseudo-label method: on
        `baseline`'s backbone, with the baseline's `method_train` and then its own)."""
        sections = [baseline, method] if baseline else [method]
        own = {k: v for name in sections for k, v in self.method_train.get(name, {}).items()}
        named = [n for n in sections if n in self.method_train]
        where = f"{self.source_file}: " + (f"method_train.{named[-1]}" if named else "train")
        cfg = TrainConfig.from_dict({**self.train, **own}, where=where)
        return cfg.replace(
            f"{self.source_file}: train",
            method=method,
            backbone=self.backbones.get(baseline or method, self.backbone),
            data=self.data,
            source=source,
            selection=self.selection,
            epochs=self.budget.epochs,
            seed=self.seed,
            num_workers=self.resources.workers,
            use_gpu=self.resources.gpus_per_worker > 0,
            gpus_per_worker=self.resources.gpus_per_worker or None,
            cpus_per_worker=self.resources.cpus_per_worker,
            experiment=self.mlflow_experiment(),
        )

    def searched(self, method: str) -> dict[str, Range | Choice]:
        """The search dimensions trials of `method` take: shared keys and a pseudo-label method's own, less
        the fields `method_train` fixes for it (e.g. NEGEV's lr 0.1 on GlaS while the baselines search lr)."""
        fixed = set(self.method_train.get(method, {}))
        return {k: v for k, v in self.search.items() if method in users_of(k, [method]) and k not in fixed}

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def check(self, where: str) -> StudySpec:
        """What depends on TrainConfig: the fixed `train` fields, the searchable keys, every search range at
        both ends and every ablation value, each as the trial configs that will use them."""
        self._check_fixed_keys(where)
        methods = list(self.methods) + self.variant_methods()
        configs = {m: self.base_config(m, self.sources[0]) for m in methods}
        self._check_method_sections(where)
        self._check_search_ends(where, methods, configs)
        self._check_ablation(where, configs.get("pixelcam", configs[methods[0]]))
        return self

    def variant_methods(self) -> list[str]:
        """The pseudo-label methods the study trains on its baselines."""
        return [m for m, on in (("negev", self.negev), ("pixelcam", self.pixelcam)) if on]

    def _check_fixed_keys(self, where: str) -> None:
        """`train` holds valid TrainConfig fields the study does not set itself; `search` searchable ones."""
        for key in NOT_SEARCHABLE + ("experiment",):
            if key in self.train:
                raise ConfigError(
                    f"{where}: train.{key}: is set by the study itself (sources, methods, resources)"
                )
        TrainConfig.from_dict(self.train, where=f"{where}: train")
        for key in self.search:
            if key not in TrainConfig.model_fields or key in NOT_SEARCHABLE:
                raise ConfigError(f"{where}: search.{key}: not a searchable TrainConfig field")

    def _check_method_sections(self, where: str) -> None:
        """`backbones` and `method_train` name the study's methods; `method_train` sets no study field."""
        for section in ("backbones", "method_train"):
            known = list(self.methods) + (self.variant_methods() if section == "method_train" else [])
            for m in getattr(self, section):
                if m not in known:
                    raise ConfigError(f"{where}: {section}.{m}: not one of the study's methods {known}")
        for m, own in self.method_train.items():
            for key in own:
                if key in NOT_SEARCHABLE + ("experiment",):
                    raise ConfigError(f"{where}: method_train.{m}.{key}: is set by the study itself")
            self.base_config(m, self.sources[0])

    def _check_search_ends(self, where: str, methods: list[str], configs: dict[str, TrainConfig]) -> None:
        """Both ends of every search dimension are valid in the trial configs that will take them."""
        for key, dim in self.search.items():
            users = users_of(key, methods)
            for value in dim.ends():
                for m in (u for u in users if u in configs):
                    try:
                        configs[m].replace("value", **{key: value})
                    except ConfigError as exc:
                        raise ConfigError(
                            f"{where}: search.{key}: {value!r} is not a valid {key} ({_reason(exc, key)})"
                        ) from None

    def _check_ablation(self, where: str, config: TrainConfig) -> None:
        """An ablated field is fixed (not searched) and each of its values is valid."""
        if self.ablation is None:
            return
        ab = self.ablation
        if ab.field in self.search:
            raise ConfigError(
                f"{where}: ablation.field: {ab.field!r} is also in search: an ablated field is fixed"
            )
        for v in ab.values:
            try:
                config.replace("value", **{ab.field: v})
            except ConfigError as exc:
                raise ConfigError(f"{where}: ablation.values[{v!r}]: {_reason(exc, ab.field)}") from None


@dataclass(frozen=True)
class Variant:
    """What a model label trains: `method`, on `baseline`'s pseudo-labels (None: a baseline itself), with
    `fixed` overrides (an ablation's value)."""

    method: str
    baseline: str | None
    fixed: dict[str, Any]


def users_of(key: str, methods: list[str]) -> list[str]:
    """Which of `methods` read TrainConfig field `key`: every one, unless only pseudo-label methods declare
    it (PixelCAM's lam and n, NEGEV's crf_weight ...), then those among them that do."""
    from pixelcam.models.factory import list_methods, method_class

    readers = [m for m in list_methods(kind="pseudo_labels") if key in method_class(m).train_params]
    return [m for m in methods if m in readers] if readers else list(methods)


def _reason(exc: ConfigError, key: str) -> str:
    """What was wrong with one value, without the location prefixes of the trial config's error."""
    return str(exc).removeprefix("value: ").removeprefix(f"{key}: ")


def load_spec(path: str | os.PathLike) -> StudySpec:
    """Read and validate a study spec; ConfigError names the file and the key path."""
    return spec_from_dict(read_yaml(path, "study spec"), str(Path(path)))


def load_stored_spec(file: Location) -> StudySpec:
    """The spec a study directory holds, `file` a `Location` (a local path or on an object store)."""
    return spec_from_dict(parse_yaml(file.read_text(), str(file)), str(file))


_SECTIONS = ("search", "budget", "resources", "train", "published")


def spec_from_dict(raw: Any, where: str = "study") -> StudySpec:
    if isinstance(raw, dict) and "source_file" in raw:
        raise ConfigError(f"{where}: unknown key(s) ['source_file']")
    if isinstance(raw, dict):  # an empty section (`search:` with nothing under it) means its defaults
        raw = {k: v for k, v in raw.items() if v is not None or k not in _SECTIONS}
    spec = parse(StudySpec, raw, where)
    spec.source_file = where
    return spec.check(where)
