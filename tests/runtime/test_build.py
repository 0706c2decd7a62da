"""The run-building pieces that decide what a run records: the best epoch under either tie rule, the
protocol switches' defaults (the official code's) and the input size evaluation reuses."""

import pytest

from pixelcam.config import TrainConfig
from pixelcam.runtime.build import keep_best, make_meta
from pixelcam.runtime.checkpoint import input_size_of


def test_ties_go_to_the_latest_epoch_or_the_earliest():
    best = {"epoch": -1, "score": float("-inf")}
    for epoch, score in enumerate([60.0, 75.0, 75.0, 70.0]):  # epochs 1 and 2 tie at 75
        best = keep_best({"valcl_cl": score}, "valcl_cl", epoch, 0.5, best, latest=True)
    assert best["epoch"] == 2
    best = {"epoch": -1, "score": float("-inf")}
    for epoch, score in enumerate([60.0, 75.0, 75.0, 70.0]):
        best = keep_best({"valcl_cl": score}, "valcl_cl", epoch, 0.5, best, latest=False)
    assert best["epoch"] == 1


def test_protocol_switches_default_to_the_official_code_and_are_recorded():
    cfg = TrainConfig(resize=256, crop=224)
    assert (cfg.eval_input, cfg.threshold_criterion, cfg.checkpoint_ties) == ("crop", "miou", "latest")
    assert cfg.gradcampp_variant == "eq19" and cfg.mil_attention == "gated"  # the published methods
    assert cfg.eval_input_size == 224 and cfg.replace(eval_input="resize").eval_input_size == 256
    meta = make_meta(cfg, ["normal", "cancer"], "h", 0, {"tau": 0.5}, {"epoch": 0})
    assert meta["eval_input_size"] == 224 and input_size_of(meta) == 224
    for key in ("eval_input", "threshold_criterion", "checkpoint_ties", "gradcampp_variant", "mil_attention"):
        assert key in meta["config"]  # with every checkpoint (and every MLflow run's params)
    assert input_size_of({"resize": 128}) == 128  # a checkpoint from before the switch: its resize side
    with pytest.raises(ValueError, match="checkpoint_ties"):
        TrainConfig(checkpoint_ties="middle")
