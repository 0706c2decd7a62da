"""Per-image details ride on the evaluation's own model pass: checked against sklearn and a direct pass."""

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from pixelcam.data import open_dataset
from pixelcam.evaluation.evaluate import evaluate, evaluate_with_details, image_details
from pixelcam.metrics import separability_index
from pixelcam.models import create_wsol_model
from pixelcam.runtime.data import iter_split
from tests.checkpoints import random_checkpoint

DOMAINS = ["synth-colon", "synth-lymph"]


@pytest.fixture(scope="module", params=["cam", "gradcampp"])
def ckpt(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    method = request.param
    return method, random_checkpoint(tmp_path_factory.mktemp("ck") / "ck", method, seed=3)


def test_details_from_one_pass_match_an_independent_computation(ckpt: tuple[str, Path], synth_dir: Path):
    method, path = ckpt
    report, details = evaluate_with_details(path, synth_dir, DOMAINS, batch_size=8)
    assert set(details) == set(DOMAINS)
    # the metrics are evaluate's, unchanged by collecting details
    plain = evaluate(path, synth_dir, DOMAINS, batch_size=8)
    for d in DOMAINS:
        assert report.results[d].pxap == pytest.approx(plain.results[d].pxap, abs=1e-9)
        assert report.results[d].cl == plain.results[d].cl
    # per-image PxAP against sklearn and J against the backbone's features from a separate pass
    model = create_wsol_model(method, "resnet10t")
    model.load_state_dict(torch.load(path / "model.pt", weights_only=True))
    model.eval()
    ds = open_dataset(synth_dir)
    for d in DOMAINS:
        det, gallery = details[d]
        want_px, want_j, ids = [], [], []
        for b in iter_split(ds, d, "test", 64, batch_size=8):
            with torch.no_grad():
                feats = model.backbone(b.images)
            maps = model.cam(b.images, b.labels)
            for i, mask in enumerate(b.masks):
                ids.append(b.image_ids[i])
                if mask is None or not 0 < int(mask.sum()) < mask.size:
                    want_px.append(np.nan)
                    want_j.append(np.nan)
                    continue
                m = torch.nn.functional.interpolate(maps[i][None, None], size=mask.shape, mode="bilinear")
                m = m[0, 0]
                want_px.append(100 * average_precision_score((mask > 0).ravel(), m.numpy().ravel()))
                want_j.append(separability_index(feats[i], mask))
        assert det.image_ids == ids
        assert np.isnan(det.pxap).tolist() == np.isnan(want_px).tolist()
        assert (~np.isnan(want_px)).sum() >= 1
        np.testing.assert_allclose(det.pxap, want_px, atol=0.5)  # 1000 bins vs exact AP
        np.testing.assert_allclose(det.j, want_j, rtol=1e-4)
        # the gallery: the first two images of each class in stored order, their maps in [0, 1]
        assert gallery.label.tolist().count(0) == 2 and gallery.label.tolist().count(1) == 2
        assert gallery.map.shape == (4, 64, 64) and 0 <= gallery.map.min() <= gallery.map.max() <= 1
    # the stand-alone function gives the same details
    alone, _ = image_details(path, synth_dir, "synth-lymph", batch_size=8)
    np.testing.assert_allclose(alone.pxap, details["synth-lymph"][0].pxap, atol=1e-9)
