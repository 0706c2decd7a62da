from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from pixelcam.data import open_dataset
from pixelcam.metrics import PxAP
from pixelcam.models import create_wsol_model
from pixelcam.runtime.data import iter_split
from pixelcam.runtime.eval_loop import evaluate_batches


def small(method: str = "cam"):
    torch.manual_seed(0)
    return create_wsol_model(method, "resnet10t")


def test_evaluation_matches_sklearn_on_independently_computed_cams(synth_dir: Path):
    ds = open_dataset(synth_dir)
    model = small().eval()
    px, acc = evaluate_batches(model, iter_split(ds, "synth-colon", "test", 64, batch_size=8))
    ys, ss, correct, total = [], [], 0, 0
    with torch.no_grad():
        for b in iter_split(ds, "synth-colon", "test", 64, batch_size=8):
            feats = model.backbone(b.images)
            logits = model.head(feats)
            correct += int((logits.argmax(1) == b.labels).sum())
            total += len(b.labels)
            w = model.head.fc.weight[b.labels]
            cams = (w[:, :, None, None] * feats).sum(1)  # Zhou et al. eq. 1
            cams = torch.nn.functional.interpolate(cams[:, None], size=(64, 64), mode="bilinear")[:, 0]
            lo = cams.flatten(1).min(1).values[:, None, None]
            hi = cams.flatten(1).max(1).values[:, None, None]
            cams = (cams - lo) / (hi - lo)
            for cam, mask in zip(cams, b.masks):
                ys.append(mask.ravel())
                ss.append(np.floor(cam.numpy().ravel() * 1000 + 1e-4) / 1000)
    expected = 100 * average_precision_score(np.concatenate(ys), np.concatenate(ss))
    # The two float32 computations of the same CAM differ by ~4e-6, which moves a few dozen of ~300k pixels
    # across a bin edge: a difference of ~0.02 PxAP points, nothing more.
    assert px.compute() == pytest.approx(expected, abs=0.05)
    assert acc.compute() == pytest.approx(100 * correct / total)


def test_sharded_states_sum_to_the_single_pass(synth_dir: Path):
    ds = open_dataset(synth_dir)
    model = small().eval()
    whole, _ = evaluate_batches(model, iter_split(ds, "synth-lymph", "test", 64, 8))
    shards = [
        evaluate_batches(model, iter_split(ds, "synth-lymph", "test", 64, 8, r, 2))[0] for r in range(2)
    ]
    merged = PxAP().merge(shards[0]).merge(shards[1])
    assert merged.compute() == pytest.approx(whole.compute(), abs=1e-9)
    averaged = (shards[0].compute() + shards[1].compute()) / 2
    assert averaged != pytest.approx(
        whole.compute(), abs=1e-6
    )  # why states, not per-rank values, are reduced
