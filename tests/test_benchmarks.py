"""The prepared GPU check: its --smoke mode runs every path on the CPU (real Ray Train and in-process runs);
without a GPU and without --smoke it refuses with one clear line."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.shared import scenario, scenario_fixture

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "benchmarks" / "gpu_check.py"


def test_gpu_check_refuses_without_a_gpu(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Its `main`, in this process (a process of its own costs ~5 CPU-s of imports), on a machine whose torch
    sees no CUDA device."""
    import importlib

    import torch

    monkeypatch.syspath_prepend(str(CHECK.parent))  # as `python benchmarks/gpu_check.py` has it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert importlib.import_module("gpu_check").main([]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device is visible" in err and "--smoke" in err
    assert "Traceback" not in err


@scenario("tmp_path_factory", "environment")
def gpu_check_smoke(tmp_path_factory: pytest.TempPathFactory, environment: dict[str, str]) -> dict:
    """`gpu_check.py --smoke`, started when the run begins (a minute of its own processes)."""
    root = tmp_path_factory.mktemp("gpu-check")
    out = subprocess.run(
        [sys.executable, str(CHECK), "--smoke", "--out", str(root / "check.json")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
        env=environment,  # an explicit environment, as every scenario's (tests/shared.py)
    )
    report = json.loads((root / "check.json").read_text()) if out.returncode == 0 else {}
    return {"rc": out.returncode, "stdout": out.stdout, "stderr": out.stderr, "report": report}


gpu_check_smoke_fixture = scenario_fixture("gpu_check_smoke")


@pytest.mark.e2e
def test_gpu_check_smoke_runs_every_path(gpu_check_smoke: dict):
    from pixelcam.models import list_methods

    out, report = SimpleNamespace(**gpu_check_smoke), gpu_check_smoke["report"]
    assert out.rc == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert report["smoke"] is True and not any("error" in report[k] for k in "abcde")
    # (a) every method at both batch sizes, CAM and forward timed; the paper's figure beside the ones it has
    a = report["a"]
    assert {r["method"] for r in a} == set(list_methods()) and len(a) == 2 * len(list_methods())
    assert all(r["forward_ms"] > 0 and r["cam_ms"] > 0 for r in a)
    assert next(r for r in a if r["method"] == "gradcampp")["paper_ms"] == 40.9
    # (b) fp32/bf16 x channels_last, and a memory row per backbone and method
    assert [(r["precision"], r["channels_last"]) for r in report["b"]["throughput"]] == [
        ("fp32", False),
        ("fp32", True),
        ("bf16", False),
        ("bf16", True),
    ]
    assert all(r["images_per_s"] > 0 for r in report["b"]["throughput"])
    assert {r["method"] for r in report["b"]["memory"]} == {"cam", "pixelcam"}
    # (c) the real loop (in-process streamed and kept on the device, Ray Train on the device) against the bare
    # loop, with the input wait
    c = report["c"]
    assert set(c) == {"local_stream", "local_device", "ray_device", "bare"} and c["bare"]["vs_bare"] == 1.0
    assert all(c[k]["images_per_s"] > 0 and 0 <= c[k]["input_wait_s"] < c[k]["epoch_s"] for k in c)
    # (d) slide inference through `pixelcam predict` vs the bare forward over the same tiles
    d = report["d"]
    assert d["tiles"][1] > d["tiles"][0] > 10 and d["forward_only"] > 0 and 0 < d["end_to_end"]
    assert d["steady_state"] > 0 and d["first_batch_s"] > 0
    assert "Ray Train 1 worker, on the device" in out.stdout and "CAM/fwd" in out.stdout
    assert "train split kept on cpu" in out.stdout  # the device path taken where it was asked for
    # (e) a study against its bare loops: the ratio and both breakdowns
    e = report["e"]
    assert e["study_s"] > e["bare_s"] > 0 and e["ratio"] == pytest.approx(e["study_s"] / e["bare_s"])
    assert {"tune", "evaluate", "dashboard"} <= set(e["steps"]) and e["runs"]["runs"] == 1
    assert e["bare"]["train epochs"] > 0 and "study wall" in out.stdout
