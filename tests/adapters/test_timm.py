"""`vit_tokens` is the first half of the pinned timm's `VisionTransformer.forward_features`: embedding, then
the blocks and the final norm, gives exactly what timm's own method gives (on the backbones SAT uses)."""

import timm
import torch

from pixelcam.adapters.timm import vit_tokens


def test_tokens_then_blocks_equal_forward_features():
    torch.manual_seed(0)
    model = timm.create_model("deit_tiny_patch16_224", pretrained=False, dynamic_img_size=True).eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        t = vit_tokens(model, x)
        ours = model.norm(model.blocks(t))
        theirs = model.forward_features(x)
    assert t.shape == (2, 1 + (96 // 16) * (128 // 16), model.num_features)
    assert torch.allclose(ours, theirs, atol=1e-6)
