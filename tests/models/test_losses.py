import pytest
import torch
import torch.nn.functional as F

from pixelcam.models import partial_cross_entropy, pixelcam_loss


def test_pixelcam_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0]])
    labels = torch.tensor([0])
    pixel_logits = torch.zeros(1, 2, 2, 2)
    pixel_logits[0, 1, 0, 0] = 1.0  # location (0, 0): FG logit 1, BG logit 0
    pseudo = torch.full((1, 2, 2), -1)
    pseudo[0, 0, 0] = 1
    pseudo[0, 1, 1] = 0
    total, parts = pixelcam_loss(logits, labels, pixel_logits, pseudo, lam=0.5)
    ce = -torch.log_softmax(logits, 1)[0, 0]
    pce = (-torch.log(torch.sigmoid(torch.tensor(1.0))) + torch.log(torch.tensor(2.0))) / 2
    assert parts["ce"] == pytest.approx(float(ce)) and parts["pixel_ce"] == pytest.approx(float(pce))
    assert float(total) == pytest.approx(float(ce + 0.5 * pce))


def test_all_ignored_is_zero_not_nan():
    pl = torch.randn(2, 2, 3, 3, requires_grad=True)
    loss = partial_cross_entropy(pl, torch.full((2, 3, 3), -1))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.equal(pl.grad, torch.zeros_like(pl))
    assert torch.isnan(F.cross_entropy(pl, torch.full((2, 3, 3), -1), ignore_index=-1))  # what we avoid
    with pytest.raises(ValueError, match="feature grid"):
        partial_cross_entropy(pl, torch.full((2, 4, 4), -1))
