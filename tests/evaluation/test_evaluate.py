import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from pixelcam.cli import main
from pixelcam.data import open_dataset
from pixelcam.evaluation.evaluate import evaluate, format_table
from pixelcam.models import create_wsol_model
from pixelcam.runtime.data import iter_split
from tests.checkpoints import random_checkpoint


@pytest.fixture(scope="module")
def pixelcam_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("ck") / "ck", "pixelcam", seed=1, pixel_head_depth=1)


def test_evaluate_both_domains_against_sklearn(pixelcam_ckpt: Path, synth_dir: Path):
    report = evaluate(pixelcam_ckpt, synth_dir, ["synth-colon", "synth-lymph"])
    assert set(report.results) == {"synth-colon", "synth-lymph"} and report.normalization == "none"
    model = create_wsol_model("pixelcam", "resnet10t")
    model.load_state_dict(torch.load(pixelcam_ckpt / "model.pt", weights_only=True))
    model.eval()
    ds = open_dataset(synth_dir)
    for domain, row in report.results.items():
        ys, ss = [], []
        fg = bg = tp = fp = 0
        with torch.no_grad():
            for b in iter_split(ds, domain, "test", 64):
                logits = model.pixel_head(model.backbone(b.images))  # f(F): FG probability, no normalisation
                prob = torch.softmax(logits, 1)[:, 1]
                prob = torch.nn.functional.interpolate(prob[:, None], size=(64, 64), mode="bilinear")[:, 0]
                for p, m in zip(prob.numpy(), b.masks):
                    q = np.floor(p.ravel() * 1000 + 1e-4) / 1000
                    ys.append(m.ravel())
                    ss.append(q)
                    fg += int(m.sum())
                    bg += int((1 - m).sum())
                    tp += int(((q >= 0.5) & (m.ravel() == 1)).sum())
                    fp += int(((q >= 0.5) & (m.ravel() == 0)).sum())
        assert row.pxap == pytest.approx(
            100 * average_precision_score(np.concatenate(ys), np.concatenate(ss)), abs=1e-3
        )
        assert row.tp_star == pytest.approx(100 * tp / fg, abs=1e-6)
        assert row.fp_star == pytest.approx(100 * fp / bg, abs=1e-6)
        assert row.tp_star + row.fn_star == pytest.approx(100)
        # the floor: a constant map's AP (sklearn), the ROI's share of the scored pixels
        flat = np.zeros(fg + bg)
        assert row.roi_prior == pytest.approx(100 * fg / (fg + bg), abs=1e-9)
        assert row.roi_prior == pytest.approx(
            100 * average_precision_score(np.concatenate(ys), flat), abs=1e-6
        )
        assert row.images == sum(ds.counts(domain)["test"].values())
    assert "synth-lymph" in format_table(report) and "ROI prior" in format_table(report)


def test_cli_writes_table_and_json(pixelcam_ckpt: Path, synth_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "eval.json"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(pixelcam_ckpt),
                "--data",
                str(synth_dir),
                "--domains",
                "synth-lymph",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert f"{report['results']['synth-lymph']['pxap']:.2f}" in printed
    assert (
        main(["evaluate", "--checkpoint", str(pixelcam_ckpt), "--data", str(synth_dir), "--domains", "mars"])
        == 2
    )
    assert "unknown domain 'mars'" in capsys.readouterr().err
