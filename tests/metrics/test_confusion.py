import numpy as np
import pytest

from pixelcam.metrics import PxAP, best_threshold, confusion_rates


def test_rates_at_threshold_match_direct_counts():
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 1000, (5, 12, 12)) / 1000
    masks = rng.random((5, 12, 12)) < maps
    state = PxAP().update(maps, masks)
    for tau in (0.0, 0.25, 0.5, 0.731, 1.0):
        pred = maps >= tau
        p, n = masks.sum(), (~masks).sum()
        r = confusion_rates(state, tau)
        assert r.tp == pytest.approx(100 * (pred & masks).sum() / p)
        assert r.fn == pytest.approx(100 * (~pred & masks).sum() / p)
        assert r.tn == pytest.approx(100 * (~pred & ~masks).sum() / n)
        assert r.fp == pytest.approx(100 * (pred & ~masks).sum() / n)


def test_best_threshold_maximises_f1_by_brute_force():
    rng = np.random.default_rng(1)
    maps = rng.integers(0, 100, (4, 10, 10)) / 100
    masks = rng.random((4, 10, 10)) < maps**2
    state = PxAP(num_bins=100).update(maps, masks)

    def f1(t: float) -> float:
        pred = maps >= t
        tp = (pred & masks).sum()
        return 2 * tp / (2 * tp + (pred & ~masks).sum() + (~pred & masks).sum())

    scores = [f1(k / 100) for k in range(100)]
    assert best_threshold(state, "f1") == pytest.approx(int(np.argmax(scores)) / 100)

    def miou(t: float) -> float:  # the official code's: (IoU of FG + IoU of BG) / 2
        pred = maps >= t
        fg = (pred & masks).sum() / (pred | masks).sum()
        bg = (~pred & ~masks).sum() / (~pred | ~masks).sum()
        return (fg + bg) / 2

    scores = [miou(k / 100) for k in range(100)]
    assert best_threshold(state, "miou") == pytest.approx(int(np.argmax(scores)) / 100)
    assert best_threshold(state, "miou") != best_threshold(state, "f1")  # the switch changes tau here
    assert 0 <= best_threshold(state, "youden") < 1
    with pytest.raises(KeyError, match="unknown threshold criterion 'auc'"):
        best_threshold(state, "auc")
