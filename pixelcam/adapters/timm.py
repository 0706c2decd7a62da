"""timm: a Vision Transformer's token embedding (patches + position embedding + class token), the first
half of `VisionTransformer.forward_features`, which SAT needs alone to append its own token before the
blocks. timm has no public method for it; its private `_pos_embed` is called here only, and
`tests/adapters/test_timm.py` checks that embedding + blocks + norm still equals `forward_features`."""

from __future__ import annotations

import torch
from torch import nn


def vit_tokens(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, N, d) tokens of a timm VisionTransformer before its blocks (prefix tokens first)."""
    x = model.patch_embed(images)
    x = model._pos_embed(x)  # noqa: SLF001 - the adapter's reason to exist
    x = model.patch_drop(x)
    return model.norm_pre(x)
