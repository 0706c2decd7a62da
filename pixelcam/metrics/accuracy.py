"""CL: top-1 classification accuracy of the image classifier g, in percent, with a summable state."""

from __future__ import annotations

import numpy as np
import torch

from pixelcam.metrics.distributed import all_reduce_sum


def _preds(logits_or_preds: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(logits_or_preds)
    return t.argmax(dim=1) if t.dim() == 2 else t.long()


class Accuracy:
    """Streaming accuracy: `update(logits (B, C) or ids (B,), labels (B,))`, `compute()` in percent."""

    def __init__(self) -> None:
        self.correct = torch.zeros((), dtype=torch.int64)
        self.total = torch.zeros((), dtype=torch.int64)

    def update(
        self, logits_or_preds: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray
    ) -> Accuracy:
        preds, labels = _preds(logits_or_preds).cpu(), torch.as_tensor(labels).long().cpu()
        if preds.shape != labels.shape:
            raise ValueError(
                f"predictions {tuple(preds.shape)} and labels {tuple(labels.shape)} differ in shape"
            )
        self.correct += (preds == labels).sum()
        self.total += labels.numel()
        return self

    def merge(self, other: Accuracy) -> Accuracy:
        self.correct += other.correct
        self.total += other.total
        return self

    def sync(self) -> Accuracy:
        """Sum counts across DDP ranks (no-op outside torch.distributed)."""
        t = all_reduce_sum(torch.stack([self.correct, self.total]))
        self.correct, self.total = t[0].clone(), t[1].clone()
        return self

    def compute(self) -> float:
        if int(self.total) == 0:
            raise ValueError("accuracy is undefined: no sample was seen")
        return 100.0 * int(self.correct) / int(self.total)


def accuracy(logits_or_preds: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return Accuracy().update(logits_or_preds, labels).compute()
