"""Ray Train's entry function lives in a module that loads nothing heavy: its controller unpickles it too."""

import subprocess
import sys

from pixelcam.train.entry import ray_train_entry

HEAVY = ("torch", "timm", "ray", "ray.data", "pixelcam.train.worker")


def test_the_entry_module_imports_no_torch_model_or_ray_data_code():
    code = f"import sys, pixelcam.train.entry; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_entry_runs_the_training_loop_with_ray_trains_config(monkeypatch):
    import pixelcam.train.worker as worker

    seen = []
    monkeypatch.setattr(worker, "train_loop_per_worker", lambda config: seen.append(config) or {"best": 1})
    assert ray_train_entry({"payload": "p"}) == {"best": 1} and seen == [{"payload": "p"}]
