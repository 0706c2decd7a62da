from pathlib import Path

import pytest
import torch

from pixelcam.data import open_dataset
from pixelcam.models import create_wsol_model
from pixelcam.runtime.data import iter_split
from pixelcam.runtime.pseudo_labels import PseudoLabeler
from pixelcam.train.steps import NonFiniteLossError, train_epoch, validate


def batches(n: int = 3, size: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [
        {"image": torch.randn(4, 3, size, size, generator=g), "label": torch.tensor([0, 1, 0, 1])}
        for _ in range(n)
    ]


def small(method: str = "cam"):
    torch.manual_seed(0)
    return create_wsol_model(method, "resnet10t")


def test_baseline_epoch_reduces_the_loss():
    model = small()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    data = batches()
    first = train_epoch(model, data, opt, epoch=0)
    for e in range(1, 6):
        last = train_epoch(model, data, opt, epoch=e)
    assert first.images == 12 and first.batches == 3 and first.pixel_ce == 0.0
    assert last.loss < first.loss


def test_pixelcam_epoch_uses_pseudo_labels():
    model = small("pixelcam")
    labeler = PseudoLabeler(small("cam"), "pb", n=3, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    stats = train_epoch(model, batches(2), opt, epoch=0, pseudo_labeler=labeler, lam=0.5)
    assert stats.pixel_ce > 0
    assert stats.loss == pytest.approx(stats.ce + 0.5 * stats.pixel_ce, rel=1e-5)
    assert all(not p.requires_grad for p in labeler.baseline.parameters())


def test_non_finite_loss_names_epoch_and_batch():
    model = small()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    data = batches(3)
    data[2]["image"][0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="epoch 4, batch 2"):
        train_epoch(model, data, opt, epoch=4)


def test_validate_reports_pxap_tau_and_cl(synth_dir: Path):
    ds = open_dataset(synth_dir)
    model = small()
    model.train()
    v = validate(
        model, iter_split(ds, "synth-colon", "valpx", 64), iter_split(ds, "synth-colon", "valcl", 64)
    )
    assert 0 < v.valpx_pxap <= 100 and 0 <= v.tau < 1 and 0 <= v.valcl_cl <= 100
    assert model.training  # mode restored


def test_uint8_batches_are_normalised_in_the_step():
    from pixelcam.runtime.transforms import normalize_uint8

    raw = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 0, 1])
    losses = []
    for images in (raw, normalize_uint8(raw)):
        model = small()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        losses.append(train_epoch(model, [{"image": images, "label": labels}], opt, 0).loss)
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
