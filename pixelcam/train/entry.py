"""The function Ray Train ships to its controller and its workers, in a module that imports nothing at load.

Ray pickles `TorchTrainer`'s function by reference: every process that unpickles it imports its module. The
controller only hands it on, so a function in `pixelcam.train.runner` (torch, timm, Ray Data, the model code
at import) cost it ~2 CPU-s of imports per run for nothing; the workers import the loop when they call it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pixelcam.train.payload import RunPayload


def ray_train_entry(config: dict[str, RunPayload]) -> dict[str, Any]:
    """Ray Train's `train_loop_per_worker`: the training loop on this worker (`train.worker`)."""
    from pixelcam.train.worker import train_loop_per_worker

    return train_loop_per_worker(config)
