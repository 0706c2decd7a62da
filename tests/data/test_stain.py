import numpy as np
import pytest
import torch
from skimage import color

from pixelcam.data.stain import (
    StainNotFittedError,
    create_stain_transform,
    delta_e,
    hed_to_rgb,
    lab_to_rgb,
    list_stain_transforms,
    rgb_to_hed,
    rgb_to_lab,
    shift_strengths,
)
from pixelcam.data.stain.color import OD_FLOOR


def _unit(v: list[float]) -> torch.Tensor:
    t = torch.tensor(v, dtype=torch.float64)
    return t / t.norm()


H_SRC, E_SRC = _unit([0.65, 0.70, 0.29]), _unit([0.07, 0.99, 0.11])  # Ruifrok & Johnston H and E
H_REF, E_REF = _unit([0.50, 0.80, 0.33]), _unit([0.20, 0.95, 0.25])


def _tiles(
    seed: int, h: torch.Tensor, e: torch.Tensor, scale: float, n: int = 4, size: int = 32
) -> torch.Tensor:
    """H&E tiles by Beer-Lambert from known stain vectors: nuclei (haematoxylin blobs) on eosin stroma."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = []
    for _ in range(n):
        c_h = 0.15 + 0.1 * torch.rand((size, size), generator=g, dtype=torch.float64)
        for cy, cx in torch.randint(3, size - 3, (6, 2), generator=g):
            c_h += 1.2 * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0)
        c_e = 0.3 + 0.5 * torch.rand((size, size), generator=g, dtype=torch.float64)
        od = scale * (c_h[None] * h.view(3, 1, 1) + c_e[None] * e.view(3, 1, 1))
        out.append(torch.exp(-od))
    return torch.stack(out).float()


SRC = _tiles(0, H_SRC, E_SRC, 1.0)
REF = _tiles(1, H_REF, E_REF, 1.3)


def test_lab_matches_skimage_and_round_trips():
    x = SRC.double()
    ref = np.stack([color.rgb2lab(im.permute(1, 2, 0).numpy()) for im in x])
    assert np.abs(rgb_to_lab(x).permute(0, 2, 3, 1).numpy() - ref).max() < 0.01
    assert (lab_to_rgb(rgb_to_lab(x)) - x).abs().max() < 1e-9


def test_hed_matches_skimage_up_to_its_log_scale():
    # skimage divides ln(I) by ln(1e-6) (its floor); ours is the plain optical density -ln(I)
    x = SRC.double()
    ours = rgb_to_hed(x).permute(0, 2, 3, 1).numpy()
    ref = np.stack([color.rgb2hed(im.permute(1, 2, 0).numpy()) for im in x]) * -np.log(1e-6)
    # skimage's matrix rows are not exactly unit length (norms 0.998..1.003): agree to 1 %
    assert np.allclose(ours[ref > 0.05], ref[ref > 0.05], rtol=1e-2)
    assert (hed_to_rgb(rgb_to_hed(x)) - x.clamp_min(OD_FLOOR)).abs().max() < 1e-9


@pytest.mark.parametrize("name", list_stain_transforms())
def test_strength_zero_is_identity_and_distance_grows_with_level(name: str):
    t = create_stain_transform(name).fit(REF)
    assert torch.equal(t(SRC, 0.0), SRC)
    out = [t(SRC, s) for s in shift_strengths(10)]
    assert all(o.shape == SRC.shape and o.dtype == SRC.dtype and 0 <= o.min() and o.max() <= 1 for o in out)
    dist = [float(delta_e(SRC, o).mean()) for o in out]
    assert dist[0] > 0 and all(b > a for a, b in zip(dist, dist[1:])), dist


def test_reinhard_full_strength_gives_the_reference_lab_moments():
    t = create_stain_transform("reinhard").fit(REF)
    lab = rgb_to_lab(t(SRC, 1.0).double()).flatten(2)
    ref_lab = rgb_to_lab(REF.double()).flatten(2)
    assert torch.allclose(lab.mean(2).mean(0), ref_lab.mean(2).mean(0), atol=0.5)
    assert torch.allclose(
        lab.std(2, unbiased=False).mean(0), ref_lab.std(2, unbiased=False).mean(0), atol=0.5
    )


def test_full_strength_moves_toward_the_reference_for_every_transform():
    before = float(
        delta_e(
            SRC.mean((2, 3), keepdim=True), REF.mean((0, 2, 3), keepdim=True).expand(len(SRC), 3, 1, 1)
        ).mean()
    )
    for name in list_stain_transforms():
        shifted = create_stain_transform(name).fit(REF)(SRC, 1.0)
        after = delta_e(
            shifted.mean((2, 3), keepdim=True), REF.mean((0, 2, 3), keepdim=True).expand(len(SRC), 3, 1, 1)
        )
        assert float(after.mean()) < before, name


def test_macenko_recovers_the_stain_vectors_the_tiles_were_made_with():
    he = create_stain_transform("macenko").fit(REF).reference["stains"]
    assert he.shape == (3, 2) and torch.allclose(he.norm(dim=0), torch.ones(2, dtype=he.dtype))
    # angle to the true vectors (the 1st/99th angle percentiles sit close to, not exactly on, the extremes)
    assert torch.dot(he[:, 0], H_REF) > 0.99 and torch.dot(he[:, 1], E_REF) > 0.99, he.T


def test_hed_jitter_is_seeded():
    a = create_stain_transform("hed", jitter=0.05, seed=3).fit(REF)(SRC, 0.5)
    b = create_stain_transform("hed", jitter=0.05, seed=3).fit(REF)(SRC, 0.5)
    c = create_stain_transform("hed", jitter=0.05, seed=4).fit(REF)(SRC, 0.5)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_errors_are_clear():
    with pytest.raises(StainNotFittedError, match="fit"):
        create_stain_transform("reinhard")(SRC, 0.5)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        create_stain_transform("reinhard").fit(SRC[0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        create_stain_transform("reinhard").fit(SRC * 255)
    with pytest.raises(ValueError, match="strength"):
        create_stain_transform("reinhard").fit(REF)(SRC, -1)
    with pytest.raises(ValueError, match="no stained pixels"):
        create_stain_transform("macenko").fit(torch.ones(2, 3, 8, 8))
    with pytest.raises(KeyError, match="reinhard"):
        create_stain_transform("vahadane")
    assert shift_strengths(4, 2.0) == [0.5, 1.0, 1.5, 2.0]
    with pytest.raises(ValueError, match="levels"):
        shift_strengths(0)
