"""Our batched torch Reinhard and Macenko against an independent implementation, torchstain's numpy
normalizers (themselves ports of HistomicsTK/StainTools and of Macenko's reference code), on real tiles of
the synthetic domains: a colon tile moved to a lymph tile's stain."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torchstain.numpy.normalizers import NumpyMacenkoNormalizer, NumpyReinhardNormalizer

from pixelcam.data.stain import create_stain_transform
from pixelcam.evaluation.stain_sweep import reference_images


def tiles(synth_dir: Path) -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """(source uint8 HWC, reference uint8 HWC, and both as float (1, 3, H, W) in [0, 1] on the same bytes)."""
    to8 = lambda t: (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # noqa: E731
    s8 = to8(reference_images(synth_dir, "synth-colon", 64, 1)[0])
    r8 = to8(reference_images(synth_dir, "synth-lymph", 64, 1)[0])
    back = lambda a: torch.from_numpy(a).permute(2, 0, 1).double()[None] / 255  # noqa: E731
    return s8, r8, back(s8), back(r8)


def test_reinhard_matches_torchstain_to_one_grey_level(synth_dir: Path):
    s8, r8, src, ref = tiles(synth_dir)
    ours = create_stain_transform("reinhard").fit(ref)(src, 1.0)[0].permute(1, 2, 0).numpy() * 255
    n = NumpyReinhardNormalizer()
    n.fit(r8)
    theirs = n.normalize(s8).astype(np.float64)  # uint8: truncated, so within one grey level
    assert np.abs(ours - theirs).max() <= 1.0 + 1e-6
    assert np.abs(ours - theirs).mean() < 0.6


def test_macenko_stain_vectors_and_concentrations_match_torchstain(synth_dir: Path):
    _, r8, _, ref = tiles(synth_dir)
    m = NumpyMacenkoNormalizer()
    m.fit(r8, Io=256, alpha=1, beta=0.15)  # Io 256: OD of (I + 1) / 256, about ours (-ln I, I in [0, 1])
    t = create_stain_transform("macenko").fit(ref)
    ours, theirs = t.reference["stains"].numpy(), m.HERef * np.sign(m.HERef.sum(0))  # same orientation
    cos = (ours * theirs).sum(0) / (np.linalg.norm(ours, axis=0) * np.linalg.norm(theirs, axis=0))
    assert (cos > 0.999).all(), (ours, theirs)  # H first, E second in both
    # 99th-percentile concentrations: torchstain takes them over all pixels, ours over tissue pixels
    assert t.reference["max_conc"].numpy() == pytest.approx(m.maxCRef, rel=0.05)
