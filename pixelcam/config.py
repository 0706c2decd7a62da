"""Training configuration: one dataclass, loaded from YAML with errors that name the bad key.

A config file is a flat mapping of the fields below (see `studies/train/*.yaml`); unknown keys, wrong types
and out-of-range values are rejected before anything starts, with the file and key in the message.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SELECTIONS = ("b-loc", "b-cl")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""


@dataclass
class TrainConfig:
    """Everything one training run needs (baseline or PixelCAM), with the paper's defaults."""

    method: str = "cam"
    backbone: str | None = None  # None: the method's default (resnet50; deit_tiny for sat)
    pretrained: bool = False  # ImageNet weights through timm (needs network or a local HF cache)
    data: str = "data/synth"
    source: str = "synth-colon"
    # Input: images are resized to `resize` (Ray Data map_batches), then randomly cropped to `crop` and
    # flipped for training; evaluation uses the whole `resize` image.
    resize: int = 128
    crop: int = 112
    cache_decoded: bool | None = None  # keep decoded train images in Ray's object store; None: when they fit
    # Optimisation: SGD with momentum, weight decay, step decay of the learning rate every `lr_step` epochs.
    epochs: int = 10
    batch_size: int = 32  # per worker
    lr: float = 1e-3
    lr_decay: float = 0.1
    lr_step: int = 5
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seed: int = 0
    # Model selection on the source's validation splits.
    selection: str = "b-loc"
    threshold_criterion: str = "f1"  # how tau is chosen on valpx (f1, iou, youden)
    num_bins: int = 1000
    # PixelCAM only.
    lam: float = 1.0
    n: int = 5
    sampler: str = "pb"
    bg_area: float | None = None  # 0.4 = the paper code's variant (BG only among the lowest 40 % of CAM)
    pixel_head_depth: int = 1
    pseudo_labels_from: str | None = None  # baseline checkpoint / run directory / MLflow run id
    # Resources and bookkeeping.
    num_workers: int = 2
    use_gpu: bool = False
    cpus_per_worker: float | None = None  # None: leave one CPU to Ray Data, share the rest
    max_failures: int = 2
    name: str | None = None  # run name under `storage` (deterministic so that --resume finds it)
    storage: str = "runs"
    experiment: str = "pixelcam"
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def is_pixelcam(self) -> bool:
        return self.method == "pixelcam"

    @property
    def selection_metric(self) -> str:
        return "valpx_pxap" if self.selection == "b-loc" else "valcl_cl"

    def resolved_backbone(self) -> str:
        from pixelcam.models.factory import DEFAULT_BACKBONE

        return self.backbone or DEFAULT_BACKBONE.get(self.method, "resnet50")

    def run_name(self) -> str:
        return self.name or f"{self.method}-{self.resolved_backbone()}-{self.source}"

    def validate(self, where: str = "config") -> TrainConfig:
        """Check names against the registries and ranges; raise ConfigError naming `where` and the key."""
        from pixelcam.metrics.confusion import THRESHOLD_CRITERIA
        from pixelcam.models.backbones import list_backbones
        from pixelcam.models.factory import list_methods
        from pixelcam.models.samplers import list_samplers

        def bad(key: str, msg: str) -> ConfigError:
            return ConfigError(f"{where}: {key}: {msg}")

        choices = {
            "method": list_methods(),
            "sampler": list_samplers(),
            "selection": list(SELECTIONS),
            "threshold_criterion": sorted(THRESHOLD_CRITERIA.names()),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise bad(key, f"unknown value {getattr(self, key)!r}; expected one of {allowed}")
        if self.backbone is not None and self.backbone not in list_backbones():
            raise bad("backbone", f"unknown value {self.backbone!r}; expected one of {list_backbones()}")
        positive = ("resize", "crop", "epochs", "batch_size", "lr", "lr_step", "n", "num_bins", "num_workers")
        for key in positive:
            if not getattr(self, key) > 0:
                raise bad(key, f"must be > 0, got {getattr(self, key)!r}")
        if self.crop > self.resize:
            raise bad("crop", f"{self.crop} is larger than resize={self.resize}")
        ranges = {"lr_decay": (0, 1), "momentum": (0, 1)}
        for key, (lo, hi) in ranges.items():
            if not lo < getattr(self, key) <= hi:
                raise bad(key, f"must be in ({lo}, {hi}], got {getattr(self, key)!r}")
        for key in ("weight_decay", "lam", "max_failures"):
            if getattr(self, key) < 0:
                raise bad(key, f"must be >= 0, got {getattr(self, key)!r}")
        if self.bg_area is not None and not 0 < self.bg_area <= 1:
            raise bad("bg_area", f"must be in (0, 1] or null, got {self.bg_area!r}")
        if self.pixel_head_depth < 1:
            raise bad("pixel_head_depth", f"must be >= 1, got {self.pixel_head_depth}")
        if self.cpus_per_worker is not None and self.cpus_per_worker <= 0:
            raise bad("cpus_per_worker", f"must be > 0 or null, got {self.cpus_per_worker}")
        if self.is_pixelcam and not self.pseudo_labels_from:
            raise bad(
                "pseudo_labels_from",
                "pixelcam needs a trained baseline (a checkpoint, run dir or MLflow run id)",
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied (None values are ignored, so CLI flags left unset change nothing)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "config") -> TrainConfig:
        """Build from a mapping, checking keys and types; raise ConfigError naming `where` and the key."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")
        values = {k: _coerce(v, hints[k], f"{where}: {k}") for k, v in raw.items()}
        return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against a simple type hint (int/float/bool/str, Optional, dict[str, str])."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def read_yaml(path: str | os.PathLike, what: str = "config file") -> Any:
    """Parsed YAML; ConfigError naming the file when it is missing or not YAML."""
    p = Path(path)
    try:
        return yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: {what} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from exc


def load_config(path: str | os.PathLike, **overrides: Any) -> TrainConfig:
    """Read a YAML training config, apply non-None `overrides` and validate it."""
    p = Path(path)
    raw = read_yaml(p)
    cfg = TrainConfig.from_dict(raw or {}, where=str(p)).replace(**overrides)
    return cfg.validate(where=str(p))
