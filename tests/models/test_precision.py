"""Mixed precision and channels-last on CPU (bf16 autocast runs here): same losses and maps to a tolerance,
float32 maps in [0, 1], no dtype errors in any CAM method, fp16's gradient scaler exercised."""

import time

import pytest
import torch

from pixelcam.config import ConfigError, TrainConfig
from pixelcam.models import create_wsol_model, list_methods
from pixelcam.models.precision import Precision, precision_of
from pixelcam.runtime.pseudo_labels import PseudoLabeler
from pixelcam.train.steps import train_epoch


def _batches(n: int = 2, size: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [
        {"image": torch.randn(4, 3, size, size, generator=g), "label": torch.tensor([0, 1, 0, 1])}
        for _ in range(n)
    ]


def _model(method: str, backbone: str | None = "resnet10t"):
    torch.manual_seed(0)
    return create_wsol_model(method, backbone) if backbone else create_wsol_model(method, num_classes=2)


@pytest.mark.parametrize("method", list_methods())
def test_every_cam_method_gives_float32_maps_under_bf16(method: str):
    backbone = None if method == "sat" else "resnet10t"  # SAT lives on its own DeiT
    model = _model(method, backbone).eval()
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 1])
    ref = model.cam(x, y)
    num = Precision("bf16", "cpu")
    with num.autocast():
        feats = model.backbone(x)
        maps = model.cam(x, y)
    if backbone:  # the CNN really ran in bf16 (DeiT ends in a LayerNorm, which autocast keeps in fp32)
        assert feats.dtype == torch.bfloat16
    assert maps.dtype == torch.float32 and maps.shape == (3, 64, 64)
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
    # bf16 has 8 bits of mantissa: maps agree in shape, not to the last digit
    corr = torch.corrcoef(torch.stack([ref.flatten(), maps.flatten()]))[0, 1]
    assert float((ref - maps).abs().mean()) < 0.1 and float(corr) > 0.9


def test_bf16_training_step_matches_fp32_to_a_tolerance():
    data = _batches(1)
    losses = {}
    for name in ("fp32", "bf16"):
        model = _model("cam")
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        stats = train_epoch(model, data, opt, 0, precision=Precision(name, "cpu"))
        losses[name] = stats.loss
        assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.03)


def test_pixelcam_epoch_under_bf16_channels_last():
    baseline = _model("cam")
    labeler = PseudoLabeler(baseline, "pb", 3, seed=0)
    model = _model("pixelcam")
    num = Precision("bf16", "cpu", channels_last=True)
    model = num.model(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    stats = train_epoch(model, _batches(2), opt, 0, pseudo_labeler=labeler, precision=num)
    assert stats.images == 8 and stats.pixel_ce > 0 and torch.isfinite(torch.tensor(stats.loss))
    convs = [p for p in model.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)


def test_fp16_uses_the_gradient_scaler_and_still_learns():
    num = Precision("fp16", "cpu")
    assert num.scaler.is_enabled() and not Precision("bf16", "cpu").scaler.is_enabled()
    model = _model("cam")
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    stats = train_epoch(model, _batches(2), opt, 0, precision=num)
    assert torch.isfinite(torch.tensor(stats.loss))
    assert num.scaler.get_scale() > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_channels_last_changes_layout_not_values():
    model = _model("cam").eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    ref = model(x)["logits"]
    num = Precision("fp32", "cpu", channels_last=True)
    model = num.model(model)
    xi = num.images(x)
    assert xi.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(model(xi)["logits"], ref, rtol=1e-4, atol=1e-4)


def test_input_wait_counts_time_blocked_on_the_iterator():
    def slow():
        for b in _batches(3, size=32):
            time.sleep(0.1)
            yield b

    model = _model("cam")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    stats = train_epoch(model, slow(), opt, 0)
    assert stats.input_wait >= 0.3 and stats.input_wait < stats.seconds
    assert 0 < stats.input_wait_fraction < 1


def test_precision_settings_validated_and_recorded():
    cfg = TrainConfig(precision="bf16", channels_last=True, use_gpu=True, gpus_per_worker=0.25)
    assert cfg.to_dict()["precision"] == "bf16" and cfg.to_dict()["gpus_per_worker"] == 0.25
    num = precision_of(cfg.to_dict(), "cpu")
    assert (num.name, num.channels_last) == ("bf16", True)
    assert precision_of({}, "cpu").name == "fp32"  # a run from before the setting existed
    with pytest.raises(ConfigError, match=r"precision.*'bf32'.*fp32"):
        TrainConfig.from_dict({"precision": "bf32"})
    with pytest.raises(ConfigError, match="gpus_per_worker.*1.5.*fractions only below 1"):
        TrainConfig.from_dict({"use_gpu": True, "gpus_per_worker": 1.5})
    with pytest.raises(ConfigError, match="gpus_per_worker.*needs use_gpu"):
        TrainConfig.from_dict({"gpus_per_worker": 0.5})
    with pytest.raises(ValueError, match="precision 'int8'"):
        Precision("int8")
