from pathlib import Path

import pytest

from pixelcam.config import ConfigError
from pixelcam.study.spec import Choice, Range, load_spec

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
name: t
sources: [synth-colon]
methods: [cam]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_shipped_specs_validate():
    files = sorted((ROOT / "studies").glob("*.yaml"))
    assert any(f.name == "quickstart.yaml" for f in files)
    for f in files:
        spec = load_spec(f)
        assert spec.all_methods()


def test_parsed_search_space_and_methods(tmp_path: Path):
    spec = load_spec(
        write(
            tmp_path,
            BASE + "search:\n  lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n"
            "  n: {low: 1, high: 20, int: true}\n  sampler: [pb, th]\n",
        )
    )
    assert spec.search["lr"] == Range(1e-4, 1e-2, log=True)
    assert spec.search["n"] == Range(1, 20, int=True) and spec.search["sampler"] == Choice(("pb", "th"))
    assert spec.all_methods() == ["cam", "pixelcam-cam"]
    assert set(spec.searched(pixelcam=False)) == {"lr"}  # n and sampler are PixelCAM's
    assert spec.base_config("pixelcam", "synth-colon").epochs == spec.budget.epochs


@pytest.mark.parametrize(
    "extra, message",
    [
        ("budgt: {}\n", "unknown key(s) ['budgt']"),
        ("budget: {trials: 0}\n", "budget.trials: must be >= 1"),
        ("budget: {trails: 2}\n", "budget: unknown key(s) ['trails']"),
        ("budget: {epochs: 2, grace_period: 3}\n", "budget.grace_period: 3 exceeds budget.epochs=2"),
        ("search:\n  lr: {low: 0.1, high: 0.01}\n", "search.lr: low (0.1) must be < high (0.01)"),
        ("search:\n  lr: {low: 0, high: 0.01, log: true}\n", "search.lr: a log range needs low > 0"),
        ("search:\n  source: [a, b]\n", "search.source: not a searchable TrainConfig field"),
        ("search:\n  lrr: {low: 1, high: 2}\n", "search.lrr: not a searchable TrainConfig field"),
        ("train: {epochs: x}\n", "train: epochs: expected an integer"),
        ("train: {method: cam}\n", "train.method: is set by the study itself"),
        ("resources: {workers: two}\n", "resources.workers: expected int"),
        ("selection: best\n", "selection: unknown value 'best'"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, extra: str, message: str):
    p = write(tmp_path, BASE + extra)
    with pytest.raises(ConfigError) as err:
        load_spec(p)
    assert str(p) in str(err.value) and message in str(err.value)


def test_bad_methods_and_names(tmp_path: Path):
    with pytest.raises(ConfigError, match="methods: unknown baseline 'pixelcam'"):
        load_spec(write(tmp_path, "name: t\nmethods: [pixelcam]\n"))
    with pytest.raises(ConfigError, match="name: 'a b' may only contain"):
        load_spec(write(tmp_path, "name: a b\n"))
    with pytest.raises(ConfigError, match="study spec not found"):
        load_spec(tmp_path / "none.yaml")
