"""NEGEV (Belharbi et al., MIDL 2022): a baseline's classifier, frozen, plus a U-Net decoder on its encoder.

The classifier is the baseline model itself (backbone and image head, loaded from its B-CL checkpoint); it
gives the image class. The decoder is segmentation-models-pytorch's U-Net decoder (channels 256, 128, 64, 32,
16) and a 2-channel head at the input resolution, on the feature pyramid of smp's `tu-<backbone>` encoder,
whose weights *are* the classifier's backbone tensors (shared, not copied: one set of encoder weights, as in
the paper's Table 11, where "w/ NEGEV" counts the U-Net plus the baseline's image head). Only the decoder is
trained; the classifier stays in eval mode (batch-norm statistics fixed). The map is the decoder's softmax
FG probability, used as is. Classification and map take one encoder pass when the encoder's deepest map is
the classifier's feature map (ResNets), two when the classifier's backbone adds layers after its last stage
(EfficientNet's 1x1 head).
"""

from __future__ import annotations

import torch
from torch import nn

from pixelcam.models.backbones import Backbone
from pixelcam.models.base import CLASSIFIER_KWARGS, CLASSIFIER_SETTING, SEED_PARAMS, WSOLModel
from pixelcam.models.methods.unet import UNet
from pixelcam.models.precision import float32


def share_weights(target: nn.Module, source: nn.Module) -> int:
    """Make every parameter and buffer of `target` the tensor of the same name in `source` (same module
    names, as smp's timm encoder and the timm model it was built from); returns how many were shared."""
    params, buffers = dict(source.named_parameters()), dict(source.named_buffers())
    shared = 0
    for name, own in list(target.named_parameters()) + list(target.named_buffers()):
        src = params.get(name, buffers.get(name))
        if src is None or src.shape != own.shape:
            raise ValueError(f"negev: the encoder tensor {name!r} has no namesake of the same shape")
        path, _, leaf = name.rpartition(".")
        setattr(target.get_submodule(path), leaf, src)
        shared += 1
    return shared


class NEGEV(UNet):
    """The baseline `baseline_method` (frozen) and a U-Net decoder trained on its CAM's seeds."""

    method = "negev"
    kind = "pseudo_labels"
    normalize = False
    model_kwargs = (CLASSIFIER_SETTING, *CLASSIFIER_KWARGS)
    classifier_kwargs = CLASSIFIER_KWARGS  # the baseline's settings (the factory builds it with them)
    classifier_setting = CLASSIFIER_SETTING
    default_classifier = "cam"
    train_params = (
        *SEED_PARAMS,
        "seed_dilation",
        "neg_evidence_weight",
        "crf_weight",
        "crf_scale",
        "size_weight",
        "no_roi_seeds",
        "pseudo_labels_checkpoint",
    )

    def __init__(self, backbone: Backbone, num_classes: int, classifier: WSOLModel) -> None:
        """`classifier`: the baseline model on this same `backbone` (the factory builds it from the
        `baseline_method` setting, with that method's own settings)."""
        if not classifier.is_baseline():
            raise ValueError(f"negev: the classifier must be a baseline method, not {classifier.method!r}")
        if classifier.backbone is not backbone:
            raise ValueError("negev: the classifier must be built on the backbone given to NEGEV")
        super().__init__(backbone, num_classes, image_head=False)
        self.baseline_method = classifier.method
        self.classifier = classifier
        share_weights(self.net.encoder.model, backbone.model)
        self.freeze_classifier()
        self.one_pass = self._deepest_is_the_classifiers()

    @torch.no_grad()
    def _deepest_is_the_classifiers(self) -> bool:
        """Whether the encoder's deepest map is the classifier's feature map (ResNets: yes; EfficientNet adds
        a 1x1 head after its last stage: no), probed once on a random image: then one encoder pass gives
        both the classification and the map."""
        x = torch.randn(1, 3, 2 * self.stride, 2 * self.stride)
        ours, theirs = self.encode(x)[-1], self.classifier.backbone(x)
        return ours.shape == theirs.shape and bool(torch.allclose(ours, theirs, atol=1e-5))

    def freeze_classifier(self) -> None:
        """No gradient to the classifier (the encoder's tensors included) and its batch norms in eval."""
        for p in self.classifier.parameters():
            p.requires_grad_(False)
        self.classifier.eval()
        self.net.encoder.eval()  # the same batch norms, reached through the encoder

    def train(self, mode: bool = True) -> NEGEV:
        super().train(mode)
        self.classifier.eval()
        self.net.encoder.eval()  # the same batch norms, reached through the encoder
        return self

    def load_baseline(self, state: dict[str, torch.Tensor]) -> list[str]:
        """The baseline checkpoint's weights into the classifier (and so the encoder); every tensor must
        fit. Returns the parts loaded."""
        self.classifier.load_state_dict(state)
        return ["backbone", "head"]

    @property
    def backbone(self) -> Backbone:  # the features reports and J read: the classifier's
        return self.classifier.backbone

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier.classify(features)

    def segment(self, images: torch.Tensor) -> torch.Tensor:
        """The decoder's FG/BG logits (B, 2, H, W) at the input size."""
        return self._decode(self.encode(images), images)

    def _decode(self, feats: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        return self.net.segmentation_head(self.net.decoder(feats))[..., :h, :w]

    def _classifier_features(self, feats: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        """The classifier's feature map: the encoder's deepest when they are the same (no padding), else
        the classifier's own pass."""
        h, w = images.shape[-2:]
        if self.one_pass and h % self.stride == 0 and w % self.stride == 0:
            return feats[-1]
        return self.classifier.backbone(images)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.encode(images)  # frozen: no graph through the encoder
        with torch.no_grad():
            features = self._classifier_features(feats, images)
            logits = self.classifier.classify(features)
        return {"pixel_logits": self._decode(feats, images), "features": features, "logits": logits}

    def predict(
        self, images: torch.Tensor, target_classes: torch.Tensor | None = None, differentiable: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the classifier's logits (B, C), the decoder's FG probability (B, H, W)); class-agnostic. One
        encoder pass when its deepest map is the classifier's (and no padding was needed), else two."""
        with torch.set_grad_enabled(differentiable):
            feats = self.encode(images)
            logits = self.classifier.classify(self._classifier_features(feats, images))
            pixel_logits = self._decode(feats, images)
            with float32(images.device):
                maps = torch.softmax(pixel_logits.float(), dim=1)[:, 1].clamp(0.0, 1.0)
        return (logits, maps) if differentiable else (logits.detach(), maps.detach())
