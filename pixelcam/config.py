"""Training configuration: one pydantic model (`pixelcam.validation`), loaded from YAML with errors that name
the file and the bad key.

A config file is a flat mapping of the fields below (see `studies/train/*.yaml`); unknown keys, wrong types
and out-of-range values are rejected before anything starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from pixelcam.validation import ConfigError, ConfigModel, field_error, one_of, parse, read_yaml

__all__ = ["SELECTIONS", "BackboneWeights", "ConfigError", "TrainConfig", "load_config", "read_yaml"]

SELECTION_METRICS = {"b-loc": "valpx_pxap", "b-cl": "valcl_cl"}  # what each selection maximises
SELECTIONS = tuple(SELECTION_METRICS)


def tie_sign(ties: str) -> int:
    """+1 when equal scores go to the latest epoch, -1 to the earliest: rank = score + sign * 1e-9 * epoch."""
    return 1 if ties == "latest" else -1


NO_ROI_SEEDS = ("none", "bg")  # see runtime/pseudo_labels.py
SEED_GRIDS = ("image", "feature")  # see runtime/pseudo_labels.py
# the registry's pseudo-label methods, known without importing the models (the CLI's subcommands; a test
# keeps it equal to list_methods(kind="pseudo_labels"))
PSEUDO_LABEL_METHODS = ("pixelcam", "negev")
INIT_FROM = ("b-cl", "b-loc", "none")  # which checkpoint of the baseline run PixelCAM starts from

Positive = Annotated[int, Field(gt=0)]


def _str_tags(value: Any) -> Any:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value


class BackboneWeights(ConfigModel):
    """A local weights file for the backbone (a pathology foundation model a lab has downloaded), pinned by
    its sha256: a different file is refused before anything trains."""

    path: str  # a .pth/.pt/.bin state dict or .safetensors; recorded absolute (workers may not share the cwd)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]  # `sha256sum FILE`

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return os.path.abspath(os.path.expanduser(value))


class TrainConfig(ConfigModel):
    """Everything one training run needs (baseline or PixelCAM), with the paper's defaults."""

    method: str = "cam"  # the WSOL method: cam, deepmil, gradcampp, layercam, sat, unet (or pixelcam)
    backbone: str | None = None  # None: the method's default (resnet50; deit_tiny_sat for sat)
    pretrained: bool = False  # ImageNet weights (offline for efficientnet_lite0; through timm otherwise)
    # the backbone's initial weights from a local file pinned by sha256 ({path, sha256}), e.g. a foundation
    # ViT on `backbone: timm:ARCH`; instead of `pretrained`
    backbone_weights: BackboneWeights | None = None
    data: str = "data/synth"  # the dataset: a directory or URI written by `pixelcam data synth|ingest`
    source: str = "synth-colon"  # the domain trained on (its train, valcl and valpx splits)
    # images resized to this side in pixels (Ray Data decode); evaluation uses the whole resized image
    resize: Positive = 128
    crop: Positive = 112  # random crop side for training, with horizontal and vertical flips
    cache_decoded: bool | None = None  # keep decoded train images in Ray's object store; None: when they fit
    epochs: Positive = 10  # SGD epochs
    batch_size: Positive = 32  # per worker
    lr: Annotated[float, Field(gt=0)] = 1e-3  # SGD learning rate
    lr_decay: Annotated[float, Field(gt=0, le=1)] = 0.1  # the rate's factor every `lr_step` epochs
    lr_step: Positive = 5  # epochs between learning-rate decays (StepLR)
    momentum: Annotated[float, Field(gt=0, le=1)] = 0.9  # SGD momentum
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4  # SGD weight decay
    seed: int = 0  # initial weights, augmentation, shuffling and pseudo-label draws
    selection: str = "b-loc"  # the checkpoint selected: b-loc (best valpx PxAP) or b-cl (best valcl CL)
    # epochs before this one (0-based) are not selectable: a flat B-LOC curve (PxAP equal within noise over
    # epochs) then cannot pick an epoch whose classifier has not converged yet (ours; the paper: 0)
    select_from_epoch: Annotated[int, Field(ge=0)] = 0
    # equal selection scores (B-LOC PxAP, B-CL accuracy: ties are common on a small valcl): the latest epoch
    # (default: the official code's) or the earliest (pixelcam's former rule)
    checkpoint_ties: Literal["latest", "earliest"] = "latest"
    # how tau (TP*/FN*/TN*/FP*) is chosen on valpx: miou = (IoU_fg + IoU_bg) / 2 (default: the official
    # code's; the paper's Table 6 came from it), f1 (pixelcam's former default), iou, youden
    threshold_criterion: str = "miou"
    num_bins: Positive = 1000  # PxAP thresholds k/num_bins, k = 0..num_bins
    # PxAP resolution: maps (bilinear) and masks (nearest) at eval_size^2 (wsolevaluation and the official
    # code: 224), or "native": maps at each mask's own size (images then weigh by their pixel count)
    eval_size: Positive | Literal["native"] = 224
    # the model's input side at validation and evaluation: the crop size (default: the official code, which
    # evaluates at 224 = its crop) or the resize size (pixelcam's former behaviour, the whole resized image)
    eval_input: Literal["crop", "resize"] = "crop"
    # DeepMIL's attention (its model_kwargs): "gated" (Ilse et al. 2018) or "per_class" (the official code)
    mil_attention: str = "gated"
    # GradCAM++'s alpha (its model_kwargs): "eq19" (as published) or "official" (the official PixelCAM code's,
    # without its denominator: the paper's GradCAM++ numbers; the paper specs use it)
    gradcampp_variant: str = "eq19"
    lam: Annotated[float, Field(ge=0)] = 1.0  # PixelCAM: weight of the pixel loss (the paper's lambda)
    n: Positive = 5  # PixelCAM: FG seeds and BG seeds drawn per image and step
    sampler: str = "pb"  # PixelCAM: seed sampler, pb (probability-based) or th (Otsu threshold)
    # PixelCAM's BG seeds of `pb`: "inverse" ~ 1 - CAM (paper text) or "area": uniform among the bg_area
    # lowest-CAM fraction (official code; bg_area defaults to 0.2 there); bg_area with "inverse" restricts
    # the weighted draws (ours)
    bg_sampling: str = "inverse"
    bg_area: Annotated[float, Field(gt=0, le=1)] | None = None  # PixelCAM: see bg_sampling
    seed_grid: str = "image"  # PixelCAM: seeds on the image grid (official) or the feature grid
    pixel_head_depth: Annotated[int, Field(ge=1)] = 1  # PixelCAM: layers of the pixel head f (1: a 1x1 conv)
    # PixelCAM, images of a class without ROI (CAMELYON16 normal): no pixel loss ("none", official) or BG
    # seeds only ("bg")
    no_roi_seeds: str = "none"
    # the baseline whose classifier (backbone and image head) a pseudo-label model carries: NEGEV's, frozen;
    # PixelCAM's with pixelcam_head "baseline". Set from the checkpoint `pseudo_labels_from` names
    baseline_method: str | None = None
    # PixelCAM's image head g: "baseline" (default: the baseline's own, DeepMIL's attention pooling or SAT's
    # token head, as the official code and Table 11: w/ PixelCAM = its baseline + the pixel head) or "gap"
    # (GAP + linear whatever the baseline: pixelcam's former model)
    pixelcam_head: Literal["baseline", "gap"] = "baseline"
    # NEGEV: each seed grown to a k x k square (odd k; official GlaS: 3); PixelCAM's seeds stay single pixels
    seed_dilation: Annotated[int, Field(ge=1)] = 1
    neg_evidence_weight: Annotated[float, Field(ge=0)] = 0.0  # NEGEV: CE of no-ROI images' pixels as BG
    crf_weight: Annotated[float, Field(ge=0)] = 0.0  # NEGEV: dense CRF (Potts) loss; the paper's: 2e-9
    crf_scale: Annotated[float, Field(gt=0, le=1)] = 1.0  # NEGEV: images resized by this before the CRF
    size_weight: Annotated[float, Field(ge=0)] = 0.0  # NEGEV: absolute-size log-barrier (0: off)
    pseudo_labels_from: str | None = None  # PixelCAM: baseline checkpoint / run directory / MLflow run id
    # PixelCAM: the checkpoint of the baseline run that gives the CAMs (paper: b-loc; Table 14 varies it)
    pseudo_labels_checkpoint: str = "b-loc"
    # PixelCAM: the checkpoint its backbone and image head start from (official code: b-cl; "none": none)
    init_from: str = "b-cl"
    num_workers: Positive = 2  # data-parallel workers (DDP)
    # "auto": a single-worker run executes in-process (no Ray Train actors: ~20 s less start-up per run),
    # several workers on Ray Train (DDP); "ray_train" always, "local" always (one worker)
    executor: str = "auto"
    use_gpu: bool = False  # one GPU per worker (NCCL), or a fraction with gpus_per_worker
    # GPUs per Train worker (with use_gpu): fractions pack several small trials on one GPU (0.25: four);
    # above 1, whole GPUs only (Ray's rule). None: 1
    gpus_per_worker: Annotated[float, Field(gt=0)] | None = None
    # autocast precision fp32 (the paper's) | bf16 | fp16 (with loss scaling), in training, validation,
    # evaluation and slide inference (recorded with every run)
    precision: str = "fp32"
    channels_last: bool = False  # NHWC activations (faster convolutions on GPUs and recent CPUs)
    # how the train split reaches the step: "stream" (Ray Data every epoch), "device" (read once into the
    # worker's device memory as uint8, then shuffled, cropped, flipped and normalised there each epoch: no
    # per-epoch pipeline), "auto" (device on a GPU when the split fits a quarter of its free memory, else
    # stream; the CPU streams). Same augmentation draws; the batch order differs
    train_input: str = "auto"
    cpus_per_worker: Annotated[float, Field(gt=0)] | None = None  # None: one CPU to Ray Data, share the rest
    max_failures: Annotated[int, Field(ge=0)] = 2  # worker-group restarts from the latest checkpoint
    name: str | None = None  # run name under `storage` (deterministic so that --resume finds it)
    storage: str = "runs"  # where runs are written: a directory or a URI (s3://bucket/prefix)
    experiment: str = "pixelcam"  # the MLflow experiment
    tags: Annotated[dict[str, str], BeforeValidator(_str_tags)] = Field(default_factory=dict)  # MLflow tags

    @field_validator(
        "method",
        "sampler",
        "selection",
        "threshold_criterion",
        "no_roi_seeds",
        "seed_grid",
        "bg_sampling",
        "pseudo_labels_checkpoint",
        "init_from",
        "mil_attention",
        "baseline_method",
        "gradcampp_variant",
        "executor",
        "precision",
        "train_input",
    )
    @classmethod
    def _registered(cls, value: str | None, info: Any) -> str | None:
        if value is None:
            return value
        return one_of(value, _choices(info.field_name))

    @field_validator("backbone")
    @classmethod
    def _backbone(cls, value: str | None) -> str | None:
        from pixelcam.models.backbones import check_backbone

        return value if value is None else check_backbone(value)

    @model_validator(mode="after")
    def _one_source_of_weights(self) -> TrainConfig:
        if self.pretrained and self.backbone_weights is not None:
            raise field_error(
                "backbone_weights", "set beside pretrained: true; one source of initial weights"
            )
        return self

    @model_validator(mode="after")
    def _negev_fits(self) -> TrainConfig:
        if self.seed_dilation % 2 == 0:
            raise field_error("seed_dilation", f"{self.seed_dilation}: an odd square side (1, 3, 5, ...)")
        if self.method == "negev" and self.init_from == "none":
            raise field_error("init_from", "none: NEGEV's classifier is the trained baseline's (b-cl, b-loc)")
        if self.method == "negev" and self.seed_grid != "image":
            raise field_error("seed_grid", f"{self.seed_grid}: NEGEV's decoder is at the image size (image)")
        return self

    @model_validator(mode="after")
    def _crop_fits(self) -> TrainConfig:
        if self.crop > self.resize:
            raise field_error("crop", f"{self.crop} is larger than resize={self.resize}")
        if self.select_from_epoch >= self.epochs:
            raise field_error(
                "select_from_epoch",
                f"{self.select_from_epoch} leaves no selectable epoch of epochs={self.epochs}",
            )
        if self.gpus_per_worker is not None:
            if not self.use_gpu:
                raise field_error("gpus_per_worker", f"{self.gpus_per_worker:g} needs use_gpu: true")
            if self.gpus_per_worker > 1 and self.gpus_per_worker != int(self.gpus_per_worker):
                raise field_error(
                    "gpus_per_worker", f"{self.gpus_per_worker:g}: fractions only below 1 (Ray's rule)"
                )
        if self.executor == "local" and self.num_workers != 1:
            raise field_error(
                "executor", f"local runs one worker in-process, not num_workers={self.num_workers}"
            )
        return self

    @property
    def method_class(self):
        from pixelcam.models.factory import method_class

        return method_class(self.method)

    @property
    def is_pixelcam(self) -> bool:
        """Trained on a baseline's pseudo-labels (needs `pseudo_labels_from`)."""
        return self.method_class.kind == "pseudo_labels"

    @property
    def is_supervised(self) -> bool:
        """Trained on the train split's masks (the U-Net upper bound)."""
        return self.method_class.kind == "supervised"

    @property
    def eval_input_size(self) -> int:
        """The side images are resized to for validation and evaluation (`eval_input`)."""
        return self.crop if self.eval_input == "crop" else self.resize

    @property
    def selection_metric(self) -> str:
        return SELECTION_METRICS[self.selection]

    def resolved_backbone(self) -> str:
        return self.backbone or self.method_class.default_backbone

    @property
    def runs_locally(self) -> bool:
        """Executed in the calling process (a single worker, `executor` auto or local), not on Ray Train."""
        return self.executor == "local" or (self.executor == "auto" and self.num_workers == 1)

    def run_name(self) -> str:
        return self.name or f"{self.method}-{self.resolved_backbone()}-{self.source}"

    def model_kwargs(self) -> dict[str, Any]:
        """The settings this config's method takes in its constructor (e.g. PixelCAM's head depth)."""
        from pixelcam.models.factory import model_kwargs

        return model_kwargs(self.method, self.to_dict())

    def validate(self, where: str = "config") -> TrainConfig:
        """Ready to run: field checks happen at construction; this adds what a run needs on top."""
        if self.is_pixelcam and not self.pseudo_labels_from:
            raise ConfigError(
                f"{where}: pseudo_labels_from: pixelcam needs a trained baseline (a checkpoint, run dir or "
                f"MLflow run id)"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def replace(self, where: str = "config", **changes: Any) -> TrainConfig:
        """A validated copy with `changes` applied (None values are ignored, so CLI flags left unset change
        nothing); ConfigError naming `where` and the key when a change is out of range."""
        return parse(
            TrainConfig, {**self.to_dict(), **{k: v for k, v in changes.items() if v is not None}}, where
        )

    @classmethod
    def from_dict(cls, raw: Any, where: str = "config") -> TrainConfig:
        """Build from a mapping; ConfigError naming `where` and the key."""
        return parse(cls, raw, where)


def _list_methods(kind: str | None = None) -> list[str]:
    from pixelcam.models.factory import list_methods

    return list_methods(kind)


def _list_samplers() -> list[str]:
    from pixelcam.models.samplers import list_samplers

    return list_samplers()


def _list_threshold_criteria() -> list[str]:
    from pixelcam.metrics.confusion import THRESHOLD_CRITERIA

    return sorted(THRESHOLD_CRITERIA.names())


TRAIN_INPUTS = ("auto", "stream", "device")  # see TrainConfig.train_input


# The registry (or fixed set) each choice field is checked against; imported lazily: the models pull in torch.
CHOICES: dict[str, Callable[[], list[str]]] = {
    "method": _list_methods,
    "sampler": _list_samplers,
    "threshold_criterion": _list_threshold_criteria,
    "selection": lambda: list(SELECTIONS),
    "no_roi_seeds": lambda: list(NO_ROI_SEEDS),
    "seed_grid": lambda: list(SEED_GRIDS),
    "bg_sampling": lambda: list(_bg_sampling()),
    "pseudo_labels_checkpoint": lambda: list(SELECTIONS),
    "init_from": lambda: list(INIT_FROM),
    "mil_attention": lambda: list(_mil_attention()),
    "baseline_method": lambda: _list_methods("baseline"),
    "gradcampp_variant": lambda: list(_gradcampp_variants()),
    "executor": lambda: ["auto", "ray_train", "local"],
    "precision": lambda: list(_precisions()),
    "train_input": lambda: list(TRAIN_INPUTS),
}


def _precisions() -> tuple[str, ...]:
    from pixelcam.models.precision import PRECISIONS

    return tuple(PRECISIONS)


def _bg_sampling() -> tuple[str, ...]:
    from pixelcam.models.samplers import BG_SAMPLING

    return BG_SAMPLING


def _gradcampp_variants() -> tuple[str, ...]:
    from pixelcam.models.methods.gradcampp import GRADCAMPP_VARIANTS

    return GRADCAMPP_VARIANTS


def _mil_attention() -> tuple[str, ...]:
    from pixelcam.models.methods.deepmil import MIL_ATTENTION

    return MIL_ATTENTION


def _choices(name: str) -> list[str]:
    """The registered names a choice field accepts."""
    return CHOICES[name]()


def load_config(path: str | os.PathLike, **overrides: Any) -> TrainConfig:
    """Read a YAML training config, apply non-None `overrides` and validate it."""
    where = str(path)
    raw = read_yaml(path)
    cfg = TrainConfig.from_dict(raw if raw is not None else {}, where=where)
    # a bad command-line value is the command line's fault, not the file's
    return cfg.replace("command line", **overrides).validate(where=where)
