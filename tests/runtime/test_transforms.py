import numpy as np
import torch

from pixelcam.runtime.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Augment,
    crop_flip,
    image_seed,
)


def test_crop_flip_moves_mask_with_image():
    rng = np.random.default_rng(0)
    mask = (rng.random((32, 32)) > 0.7).astype(np.uint8)
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., 0] = mask * 200  # the mask is painted into the red channel
    image[..., 1] = np.arange(32)[None, :] * 4  # and a horizontal ramp reveals flips
    for seed in range(20):
        out = crop_flip({"image": image, "mask": mask}, 24, np.random.default_rng(seed))
        assert out["image"].shape == (24, 24, 3) and out["mask"].shape == (24, 24)
        np.testing.assert_array_equal(out["image"][..., 0], out["mask"] * 200)


def test_augment_depends_on_seed_epoch_and_id_only():
    imgs = np.random.default_rng(1).integers(0, 255, (4, 20, 20, 3), dtype=np.uint8)
    ids = np.array(["a", "b", "c", "d"], dtype=object)
    batch = {"image": imgs, "label": np.array([0, 1, 0, 1]), "image_id": ids}
    full = Augment(16, seed=7, epoch=2)(batch)
    assert full["image"].shape == (4, 3, 16, 16) and full["label"].tolist() == [0, 1, 0, 1]
    # the same image in another batch, at another position, gets the same crop and flips
    part = Augment(16, seed=7, epoch=2)(
        {"image": imgs[[2, 0]], "label": np.array([0, 0]), "image_id": ids[[2, 0]]}
    )
    torch.testing.assert_close(part["image"], full["image"][[2, 0]])
    other_epoch = Augment(16, seed=7, epoch=3)(batch)
    assert not torch.equal(other_epoch["image"], full["image"])
    assert image_seed(7, 2, "a").integers(1 << 30) == image_seed(7, 2, "a").integers(1 << 30)


def test_augment_normalises_with_imagenet_stats():
    img = np.full((1, 8, 8, 3), 255, np.uint8)
    out = Augment(8, 0, 0)({"image": img, "label": np.array([1]), "image_id": np.array(["x"], dtype=object)})
    expected = torch.tensor([(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    torch.testing.assert_close(out["image"][0, :, 0, 0], expected)


def test_device_augmentation_equals_the_cpu_path():
    from pixelcam.runtime.transforms import Augment, crop_flip, device_batch, image_seed, normalize_uint8

    rng = np.random.default_rng(0)
    batch = {
        "image": rng.integers(0, 256, (6, 20, 24, 3), dtype=np.uint8),
        "image_id": np.array(list("abcdef"), dtype=object),
        "label": np.array([0, 1, 0, 1, 1, 0]),
    }
    ref = Augment(16, 0, 2)(batch)
    raw = Augment(16, 0, 2, on_device=True)(batch)
    assert raw["image"].dtype == torch.uint8 and raw["image"].shape == (6, 20, 24, 3)
    flips = raw["crop"][:, 2:4]
    assert flips.sum() > 0 and (1 - flips).sum() > 0  # both flip branches are exercised
    out, masks = device_batch(raw, "cpu")
    assert masks is None
    torch.testing.assert_close(out, ref["image"], rtol=0, atol=1e-6)
    assert torch.equal(raw["label"], ref["label"])
    # the gathered crops are crop_flip's, byte for byte
    from pixelcam.runtime.transforms import device_crop_flip

    crops = device_crop_flip(raw["image"], raw["crop"][:, :4], 16)
    for k, (img, i) in enumerate(zip(batch["image"], batch["image_id"])):
        want = crop_flip({"image": img}, 16, image_seed(0, 2, i))["image"]
        assert np.array_equal(crops[k].permute(1, 2, 0).numpy(), want)
    # normalisation by hand: x / 255, minus the ImageNet mean, over the std, per channel
    x = crops.double() / 255
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(normalize_uint8(crops).double(), (x - mean) / std, rtol=0, atol=1e-6)
