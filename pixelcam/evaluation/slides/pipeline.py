"""The Ray Data pipeline of slide inference: tile coordinates -> tile pixels (CPU tasks) -> model (an actor
pool: CPU actors here, `num_gpus` per actor on a cluster) -> per-tile class probabilities and pooled maps,
streamed back to the driver, which stitches them as they come.

Rows carry the slide's index, the tile's level position (x, y) and its level-0 position (x0, y0). A tile
that cannot be read keeps its row with an `error` (the driver fails that slide and keeps the others).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelcam.errors import ConfigError, SlideError

_OPEN: dict[str, tuple[Any, Any]] = {}  # slides opened by this worker process (tasks reuse their worker)


def _slide(path: str) -> tuple[Any, Any]:
    from pixelcam.evaluation.slides.reader import open_slide

    if path not in _OPEN:
        _OPEN[path] = open_slide(path)
    return _OPEN[path]


def read_tiles(batch: dict[str, np.ndarray], paths: Sequence[str], tile: int) -> dict[str, np.ndarray]:
    """Ray Data task: add `image` (B, tile, tile, 3) uint8 and `error` (B,) str ('' when read)."""
    from pixelcam.evaluation.slides.reader import read_region

    n = len(batch["slide"])
    images = np.zeros((n, tile, tile, 3), np.uint8)
    errors = np.full(n, "", dtype=object)
    for i in range(n):
        try:
            slide, info = _slide(paths[int(batch["slide"][i])])
            images[i] = read_region(
                slide, info, int(batch["x0"][i]), int(batch["y0"][i]), int(batch["level"][i]), tile
            )
        except SlideError as exc:
            errors[i] = str(exc)
    return {**batch, "image": images, "error": errors.astype(str)}


class TileModel:
    """Ray Data actor: a checkpoint's model on one device; a batch of tiles -> `probs` (B, C), `map` (B, t, t)
    pooled by `stride`, and map statistics at full resolution (`map_mean`, `map_max`, `map_area` = fraction
    >= 0.5). Maps are of `cam_class` (an index) or, when None, of each tile's predicted class (class-agnostic
    methods such as PixelCAM ignore it)."""

    def __init__(
        self,
        checkpoint: str,
        stride: int,
        device: str = "cpu",
        precision: str | None = None,
        cam_class: int | None = None,
        threads: int | None = None,
    ) -> None:
        import torch

        from pixelcam.models.precision import precision_of
        from pixelcam.runtime.checkpoint import load_checkpoint

        if threads:
            torch.set_num_threads(threads)
        ck = load_checkpoint(checkpoint)
        config = ck.meta.get("config", {})
        self.num = precision_of({**config, **({"precision": precision} if precision else {})}, device)
        self.model = self.num.model(ck.build_model()).eval()
        self.stride, self.cam_class = stride, cam_class

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch
        import torch.nn.functional as F

        from pixelcam.runtime.transforms import to_tensor

        x = self.num.images(to_tensor(batch["image"]))
        targets = None if self.cam_class is None else torch.full((x.shape[0],), self.cam_class)
        with self.num.autocast():
            logits, maps = self.model.predict(x, targets)
        probs = torch.softmax(logits.float(), dim=1) if logits.shape[1] else logits.float()
        maps = maps.float()
        pooled = F.avg_pool2d(maps[:, None], self.stride)[:, 0] if self.stride > 1 else maps
        out = {k: v for k, v in batch.items() if k != "image"}
        out.update(
            probs=probs.cpu().numpy(),
            map=pooled.cpu().numpy().astype(np.float32),
            map_mean=maps.mean((1, 2)).cpu().numpy(),
            map_max=maps.amax((1, 2)).cpu().numpy(),
            map_area=(maps >= 0.5).float().mean((1, 2)).cpu().numpy(),
        )
        return out


def bound_model(**kwargs: Any) -> type[TileModel]:
    """A TileModel subclass with its constructor's arguments bound: shipped with the class (pickled by value),
    not as object-store arguments, which Ray would refuse to restart a lost actor from."""

    class BoundTileModel(TileModel):
        def __init__(self) -> None:
            super().__init__(**kwargs)

    return BoundTileModel


@dataclass(frozen=True)
class Resources:
    """Actor pool and task sizes: `actors` model actors of `cpus` CPUs (and `gpus` GPUs) each; tile reads
    as tasks of `read_cpus`; `threads` torch threads per actor."""

    actors: int
    cpus: float
    gpus: float
    read_cpus: float
    threads: int

    @classmethod
    def plan(
        cls, actors: int, gpus_per_actor: float, cpus_per_actor: float | None, cluster: dict
    ) -> Resources:
        """CPU actors share the cluster's CPUs but half a CPU, which the read tasks keep (actors holding every
        CPU would leave Ray Data no budget for reads: the pipeline would hang)."""
        total = float(cluster.get("CPU", 1.0))
        if gpus_per_actor:
            if gpus_per_actor * actors > cluster.get("GPU", 0.0):
                raise ConfigError(
                    f"--actors {actors} x --gpus-per-actor {gpus_per_actor:g} needs "
                    f"{actors * gpus_per_actor:g} GPUs; the cluster has {cluster.get('GPU', 0.0):g}"
                )
            cpus = cpus_per_actor or 1.0
        else:
            cpus = cpus_per_actor or max(0.25, np.floor(4 * (total - 0.5) / actors) / 4)
        if cpus * actors > total - 0.25:
            raise ConfigError(
                f"--actors {actors} x {cpus:g} CPUs leaves no CPU for reading tiles (cluster: {total:g} CPUs)"
            )
        return cls(actors, float(cpus), float(gpus_per_actor), 0.25, max(1, round(cpus)))


def tile_table(
    jobs: Sequence[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]], rows_per_block: int
) -> list[Any]:
    """Arrow tables of `rows_per_block` rows (slide, level, x, y, x0, y0, tissue) from (slide index, level,
    level positions (N, 2), level-0 positions (N, 2), tissue fractions (N,)) per slide: the input blocks."""
    import pyarrow as pa

    keys = ("slide", "level", "x", "y", "x0", "y0", "tissue")
    cols: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for idx, level, pos, pos0, tissue in jobs:
        n = len(pos)
        cols["slide"].append(np.full(n, idx, np.int32))
        cols["level"].append(np.full(n, level, np.int32))
        cols["x"].append(pos[:, 0])
        cols["y"].append(pos[:, 1])
        cols["x0"].append(pos0[:, 0])
        cols["y0"].append(pos0[:, 1])
        cols["tissue"].append(np.asarray(tissue, np.float32))
    table = pa.table({k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in cols.items()})
    return [table.slice(i, rows_per_block) for i in range(0, max(table.num_rows, 1), rows_per_block)]


def run_tiles(
    paths: Sequence[str],
    jobs: Sequence[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]],
    checkpoint: str,
    *,
    tile: int,
    stride: int,
    batch_size: int,
    resources: Resources,
    precision: str | None = None,
    cam_class: int | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Stream the model's output batches over every tile of `jobs` (any order)."""
    import ray

    # one block per batch: a read task per batch, so reads overlap inference, every actor gets work and
    # results stream back batch by batch (one block of a whole small slide ran read, then model, serially)
    ds = ray.data.from_arrow(tile_table(jobs, batch_size))
    ds = ds.map_batches(
        read_tiles,
        fn_kwargs={"paths": list(paths), "tile": tile},
        batch_size=batch_size,
        batch_format="numpy",
        num_cpus=resources.read_cpus,
    )
    model = bound_model(
        checkpoint=checkpoint,
        stride=stride,
        device="cuda" if resources.gpus else "cpu",
        precision=precision,
        cam_class=cam_class,
        threads=resources.threads,
    )
    ds = ds.map_batches(
        model,
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=resources.actors),
        num_cpus=resources.cpus,
        **({"num_gpus": resources.gpus} if resources.gpus else {}),
    )
    yield from ds.iter_batches(batch_size=None, batch_format="numpy")
