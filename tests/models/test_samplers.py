import numpy as np
import pytest
import torch
from scipy import stats

from pixelcam.models import create_sampler, list_samplers
from pixelcam.models.samplers import otsu_threshold


def test_registry():
    assert list_samplers() == ["pb", "th"]


def test_pb_frequencies_follow_the_cam():
    cam = torch.tensor([[0.05, 0.1, 0.2], [0.3, 0.6, 0.9], [0.0, 0.4, 0.8]])
    s = create_sampler("pb", n=1, seed=0)
    draws = 20000
    labels = s(cam.expand(draws, 3, 3).contiguous())
    fg = (labels == 1).sum(0).flatten().double()
    bg = (labels == 0).sum(0).flatten().double()
    p_fg = cam.flatten().double().numpy()
    expected = p_fg / p_fg.sum() * fg.sum().item()
    assert fg[6] == 0  # a zero-CAM location is never foreground
    keep = expected > 0
    assert stats.chisquare(fg.numpy()[keep], expected[keep]).pvalue > 1e-3
    # BG ~ (1 - CAM) among the locations the FG draw left free; check the marginal by simulation-free bound:
    inv = (1 - cam.flatten()).double()
    assert torch.argmax(bg) == torch.argmax(inv) and torch.argmin(bg) == torch.argmin(inv)
    assert ((labels == 1).sum((1, 2)) == 1).all() and ((labels == 0).sum((1, 2)) == 1).all()


def test_pb_counts_ignore_and_redraw():
    cams = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(0))
    s = create_sampler("pb", n=5, seed=1)
    a, b = s(cams), s(cams)
    for lab in (a, b):
        assert ((lab == 1).sum((1, 2)) == 5).all() and ((lab == 0).sum((1, 2)) == 5).all()
        assert ((lab == -1).sum((1, 2)) == 64 - 10).all()
    assert not torch.equal(a, b)  # redrawn every call
    assert torch.equal(create_sampler("pb", n=5, seed=1)(cams), a)  # seeded


def test_pb_bg_area_restricts_background():
    cams = torch.rand(50, 6, 6, generator=torch.Generator().manual_seed(2))
    labels = create_sampler("pb", n=3, bg_area=0.4)(cams)
    for cam, lab in zip(cams, labels):
        cut = cam.flatten().sort().values[round(0.4 * 36) - 1]
        assert (cam[lab == 0] <= cut).all()


def test_th_uses_otsu_regions():
    cam = torch.zeros(1, 6, 6)
    cam[0, :2] = 0.9  # a bright band: Otsu separates it
    t = otsu_threshold(cam.flatten(1))
    assert 0.0 < float(t) <= 0.9
    for _ in range(20):
        lab = create_sampler("th", n=4)(cam)
        assert (cam[lab == 1] == 0.9).all() and (cam[lab == 0] == 0.0).all()


def test_otsu_matches_brute_force():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0.2, 0.05, 300), rng.normal(0.7, 0.08, 200)]).clip(0, 0.999)
    bins = 256
    q = (np.floor(v * bins) + 0.5) / bins

    def between(t: float) -> float:
        lo, hi = q[q < t], q[q >= t]
        if lo.size == 0 or hi.size == 0:
            return -1
        return lo.size * hi.size * (lo.mean() - hi.mean()) ** 2

    best = max((k / bins for k in range(1, bins)), key=between)
    assert float(otsu_threshold(torch.tensor(v)[None])) == pytest.approx(best)


@pytest.mark.parametrize("name", ["pb", "th"])
@pytest.mark.parametrize("value", [0.0, 0.5, 1.0, float("nan")])
def test_constant_cams_fall_back_without_nan(name: str, value: float):
    lab = create_sampler(name, n=3)(torch.full((2, 4, 4), value))
    assert ((lab == 1).sum((1, 2)) == 3).all() and ((lab == 0).sum((1, 2)) == 3).all()


def test_n_is_capped_and_validated():
    lab = create_sampler("pb", n=50)(torch.rand(1, 3, 3))
    assert (lab == 1).sum() == 4 and (lab == 0).sum() == 4
    with pytest.raises(ValueError, match="n must be >= 1"):
        create_sampler("pb", n=0)


def test_area_variant_draws_background_uniformly_among_the_lowest_fifth():
    """The official code's BG variant: uniform among the 20 % lowest-CAM locations (its default fraction)."""
    cam = torch.linspace(0, 1, 100).view(1, 10, 10)  # strictly increasing: the lowest 20 are indices 0..19
    s = create_sampler("pb", n=1, seed=3, bg_sampling="area")
    assert s.bg_area == pytest.approx(0.2)
    labels = s(cam.expand(20000, 10, 10).contiguous())
    bg = (labels == 0).sum(0).flatten().double()
    assert bg[20:].sum() == 0  # never above the lowest fifth
    # uniform, not ~ 1 - CAM: location 0 (1 - CAM = 1) and 19 (0.81) are equally frequent
    assert stats.chisquare(bg[:20].numpy()).pvalue > 1e-3
    inverse = create_sampler("pb", n=1, seed=3)(cam.expand(20000, 10, 10).contiguous())
    assert (inverse == 0).sum(0).flatten()[80:].sum() > 0  # the paper's default reaches the whole image


def test_unknown_bg_sampling_is_refused():
    with pytest.raises(ValueError, match="bg_sampling must be one of"):
        create_sampler("pb", bg_sampling="lowest")


@pytest.mark.parametrize("bg_sampling", ["inverse", "area"])
def test_seeds_never_collide_when_positive_weights_run_out(bg_sampling: str):
    """A 2x2 grid with one non-zero CAM cell and k = 2: FG must take a zero-weight cell, and BG (whose area
    variant admits only the single lowest cell) must still never relabel a FG location."""
    cams = torch.zeros(500, 2, 2)
    cams[:, 0, 0] = 1.0
    labels = create_sampler("pb", n=2, seed=0, bg_sampling=bg_sampling)(cams)
    assert ((labels == 1).sum((1, 2)) == 2).all() and ((labels == 0).sum((1, 2)) == 2).all()
    assert (labels[:, 0, 0] == 1).all()  # the only positive FG weight is always drawn
