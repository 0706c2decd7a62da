from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelcam.errors import ConfigError
from pixelcam.evaluation.slides.pipeline import Resources, TileModel, bound_model, tile_table
from pixelcam.models import create_wsol_model
from pixelcam.runtime.transforms import to_tensor
from tests.checkpoints import random_checkpoint


def _checkpoint(root: Path, method: str) -> Path:
    return random_checkpoint(root / method, method)


@pytest.mark.parametrize("method", ["cam", "pixelcam", "gradcampp"])
def test_tile_model_gives_the_models_own_probabilities_and_pooled_maps(tmp_path: Path, method: str):
    ck = _checkpoint(tmp_path, method)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    batch = {
        "slide": np.zeros(3, np.int32),
        "x": np.arange(3),
        "image": images,
        "error": np.array(["", "", ""]),
    }
    out = bound_model(checkpoint=str(ck), stride=8, cam_class=None)()(batch)
    assert "image" not in out and out["probs"].shape == (3, 2) and out["map"].shape == (3, 8, 8)
    # the reference: the same checkpoint's model, called directly
    model = create_wsol_model(method, "resnet10t")
    model.load_state_dict(torch.load(ck / "model.pt", weights_only=True))
    model.eval()
    x = to_tensor(images)
    with torch.no_grad():
        logits = model(x)["logits"]
    maps = model.cam(x)  # the predicted class's map
    np.testing.assert_allclose(out["probs"], torch.softmax(logits, 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["map"], F.avg_pool2d(maps[:, None], 8)[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(out["map_mean"], maps.mean((1, 2)).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["map_area"], (maps >= 0.5).float().mean((1, 2)).numpy(), atol=1e-6)
    fixed = TileModel(str(ck), stride=8, cam_class=1)(batch)
    np.testing.assert_allclose(
        fixed["map_max"], model.cam(x, torch.ones(3, dtype=torch.long)).amax((1, 2)), atol=1e-5
    )


def test_resources_leave_cpu_for_reads_and_refuse_what_cannot_run():
    r = Resources.plan(1, 0.0, None, {"CPU": 2.0})
    assert r.cpus == 1.5 and r.threads == 2 and r.read_cpus == 0.25
    r2 = Resources.plan(2, 0.0, None, {"CPU": 2.0})
    assert r2.cpus == 0.75 and r2.threads == 1
    assert Resources.plan(2, 0.5, None, {"CPU": 4.0, "GPU": 1.0}).gpus == 0.5
    with pytest.raises(ConfigError, match="needs 2 GPUs; the cluster has 1"):
        Resources.plan(2, 1.0, None, {"CPU": 8.0, "GPU": 1.0})
    with pytest.raises(ConfigError, match="leaves no CPU for reading tiles"):
        Resources.plan(2, 0.0, 1.0, {"CPU": 2.0})


def test_tile_table_cuts_blocks_and_keeps_every_tile():
    pos = np.arange(600 * 2).reshape(600, 2)
    blocks = tile_table(
        [(0, 1, pos[:300], pos[:300] * 2, np.ones(300)), (1, 0, pos[300:], pos[300:], np.ones(300))], 32
    )
    assert sum(b.num_rows for b in blocks) == 600 and max(b.num_rows for b in blocks) == 32
    assert len(blocks) == 19  # 600 / 32, rounded up
    assert blocks[-1].column("slide")[-1].as_py() == 1 and blocks[0].column("x0")[1].as_py() == 4
