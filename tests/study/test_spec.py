from pathlib import Path

import pytest

from pixelcam.config import ConfigError
from pixelcam.study.spec import Choice, Range, Variant, load_spec

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
    files = sorted(f for f in (ROOT / "studies").rglob("*.yaml") if f.parent.name != "train")
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
    assert set(spec.searched("cam")) == {"lr"}  # n and sampler are PixelCAM's
    assert set(spec.searched("pixelcam")) == {"lr", "n", "sampler"}
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
        ("resources: {workers: two}\n", "resources.workers: expected an integer, got 'two'"),
        ("selection: best\n", "selection: unknown value 'best'"),
        ("stain_shift: {method: vahadane}\n", "stain_shift.method: unknown value 'vahadane'"),
        ("stain_shift: {levels: 0}\n", "stain_shift.levels: must be in [1, 50], got 0"),
        ("stain_shift: {max_strength: 5}\n", "stain_shift.max_strength: must be in (0, 3]"),
        ("stain_shift: {domains: synth-colon}\n", "stain_shift.domains: expected a list"),
        ("stain_shift: {levls: 3}\n", "stain_shift: unknown key(s) ['levls']"),
        ("published: {cam: {pxap: {a->b: high}}}\n", "published.cam.pxap.a->b: expected 'source->target'"),
        ("published: {cam: {iou: {a->b: 1}}}\n", "published.cam.iou: expected one of ['pxap', 'cl']"),
        # search ranges are checked at both ends against TrainConfig's limits when the spec loads
        (
            "search:\n  lam: {low: -5, high: 1}\n",
            "search.lam: -5.0 is not a valid lam (must be >= 0, got -5.0)",
        ),
        ("search:\n  n: {low: 0, high: 5, int: true}\n", "search.n: 0 is not a valid n (must be > 0, got 0)"),
        ("search:\n  lr_decay: {low: 0.5, high: 2}\n", "search.lr_decay: 2.0 is not a valid lr_decay"),
        ("search:\n  sampler: [pb, random]\n", "search.sampler: 'random' is not a valid sampler"),
        ("searcher: random\n", "searcher: unknown value 'random'; expected one of ['optuna', 'grid']"),
        (
            "searcher: grid\nsearch:\n  lr: {low: 0.001, high: 0.01}\n",
            "search.lr: a grid search takes a list of values, not a range",
        ),
        ("searcher: grid\nsearch:\n  lr: [0.001, -1]\n", "search.lr: -1 is not a valid lr"),
        ("seeds: [0, 1, 0]\n", "seeds: seeds must be distinct, got [0, 1, 0]"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, extra: str, message: str):
    p = write(tmp_path, BASE + extra)
    with pytest.raises(ConfigError) as err:
        load_spec(p)
    assert str(p) in str(err.value) and message in str(err.value)


def test_stain_shift_defaults(tmp_path: Path):
    spec = load_spec(write(tmp_path, BASE + "stain_shift: {method: macenko}\n"))
    st = spec.stain_shift
    assert (st.method, st.reference, st.domains, st.levels, st.max_strength) == (
        "macenko",
        None,
        None,
        10,
        1.0,
    )
    assert load_spec(write(tmp_path, BASE)).stain_shift is None


def test_bad_methods_and_names(tmp_path: Path):
    with pytest.raises(ConfigError, match="methods: unknown baseline 'pixelcam'"):
        load_spec(write(tmp_path, "name: t\nmethods: [pixelcam]\n"))
    with pytest.raises(ConfigError, match="name: 'a b' may only contain"):
        load_spec(write(tmp_path, "name: a b\n"))
    with pytest.raises(ConfigError, match="study spec not found"):
        load_spec(tmp_path / "none.yaml")


def test_ablation_labels_and_variants(tmp_path: Path):
    spec = load_spec(
        write(
            tmp_path,
            BASE + "search:\n  lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n"
            "  lam: {low: 1.0e-3, high: 1.0, log: true}\n"
            "ablation: {field: n, values: [1, 10]}\n",
        )
    )
    assert spec.all_methods() == ["cam", "pixelcam-cam.n-1", "pixelcam-cam.n-10"]
    assert spec.variant("pixelcam-cam.n-10") == Variant("pixelcam", "cam", {"n": 10})
    assert spec.variant("cam") == Variant("cam", None, {})
    assert spec.variant("pixelcam-cam").baseline is None  # not a label of this study


def test_negev_rows_settings_and_search_keys(tmp_path: Path):
    spec = load_spec(
        write(
            tmp_path,
            BASE.replace("methods: [cam]", "methods: [cam, sat]")
            + "negev: true\nbackbones: {sat: deit_tiny_sat}\n"
            "search:\n  lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n"
            "  n: [1, 10]\n  crf_weight: [0.0, 2.0e-9]\n"
            "method_train: {negev: {seed_dilation: 3, lr: 0.1}, cam: {lr_decay: 0.5}}\n",
        )
    )
    # baseline, w/ NEGEV, w/ PixelCAM per baseline; no NEGEV for SAT (its DeiT has no feature pyramid)
    assert spec.all_methods() == ["cam", "sat", "negev-cam", "pixelcam-cam", "pixelcam-sat"]
    assert spec.variant("negev-cam") == Variant("negev", "cam", {})
    assert set(spec.searched("negev")) == {"n", "crf_weight"}  # the CRF is NEGEV's alone; lr fixed for it
    assert set(spec.searched("pixelcam")) == {"lr", "n"} and set(spec.searched("cam")) == {"lr"}
    cfg = spec.base_config("negev", "synth-colon", "cam")  # the baseline's settings, then NEGEV's own
    assert (cfg.seed_dilation, cfg.lr, cfg.lr_decay, cfg.method) == (3, 0.1, 0.5, "negev")
    assert spec.base_config("pixelcam", "synth-colon", "cam").seed_dilation == 1
    bad = BASE + "method_train: {negev: {lr: 0.1}}\n"  # NEGEV is not part of this study
    with pytest.raises(ConfigError, match=r"method_train.negev: not one of the study's methods"):
        load_spec(write(tmp_path, bad))


@pytest.mark.parametrize(
    "extra, message",
    [
        ("ablation: {field: epochs, values: [1, 2]}\n", "ablation.field: 'epochs' cannot be ablated"),
        ("ablation: {field: lam, values: [0.1]}\n", "ablation.values: expected a list of >= 2 distinct"),
        ("ablation: {field: lam}\n", "ablation.values: is required"),
        ("ablation: {field: n, values: [1, -3]}\n", "ablation.values[-3]"),
        ("ablation: {field: sampler, values: [pb, xx]}\n", "ablation.values['xx']"),
        ("search:\n  lam: {low: 0.1, high: 1}\nablation: {field: lam, values: [0.1, 1]}\n", "also in search"),
    ],
)
def test_ablation_errors(tmp_path: Path, extra: str, message: str):
    with pytest.raises(ConfigError) as err:
        load_spec(write(tmp_path, BASE + extra))
    assert message in str(err.value)


def test_per_method_backbones(tmp_path: Path):
    """The paper's Table 1: CNN baselines on ResNet-50, SAT on DeiT-Tiny, each PixelCAM on its baseline's."""
    spec = load_spec(
        write(
            tmp_path,
            BASE.replace("methods: [cam]\n", "")
            + "methods: [cam, sat]\nbackbone: resnet18\nbackbones: {sat: deit_tiny_sat}\n",
        )
    )
    assert spec.base_config("cam", "synth-colon").backbone == "resnet18"
    assert spec.base_config("sat", "synth-colon").backbone == "deit_tiny_sat"
    assert spec.base_config("pixelcam", "synth-colon", "sat").backbone == "deit_tiny_sat"
    assert spec.base_config("pixelcam", "synth-colon", "cam").backbone == "resnet18"
    with pytest.raises(ConfigError, match=r"backbones.sat: not one of the study's methods \['cam'\]"):
        load_spec(
            write(
                tmp_path,
                BASE.replace("methods: [cam]\n", "") + "methods: [cam]\nbackbones: {sat: deit_tiny_sat}\n",
            )
        )
    with pytest.raises(
        ConfigError, match="backbones: .*unknown value 'vit_huge'; expected one of .* or timm:ARCH"
    ):
        load_spec(write(tmp_path, BASE + "backbones: {cam: vit_huge}\n"))


def test_per_method_train_settings(tmp_path: Path):
    text = (
        BASE.replace("methods: [cam]\n", "")
        + "methods: [cam, sat]\nbackbones: {sat: deit_tiny_sat}\ntrain: {pretrained: true}\n"
    )
    spec = load_spec(write(tmp_path, text + "method_train: {sat: {pretrained: false, lr: 0.0005}}\n"))
    assert spec.base_config("cam", "synth-colon").pretrained is True
    sat = spec.base_config("sat", "synth-colon")
    assert (sat.pretrained, sat.lr) == (False, 0.0005)
    assert spec.base_config("pixelcam", "synth-colon", "sat").pretrained is False  # its baseline's
    with pytest.raises(ConfigError, match=r"method_train.sat: lr: must be > 0"):
        load_spec(write(tmp_path, text + "method_train: {sat: {lr: -1}}\n"))
    with pytest.raises(ConfigError, match=r"method_train.sat.source: is set by the study itself"):
        load_spec(write(tmp_path, text + "method_train: {sat: {source: x}}\n"))


def test_unet_is_a_supervised_row_without_a_pixelcam_model(tmp_path: Path):
    spec = load_spec(
        write(tmp_path, BASE.replace("methods: [cam]\n", "") + "methods: [cam, unet]\npixelcam: true\n")
    )
    assert spec.all_methods() == ["cam", "unet", "pixelcam-cam"]  # PixelCAM learns from WSOL CAMs only
    cfg = spec.base_config("unet", "synth-colon")
    assert cfg.is_supervised and not cfg.is_pixelcam
    with pytest.raises(ConfigError, match=r"unknown baseline 'pixelcam'.*'unet'"):
        load_spec(write(tmp_path, BASE.replace("methods: [cam]\n", "") + "methods: [pixelcam]\n"))
