import numpy as np
import pytest
import torch

from pixelcam.metrics import Accuracy, accuracy


def test_accuracy_from_logits_and_ids():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.1, 0.2]])
    labels = torch.tensor([0, 1, 1, 1])
    assert accuracy(logits, labels) == pytest.approx(75.0)
    assert accuracy(np.array([1, 1, 0]), np.array([1, 0, 0])) == pytest.approx(200 / 3)
    a = Accuracy().update(logits[:2], labels[:2]).merge(Accuracy().update(logits[2:], labels[2:]))
    assert a.compute() == pytest.approx(75.0)
    with pytest.raises(ValueError, match="no sample"):
        Accuracy().compute()
