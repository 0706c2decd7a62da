"""Synthetic histology domains (the embedded default dataset), deterministic for a seed.

Each domain (`SYNTH_DOMAINS`) is a renderer `(rng, size, cancer) -> (rgb, roi_mask)` with the ROI semantics of
the real dataset it stands for (synth-colon ~ GlaS: glands in both classes; synth-lymph ~ CAMELYON16: ROI in
tumour tiles only); `generate_synthetic`
assigns splits ("WSOL done right": valpx = 3 pixel-labelled images per class) and writes a Parquet dataset.
"""

from __future__ import annotations

import multiprocessing
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from pixelcam.adapters.libc import die_with_parent
from pixelcam.data.errors import DatasetError
from pixelcam.data.png import encode_png
from pixelcam.data.reader import open_dataset
from pixelcam.data.schema import SCHEMA_VERSION, Patch
from pixelcam.data.synth.colon import render_colon
from pixelcam.data.synth.lymph import render_lymph
from pixelcam.data.writer import DatasetWriter
from pixelcam.registry import Registry

Renderer = Callable[[np.random.Generator, int, bool], tuple[np.ndarray, np.ndarray]]
CLASS_NAMES = ["normal", "cancer"]


@dataclass(frozen=True)
class SynthDomain:
    """A synthetic domain: its renderer, the ROI semantics of the real dataset it stands for, and the
    renderer's version (raised whenever the same seed draws other tiles: a dataset records it)."""

    render: Renderer
    roi_classes: tuple[str, ...]  # classes whose tiles carry an ROI
    stands_for: str
    version: int


SYNTH_DOMAINS: Registry[SynthDomain] = Registry("synthetic domain")
# GlaS: glands annotated in benign and malignant images; CAMELYON16: only tumour patches have an ROI.
# synth-colon v2: large glands packed in mucosa beside submucosa, benign and malignant architecture throughout
# (v1: small glands everywhere and a local tumour region, which no CAM could localise: issue 28).
SYNTH_DOMAINS.register("synth-colon")(lambda: SynthDomain(render_colon, tuple(CLASS_NAMES), "GlaS", 2))
SYNTH_DOMAINS.register("synth-lymph")(lambda: SynthDomain(render_lymph, ("cancer",), "CAMELYON16", 1))


def list_synth_domains() -> list[str]:
    return SYNTH_DOMAINS.names()


MAX_SIZE = 2048  # px: the largest synthetic tile (a 12 MiB image; patches of the field are 128-512 px)
MAX_PER_CLASS = 100_000  # images per class and domain


@dataclass
class SynthConfig:
    """Settings of `pixelcam data synth` (per_class images of each class per domain)."""

    domains: list[str] = field(default_factory=lambda: ["synth-colon", "synth-lymph"])
    per_class: int = 150
    size: int = 128
    seed: int = 0
    valpx_per_class: int = 3
    valcl_fraction: float = 0.1
    test_fraction: float = 0.25

    def min_per_class(self) -> int:
        """The smallest per_class that fills every split (one image at least in train, valcl and test)."""
        n = self.valpx_per_class + 1
        while not self._fills(n):
            n += 1
        return n

    def _fills(self, per_class: int) -> bool:
        rest = per_class - self.valpx_per_class
        n_valcl, n_test = round(rest * self.valcl_fraction), round(rest * self.test_fraction)
        return n_valcl >= 1 and n_test >= 1 and rest - n_valcl - n_test >= 1

    def origin(self, domain: str) -> str:
        """What a dataset records as `domain`'s origin: the renderer's version and every setting that
        changes its tiles (a different string = different data)."""
        version = SYNTH_DOMAINS.create(domain).version
        return (
            f"pixelcam synthetic {domain} v{version}: size {self.size}, seed {self.seed}, per_class "
            f"{self.per_class}, valpx {self.valpx_per_class}, valcl {self.valcl_fraction}, test "
            f"{self.test_fraction}"
        )

    def validate(self) -> None:
        for d in self.domains:
            if d not in SYNTH_DOMAINS:
                raise DatasetError(
                    f"domains: unknown synthetic domain {d!r}; expected one of {list_synth_domains()}"
                )
        if self.size < 32:
            raise DatasetError(f"size: {self.size} px is too small; expected >= 32")
        if self.size > MAX_SIZE:
            raise DatasetError(
                f"size: {self.size} px; a synthetic tile is at most {MAX_SIZE} px (a patch, not a slide)"
            )
        if self.per_class > MAX_PER_CLASS:
            raise DatasetError(
                f"per_class: {self.per_class}; at most {MAX_PER_CLASS} images per class and domain"
            )
        if self.seed < 0:
            raise DatasetError(f"seed: {self.seed} is negative; expected an integer >= 0")
        n_other = self.per_class - self.valpx_per_class
        if (
            round(n_other * self.valcl_fraction) < 1
            or round(n_other * self.test_fraction) < 1
            or n_other - round(n_other * self.valcl_fraction) - round(n_other * self.test_fraction) < 1
        ):
            raise DatasetError(
                f"per_class: {self.per_class} is too small to fill train/valcl/valpx/test; "
                f"expected >= {self.min_per_class()}"
            )


def split_assignment(
    n: int, rng: np.random.Generator, valpx: int, valcl_fraction: float, test_fraction: float
) -> list[str]:
    """A shuffled list of n split names: `valpx` of valpx, fractions of the rest to valcl/test, rest train."""
    rest = n - valpx
    n_valcl, n_test = round(rest * valcl_fraction), round(rest * test_fraction)
    names = (
        ["valpx"] * valpx + ["valcl"] * n_valcl + ["test"] * n_test + ["train"] * (rest - n_valcl - n_test)
    )
    return [names[i] for i in rng.permutation(n)]


def _domain_key(domain: str) -> int:
    return zlib.crc32(domain.encode())


def render_tile(domain: str, seed: int, index: int, size: int, cancer: bool) -> tuple[np.ndarray, np.ndarray]:
    """One tile, a pure function of (domain, seed, index, size, class)."""
    rng = np.random.default_rng([seed, _domain_key(domain), index, int(cancer)])
    return SYNTH_DOMAINS.create(domain).render(rng, size, cancer)


def _make_patches(tasks: list[tuple[str, int, str, int, str, int]]) -> list[Patch]:
    """Render and encode a chunk of (domain, seed, split, label, name, index, size) tasks (in workers)."""
    out = []
    for domain, seed, split, label, name, i, size in tasks:
        rgb, roi = render_tile(domain, seed, i, size, cancer=bool(label))
        out.append(
            Patch(
                image_id=f"{domain}-{name}-{i:05d}",
                domain=domain,
                split=split,
                label=label,
                label_name=name,
                image=encode_png(rgb),
                mask=encode_png(roi),
                height=size,
                width=size,
                source_path=f"synthetic://{domain}/seed={seed}/{name}/{i}",
            )
        )
    return out


def iter_patches(cfg: SynthConfig, workers: int | None = None, chunk: int = 32) -> Iterator[Patch]:
    """All patches of the configured synthetic dataset, in a fixed order (rendered by `workers` processes).

    Every tile is a pure function of its task, so the output does not depend on the number of workers.
    """
    tasks = []
    for domain in cfg.domains:
        rng = np.random.default_rng([cfg.seed, _domain_key(domain)])
        for label, name in enumerate(CLASS_NAMES):
            splits = split_assignment(
                cfg.per_class, rng, cfg.valpx_per_class, cfg.valcl_fraction, cfg.test_fraction
            )
            tasks += [(domain, cfg.seed, split, label, name, i, cfg.size) for i, split in enumerate(splits)]
    chunks = [tasks[i : i + chunk] for i in range(0, len(tasks), chunk)]
    workers = min(os.cpu_count() or 1, len(chunks)) if workers is None else workers
    if workers <= 1:
        for c in chunks:
            yield from _make_patches(c)
        return
    ctx = multiprocessing.get_context("fork")
    # each worker ends with this process, even one killed by SIGKILL (no orphan keeps rendering)
    with ProcessPoolExecutor(workers, ctx, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        for patches in pool.map(_make_patches, chunks):
            yield from patches


def is_current(out: str | os.PathLike, cfg: SynthConfig) -> bool:
    """Whether `out` holds exactly the dataset `cfg` would write with these renderers (its manifest's
    schema, domains and their recorded origins); a dataset the reader refuses (missing, truncated) or an
    older one is not current."""
    try:
        manifest = open_dataset(out).manifest
    except DatasetError:
        return False
    domains = manifest["domains"]
    return (
        manifest["schema_version"] == SCHEMA_VERSION
        and sorted(domains) == sorted(cfg.domains)
        and all(domains[d].get("origin") == cfg.origin(d) for d in cfg.domains)
    )


def generate_synthetic(
    out: str | os.PathLike,
    cfg: SynthConfig | None = None,
    overwrite: bool = False,
    progress: Callable[[Sequence[Patch]], None] | None = None,
    workers: int | None = None,
) -> None:
    """Write the synthetic dataset to `out` atomically; `progress` is called after every patch."""
    cfg = cfg or SynthConfig()
    cfg.validate()
    with DatasetWriter(out, overwrite=overwrite) as writer:
        for d in cfg.domains:
            roi = list(SYNTH_DOMAINS.create(d).roi_classes)
            writer.add_domain(d, CLASS_NAMES, roi_classes=roi, origin=cfg.origin(d))
        for patch in iter_patches(cfg, workers=workers):
            writer.write(patch)
            if progress is not None:
                progress([patch])
