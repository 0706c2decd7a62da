"""NEGEV's model: the baseline's classifier frozen and shared with the U-Net encoder, the decoder trained, the
parameter counts of the paper's Table 11, and its objective composed of the losses it switches on."""

import pytest
import torch

from pixelcam.config import TrainConfig
from pixelcam.models import create_wsol_model
from pixelcam.models.losses import partial_cross_entropy
from pixelcam.models.negev_losses import crf_loss, dilate_seeds, negative_evidence_loss, size_loss
from pixelcam.runtime.pseudo_labels import PseudoLabeler
from pixelcam.runtime.transforms import unnormalize
from pixelcam.train.objectives import NegevObjective, create_objective

UNET_R50 = 32_521_250  # Table 11: U-Net on ResNet-50, 2 output classes


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # shared tensors counted once, as PyTorch lists them


def test_table_11_parameter_counts():
    # DeepMIL as Table 11 counts it: gated *and* per-class attention (528,900 head parameters, 2 classes)
    deepmil = create_wsol_model("deepmil", "resnet50", num_classes=2, mil_attention="gated_per_class")
    assert count(deepmil) == 24_036_932
    negev = create_wsol_model(
        "negev", "resnet50", num_classes=2, baseline_method="deepmil", mil_attention="gated_per_class"
    )
    assert count(negev) == 33_050_150 == UNET_R50 + 528_900
    # w/ PixelCAM keeps its baseline's image head (pixelcam_head: baseline): the baseline + 4,098
    pc = create_wsol_model(
        "pixelcam", "resnet50", num_classes=2, baseline_method="deepmil", mil_attention="gated_per_class"
    )
    assert count(pc) == 24_041_030
    # GradCAM++ and LayerCAM: 23,514,179 = ResNet-50's 23,508,032 + a linear head of 6,147 = 2048 x 3 + 3,
    # that is a 3-class head (the paper's table counts it so; with 2 classes it would be 4,098)
    for method in ("gradcampp", "layercam"):
        assert count(create_wsol_model(method, "resnet50", num_classes=3)) == 23_514_179
        negev = create_wsol_model("negev", "resnet50", num_classes=3, baseline_method=method)
        assert count(negev) == 32_527_397 == UNET_R50 + 6_147
        assert count(create_wsol_model("pixelcam", "resnet50", num_classes=3)) == 23_518_277  # + 4,098
    # SAT (DeiT-Tiny): 5,528,258 here vs the table's 5,528,267, and + 386 for the pixel head (192 x 2 + 2)
    # vs the table's + 384 (192 x 2: a head without bias): 9 and 2 parameters the paper does not explain;
    # NEGEV has no SAT row (no feature pyramid), as in the paper
    sat = create_wsol_model("sat", "deit_tiny_sat", num_classes=2)
    sat_pc = create_wsol_model("pixelcam", "deit_tiny_sat", num_classes=2, baseline_method="sat")
    assert (count(sat), count(sat_pc) - count(sat)) == (5_528_267 - 9, 384 + 2)
    # only the decoder and its head are trained: the U-Net minus its encoder
    trainable = sum(p.numel() for p in negev.parameters() if p.requires_grad)
    encoder = sum(p.numel() for p in negev.net.encoder.parameters())
    assert trainable == UNET_R50 - encoder


def test_a_vit_backbone_is_refused():
    with pytest.raises(ValueError, match="CNN backbone"):
        create_wsol_model("negev", "deit_tiny_sat", baseline_method="sat")
    with pytest.raises(ValueError, match="must be a baseline"):
        create_wsol_model("negev", "resnet10t", baseline_method="pixelcam")


def test_the_classifier_is_the_baselines_frozen_and_its_encoder_is_shared():
    torch.manual_seed(0)
    baseline = create_wsol_model("cam", "resnet10t", num_classes=2)
    with torch.no_grad():  # a baseline of its own weights, batch-norm statistics included
        for m in baseline.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
    baseline.eval()
    negev = create_wsol_model("negev", "resnet10t", num_classes=2)
    assert negev.load_baseline(baseline.state_dict()) == ["backbone", "head"]
    # a ResNet's deepest encoder map is its feature map: one encoder pass gives class and map; not so for
    # EfficientNet (a 1x1 head after its last stage), which takes the classifier's own pass
    eff = create_wsol_model("negev", "efficientnet_lite0")
    assert negev.one_pass and not eff.one_pass
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(eff.predict(x)[0], eff.classifier(x)["logits"], atol=1e-5)
    x = torch.randn(3, 3, 64, 64)
    logits, maps = negev.predict(x)
    assert torch.allclose(logits, baseline(x)["logits"], atol=1e-5)  # the baseline's classification
    pixel_logits = negev.segment(x)
    assert torch.allclose(maps, torch.softmax(pixel_logits, 1)[:, 1])  # the decoder's FG probability, as is
    assert maps.shape == (3, 64, 64)
    # one set of encoder tensors: the classifier's backbone and the U-Net's encoder are the same storage
    enc = dict(negev.net.encoder.model.named_parameters())
    assert all(p is enc[n] for n, p in negev.classifier.backbone.model.named_parameters() if n in enc)

    negev.train()  # training the decoder keeps the classifier's batch norms and weights as they are
    assert not negev.classifier.training and not negev.net.encoder.training and negev.net.decoder.training
    before = {k: v.clone() for k, v in negev.classifier.state_dict().items()}
    opt = torch.optim.SGD(negev.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for _ in range(2):
        out = negev(x)
        loss = torch.nn.functional.cross_entropy(
            out["pixel_logits"], torch.zeros(3, 64, 64, dtype=torch.long)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(v, negev.classifier.state_dict()[k]) for k, v in before.items())
    assert not torch.allclose(negev.segment(x), pixel_logits)  # the decoder did learn


def test_negev_objective_sums_the_weighted_terms_it_switches_on():
    torch.manual_seed(1)
    baseline = create_wsol_model("cam", "resnet10t", num_classes=2)
    images = torch.randn(4, 3, 32, 32)
    labels = torch.tensor([0, 1, 0, 1])  # class 0 has no ROI (CAMELYON16's normal)
    logits = torch.randn(4, 2, 32, 32, requires_grad=True)
    goal = NegevObjective(
        lam=0.5, seed_dilation=3, neg_evidence_weight=2.0, crf_weight=1e-3, size_weight=0.1,
        no_roi_labels=frozenset({0}),
    )  # fmt: skip

    def labeler() -> PseudoLabeler:
        return PseudoLabeler(baseline, n=2, seed=7, no_roi_labels={0})

    loss, parts = goal({"pixel_logits": logits}, images, labels, labeler(), epoch=100)
    seeds = dilate_seeds(labeler()(images, labels, (32, 32)), 3)  # the same draws (same seed)
    assert (seeds[labels == 0] == -1).all() and (seeds[labels == 1] == 1).any()
    probs = torch.softmax(logits, 1)
    expected = (
        0.5 * partial_cross_entropy(logits, seeds)
        + 2.0 * negative_evidence_loss(logits, labels == 0)
        + 1e-3 * crf_loss(probs, unnormalize(images) * 255)
        + 0.1 * size_loss(probs, 1.01**100)
    )
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert set(parts) == {"ce", "pixel_ce", "neg_evidence", "crf", "size"} and parts["ce"] == 0.0
    off, parts = NegevObjective()({"pixel_logits": logits}, images, labels, labeler(), epoch=0)
    assert set(parts) == {"ce", "pixel_ce"}  # weight 0: the term is not even computed


def test_create_objective_takes_the_runs_settings():
    cfg = TrainConfig(method="negev", lam=0.3, seed_dilation=3, crf_weight=2e-9, crf_scale=0.5)
    goal = create_objective(cfg, {0})
    assert goal == NegevObjective(
        lam=0.3, seed_dilation=3, crf_weight=2e-9, crf_scale=0.5, no_roi_labels=frozenset({0})
    )
    assert create_objective(TrainConfig(method="pixelcam", lam=0.7), set()).lam == 0.7
    with pytest.raises(ValueError, match="seed_dilation"):
        TrainConfig(method="negev", seed_dilation=2)
    with pytest.raises(ValueError, match="init_from"):
        TrainConfig(method="negev", init_from="none")


@pytest.mark.parametrize("baseline", ["deepmil", "sat"])
def test_pixelcam_keeps_its_baselines_image_head(baseline: str):
    torch.manual_seed(0)
    backbone = "deit_tiny_sat" if baseline == "sat" else "resnet10t"
    base = create_wsol_model(baseline, backbone, num_classes=2)
    base.eval()
    pc = create_wsol_model("pixelcam", backbone, num_classes=2, baseline_method=baseline)
    assert pc.load_baseline(base.state_dict()) == ["backbone", "head"]
    pc.eval()
    x = torch.randn(2, 3, 64, 64)
    out = pc(x)
    assert torch.allclose(out["logits"], base(x)["logits"], atol=1e-5)  # g is the baseline's head, as is
    assert out["pixel_logits"].shape[:2] == (2, 2)
    pc.train()
    assert ("aux_loss" in pc(x)) == (baseline == "sat")  # SAT's own training terms come along
    gap = create_wsol_model("pixelcam", backbone if baseline != "sat" else "resnet10t", num_classes=2)
    assert gap.classifier is None and hasattr(gap, "head")  # pixelcam_head: gap
