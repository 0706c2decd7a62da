"""What the driver of a training run hands to its workers (Ray Train's `train_loop_config`, or the
in-process loop): one typed record, built by `train.runner` and read by `train.worker` only."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pixelcam.config import TrainConfig
from pixelcam.data.reader import PatchDataset


@dataclass(frozen=True)
class RunPayload:
    config: TrainConfig
    dataset: PatchDataset  # the driver's opened handle: workers read its files, not the manifest again
    started: float  # wall clock at `train()`: the workers measure their start-up against it
    mlflow_uri: str | None = None
    mlflow_run_id: str | None = None
    baseline_dir: str | None = None  # PixelCAM: the baseline checkpoint whose CAMs give the pseudo-labels
    init_dir: str | None = None  # PixelCAM: the baseline checkpoint its backbone and image head start from

    def since_start(self) -> float:
        return time.time() - self.started
