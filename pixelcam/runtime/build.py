"""The pieces a training run is built from: its model, PixelCAM's pseudo-labeler and initial weights, seeds
derived per (rank, epoch), and the meta recorded with every checkpoint."""

from __future__ import annotations

import zlib
from typing import Any

import torch

from pixelcam.config import TrainConfig
from pixelcam.models.backbones import create_backbone
from pixelcam.models.base import WSOLModel
from pixelcam.models.factory import create_wsol_model
from pixelcam.models.precision import Precision
from pixelcam.models.weights import WeightsFile, checked_weights
from pixelcam.runtime.checkpoint import load_checkpoint
from pixelcam.runtime.pseudo_labels import PseudoLabeler


def derived_seed(*parts: int | str) -> int:
    """A 31-bit seed from parts (seed, rank, epoch, ...): stable across processes and Python runs."""
    return zlib.crc32("/".join(map(str, parts)).encode()) & 0x7FFFFFFF


def backbone_weights(cfg: TrainConfig) -> WeightsFile | None:
    """The config's pinned backbone weights file, as the models layer takes it."""
    w = cfg.backbone_weights
    return None if w is None else WeightsFile(w.path, w.sha256)


def check_backbone_weights(cfg: TrainConfig) -> None:
    """Refuse a wrong weights file before any worker starts (ConfigError, one line): its sha256, then its
    tensors against the architecture built on the meta device (no memory, no weights)."""
    weights = backbone_weights(cfg)
    if weights is None:
        return
    with torch.device("meta"):
        backbone = create_backbone(cfg.resolved_backbone())
    checked_weights(backbone.model, weights, cfg.resolved_backbone())


def build_model(cfg: TrainConfig, num_classes: int) -> WSOLModel:
    return create_wsol_model(
        cfg.method,
        cfg.resolved_backbone(),
        num_classes=num_classes,
        pretrained=cfg.pretrained,
        weights=backbone_weights(cfg),
        **cfg.model_kwargs(),
    )


def build_pseudo_labeler(
    cfg: TrainConfig, baseline_dir: str, device: torch.device, no_roi_labels: set[int] | None = None
) -> PseudoLabeler:
    base = load_checkpoint(baseline_dir)
    return PseudoLabeler(
        Precision(cfg.precision, device, cfg.channels_last).model(base.build_model()),
        cfg.sampler,
        cfg.n,
        cfg.seed,
        cfg.bg_area,
        no_roi_labels=no_roi_labels or set(),
        no_roi_seeds=cfg.no_roi_seeds,
        seed_grid=cfg.seed_grid,
        bg_sampling=cfg.bg_sampling,
    )


# PixelCAM's encoder and image head g (CAM-family baselines share g's shape)
INIT_PARTS = ("backbone", "head")


def init_from_baseline(model: WSOLModel, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy the baseline's backbone and, when its shapes match, image head into `model`; returns the parts
    copied. The backbone must match (same architecture); a head of another form (DeepMIL, SAT) is skipped.
    A model that carries the whole baseline (NEGEV's classifier) loads it itself (`load_baseline`)."""
    done = model.load_baseline(state)
    if done is not None:
        return done
    own = model.state_dict()
    done = []
    for part in INIT_PARTS:
        sub = {k: v for k, v in state.items() if k.startswith(part + ".")}
        fits = bool(sub) and all(k in own and own[k].shape == v.shape for k, v in sub.items())
        mine = [k for k in own if k.startswith(part + ".")]
        if part == "backbone" and not (fits and len(sub) == len(mine)):
            raise ValueError("the baseline's backbone weights do not fit PixelCAM's backbone")
        if fits and len(sub) == len(mine):
            model.load_state_dict(sub, strict=False)
            done.append(part)
    return done


def keep_best(
    metrics: dict[str, float], key: str, epoch: int, tau: float, best: dict, latest: bool = False
) -> dict:
    """`best` updated when `metrics[key]` is better, or equal with `latest` (ties: the later epoch; else
    the earlier)."""
    score = metrics[key]
    if score > best["score"] or (latest and score == best["score"]):
        return {"epoch": epoch, "score": score, "metric": key, "tau": tau}
    return best


def make_meta(
    cfg: TrainConfig,
    class_names: list[str],
    dataset_hash: str,
    epoch: int,
    metrics: dict,
    best: dict,
    best_by: dict | None = None,
    init: dict | None = None,
) -> dict[str, Any]:
    return {
        "method": cfg.method,
        "backbone": cfg.resolved_backbone(),
        "model_kwargs": cfg.model_kwargs(),
        "class_names": class_names,
        "source": cfg.source,
        "resize": cfg.resize,
        "eval_input_size": cfg.eval_input_size,  # what validation fed the model; evaluation does the same
        "dataset_hash": dataset_hash,
        "epoch": epoch,
        "metrics": metrics,
        "tau": metrics["tau"],
        "best": best,
        "best_by": best_by or {},
        "init": init,
        "selection": cfg.selection,
        "normalization": cfg.method_class.normalization(),
        "config": cfg.to_dict(),
    }
