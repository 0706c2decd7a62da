"""GradCAM++ and LayerCAM against values derived by hand on a tiny network.

The network: features A (1, 2, 2, 2) given directly (identity backbone), GAP, then a linear layer W
(2 classes).
For S_c = sum_k W_ck mean_ij A^k_ij, the gradient is g^k_ij = W_ck / 4 (constant over ij).
"""

import numpy as np
import pytest
import torch
from torch import nn

from pixelcam.models.backbones import Backbone
from pixelcam.models.methods.gradcampp import GradCAMpp, gradcampp_weights
from pixelcam.models.methods.layercam import LayerCAM


class Identity(Backbone):
    def __init__(self) -> None:
        nn.Module.__init__(self)
        self.num_features = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


A = torch.tensor([[[[1.0, 2.0], [0.0, 3.0]], [[2.0, 0.0], [1.0, 1.0]]]])  # channel sums 6 and 4
W = torch.tensor([[2.0, -1.0], [0.5, 1.0]])


def build(cls, **kwargs):
    m = cls(Identity(), 2, **kwargs)
    with torch.no_grad():
        m.head.fc.weight.copy_(W)
        m.head.fc.bias.zero_()
    return m


def test_gradcampp_by_hand():
    # class 0: g = (0.5, -0.25). alpha_k = g^2 / (2 g^2 + sum(A_k) g^3)
    #   k=0: 0.25 / (0.5 + 6 * 0.125) = 0.25 / 1.25 = 0.2 ; weight = sum_ij 0.2 * relu(0.5) = 4 * 0.1 = 0.4
    #   k=1: relu(-0.25) = 0 -> weight 0
    # map = relu(0.4 * A_0) = [[0.4, 0.8], [0, 1.2]] -> min-max [[1/3, 2/3], [0, 1]]
    m = build(GradCAMpp)
    raw = m.raw_cam(A, torch.tensor([0]), differentiable=False)
    assert torch.allclose(raw, torch.tensor([[[0.4, 0.8], [0.0, 1.2]]]), atol=1e-6)
    expected = torch.tensor([[[1 / 3, 2 / 3], [0.0, 1.0]]])
    assert torch.allclose(m.cam(A, torch.tensor([0])), expected, atol=1e-6)
    # class 1: g = (0.125, 0.25)
    #   k=0: 0.015625 / (0.03125 + 6 * 0.001953125) = 0.015625 / 0.04296875 = 0.363636...; w0 = 4 * a * 0.125
    #   k=1: 0.0625 / (0.125 + 4 * 0.015625) = 0.0625 / 0.1875 = 1/3; w1 = 4 * (1/3) * 0.25 = 1/3
    a0 = 0.015625 / 0.04296875
    w0, w1 = 4 * a0 * 0.125, 1 / 3
    expected = torch.relu(w0 * A[0, 0] + w1 * A[0, 1])
    assert torch.allclose(m.raw_cam(A, torch.tensor([1]), False)[0], expected, atol=1e-6)


def test_gradcampp_denominator_matters():
    g = torch.full((1, 2, 2, 2), 0.5)
    with_denominator = gradcampp_weights(A, g)
    # Without the denominator (alpha = g^2 / (2 g^2) = 1/2) both channels would weigh 4*0.5*0.5 = 1.
    assert torch.allclose(
        with_denominator,
        torch.tensor([[4 * 0.25 / (0.5 + 6 * 0.125) * 0.5, 4 * 0.25 / (0.5 + 4 * 0.125) * 0.5]]),
    )
    assert not torch.allclose(with_denominator, torch.ones(1, 2))
    zero = gradcampp_weights(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2))
    assert torch.equal(zero, torch.zeros(1, 2))  # 0/0 guarded


def test_gradcampp_official_variant_has_no_denominator():
    # the official code's alpha = g^2: w_k = sum_ij g^2 relu(g); for class 0, g = (0.5, -0.25) per channel:
    #   k=0: 4 * 0.25 * 0.5 = 0.5 ; k=1: relu(-0.25) = 0 -> map = relu(0.5 * A_0) = [[0.5, 1.0], [0, 1.5]]
    m = build(GradCAMpp, gradcampp_variant="official")
    raw = m.raw_cam(A, torch.tensor([0]), differentiable=False)
    assert torch.allclose(raw, torch.tensor([[[0.5, 1.0], [0.0, 1.5]]]), atol=1e-6)
    # class 1: g = (0.125, 0.25): w0 = 4 * 0.125^3, w1 = 4 * 0.25^3
    expected = torch.relu(4 * 0.125**3 * A[0, 0] + 4 * 0.25**3 * A[0, 1])
    assert torch.allclose(m.raw_cam(A, torch.tensor([1]), False)[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="gradcampp_variant"):
        build(GradCAMpp, gradcampp_variant="torchcam")


def test_layercam_by_hand():
    # class 0: relu(g) = (0.5, 0) -> map = relu(0.5 * A_0) = [[0.5, 1], [0, 1.5]]
    m = build(LayerCAM)
    assert torch.allclose(m.raw_cam(A, torch.tensor([0]), False), torch.tensor([[[0.5, 1.0], [0.0, 1.5]]]))
    # class 1: relu(g) = (0.125, 0.25) -> 0.125 * A_0 + 0.25 * A_1
    expected = 0.125 * A[0, 0] + 0.25 * A[0, 1]
    assert torch.allclose(m.raw_cam(A, torch.tensor([1]), False)[0], expected)


def test_per_sample_targets_in_one_batch():
    m = build(LayerCAM)
    batch = torch.cat([A, A])
    maps = m.raw_cam(batch, torch.tensor([0, 1]), False)
    assert torch.allclose(maps[0], m.raw_cam(A, torch.tensor([0]), False)[0])
    assert torch.allclose(maps[1], m.raw_cam(A, torch.tensor([1]), False)[0])


def test_deepmil_per_class_attention_by_hand():
    """The official code's DeepMIL: per class c, a_c = softmax_i(w_c^T tanh(V h_i)), z_c = sum_i a_ci h_i,
    logit_c = <u_c, z_c> + b_c; the map of class c is a_c. Derived with V = I, w_0 = (1, 0), w_1 = (0, 1)."""
    from pixelcam.models.methods.deepmil import DeepMIL

    m = DeepMIL(Identity(), 2, hidden=2, mil_attention="per_class")
    with torch.no_grad():
        m.v.weight.copy_(torch.eye(2))
        m.v.bias.zero_()
        m.w.weight.copy_(torch.eye(2))
        m.w.bias.zero_()
        m.fc.weight.copy_(W)
        m.fc.bias.copy_(torch.tensor([0.1, -0.2]))
    h = A[0].flatten(1).T  # (4 locations, 2 channels)
    a = torch.softmax(torch.tanh(h), dim=0)  # column c: attention of class c over the 4 locations
    z = a.T @ h  # (2 classes, 2 channels)
    logits = (z * W).sum(1) + torch.tensor([0.1, -0.2])
    torch.testing.assert_close(m(A)["logits"][0], logits)
    for c in (0, 1):
        raw = m.raw_cam(A, torch.tensor([c]), False)[0]
        torch.testing.assert_close(raw, a[:, c].view(2, 2))
    assert not torch.allclose(m.raw_cam(A, torch.tensor([0]), False), m.raw_cam(A, torch.tensor([1]), False))
    gated = DeepMIL(Identity(), 2, hidden=2)  # Ilse's: one map for every class
    torch.testing.assert_close(
        gated.raw_cam(A, torch.tensor([0]), False), gated.raw_cam(A, torch.tensor([1]), False)
    )


def test_sat_attention_mask_and_gating_by_hand():
    """SAT's attention: the spatial token (last) gives M_j = sigmoid(mean_h q_loc^h . k_j^h * scale), and in
    the gated blocks every token's softmax attention is multiplied by M over the keys."""
    import timm

    from pixelcam.models.sat_backbone import sat_attention

    torch.manual_seed(0)
    attn = timm.create_model("deit_tiny_patch16_224", pretrained=False).blocks[0].attn.eval()
    x = torch.randn(2, 6, 192)
    heads, hd = 3, 64
    qkv = x @ attn.qkv.weight.T + attn.qkv.bias
    q, k, v = (qkv[..., i * 192 : (i + 1) * 192].reshape(2, 6, heads, hd) for i in range(3))
    logits = torch.einsum("bnhd,bmhd->bhnm", q, k) / hd**0.5
    mask = torch.sigmoid(logits[:, :, -1, :].mean(1))  # (B, N)
    for gate in (False, True):
        a = logits.softmax(-1) * (mask[:, None, None, :] if gate else 1.0)
        y = torch.einsum("bhnm,bmhd->bnhd", a, v).reshape(2, 6, 192) @ attn.proj.weight.T + attn.proj.bias
        out, m = sat_attention(attn, x, gate)
        torch.testing.assert_close(m, mask)
        torch.testing.assert_close(out, y)


def test_sat_model_maps_losses_and_gradients():
    from scipy import ndimage

    from pixelcam.models import create_wsol_model
    from pixelcam.models.methods.sat import gaussian_kernel, sat_losses

    torch.manual_seed(0)
    model = create_wsol_model("sat", num_classes=2)  # deit_tiny_sat
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    bb = model.backbone
    assert out["features"].shape == (2, 192, 4, 4) and bb.maps.shape == (2, 4, 4)
    assert bb.maps.min() >= 0 and bb.maps.max() <= 1  # sigmoid masks
    (out["logits"].sum() + out["aux_loss"]).backward()
    assert bb.loc_token.grad.abs().sum() > 0 and bb.model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert bb.model.blocks[-1].attn.qkv.weight.grad.abs().sum() > 0 and model.head.weight.grad is not None
    # losses by hand: area |mean - 0.35|, normalisation mean(s (1 - s)) of the map smoothed with zero padding
    k = gaussian_kernel()
    assert float(k.sum()) == 1.0 or abs(float(k.sum()) - 1) < 1e-6
    assert torch.allclose(k, k.T) and k[1, 1] == k.max()
    maps = torch.rand(3, 5, 5, generator=torch.Generator().manual_seed(1))
    ba, norm = sat_losses(maps, 0.35, k)
    assert (
        float(ba) == abs(float(maps.mean()) - 0.35) or abs(float(ba) - abs(float(maps.mean()) - 0.35)) < 1e-6
    )
    smooth = np.stack([ndimage.convolve(m.numpy(), k.numpy(), mode="constant", cval=0.0) for m in maps])
    assert float(norm) == pytest.approx(float((smooth * (1 - smooth)).mean()), rel=1e-5)
    with pytest.raises(ValueError, match="sat needs the backbone 'deit_tiny_sat'"):
        create_wsol_model("sat", "deit_tiny_patch16_224")
