"""How a model runs numerically: autocast precision and memory format, one object for train and inference.

`precision` fp32 (default, the paper's), bf16 (autocast; also runs on CPU, so the path is tested here) or fp16
(autocast with a gradient scaler, CUDA's fast path on older cards). `channels_last` stores activations NHWC,
which cuDNN's tensor-core convolutions prefer. Maps and losses stay float32 whatever the precision: the
backbone runs under autocast, the CAM arithmetic after it does not (`WSOLModel.cam`), and cross-entropy is on
autocast's float32 list.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """The numeric settings of one run on one device: `autocast()`, `images()`, `model()` and `step()`."""

    def __init__(
        self, precision: str = "fp32", device: torch.device | str = "cpu", channels_last: bool = False
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        self.name, self.dtype = precision, PRECISIONS[precision]
        self.device = torch.device(device)
        self.channels_last = channels_last
        # fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range and needs none
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=precision == "fp16")

    @property
    def memory_format(self) -> torch.memory_format:
        # channels_last off leaves layouts as they come: the input pipeline's NHWC bytes already give
        # channels-last-strided batches, which CPU convolutions run faster than NCHW copies (measured:
        # EfficientNet-Lite0 on 2 cores, 42 vs 30 img/s)
        return torch.channels_last if self.channels_last else torch.preserve_format

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to the run's dtype (a no-op context for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def model(self, model: torch.nn.Module) -> torch.nn.Module:
        """`model` on the device, in the run's memory format (weights stay float32: autocast casts per op)."""
        if self.channels_last:
            return model.to(self.device, memory_format=torch.channels_last)
        return model.to(self.device)

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """A (B, 3, H, W) batch on the device in the run's memory format (asynchronous from pinned memory)."""
        return images.to(self.device, non_blocking=True, memory_format=self.memory_format)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """backward + optimizer step, through the gradient scaler for fp16 (a plain step otherwise)."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def __repr__(self) -> str:
        return f"Precision({self.name!r}, {str(self.device)!r}, channels_last={self.channels_last})"


@contextlib.contextmanager
def float32(device: torch.device | str) -> Iterator[None]:
    """Autocast off (whatever the caller set): for the map arithmetic after the backbone."""
    with torch.autocast(device_type=torch.device(device).type, enabled=False):
        yield


def precision_of(config: dict, device: torch.device | str) -> Precision:
    """The numeric settings a run's config dict records (older runs: fp32, layouts as they come)."""
    return Precision(config.get("precision", "fp32"), device, bool(config.get("channels_last", False)))
