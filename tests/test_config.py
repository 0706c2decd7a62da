from pathlib import Path

import pytest

from pixelcam.config import ConfigError, TrainConfig, load_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_are_valid_and_overrides_apply(tmp_path: Path):
    cfg = load_config(write(tmp_path, "method: gradcampp\nepochs: 3\n"), epochs=5, seed=None)
    assert (cfg.method, cfg.epochs, cfg.seed, cfg.weight_decay) == ("gradcampp", 5, 0, 1e-4)
    assert cfg.run_name() == "gradcampp-resnet50-synth-colon"
    assert TrainConfig(method="sat").resolved_backbone() == "deit_tiny_sat"


@pytest.mark.parametrize(
    "text, message",
    [
        ("methd: cam\n", "unknown key(s) ['methd']"),
        ("method: camm\n", "method: unknown value 'camm'; expected one of"),
        ("backbone: resnet51\n", "backbone: unknown value 'resnet51'"),
        ("epochs: three\n", "epochs: expected an integer, got 'three'"),
        ("lr: -0.1\n", "lr: must be > 0"),
        ("lr_decay: 1.5\n", "lr_decay: must be in (0, 1]"),
        ("crop: 256\n", "crop: 256 is larger than resize=128"),
        ("selection: best\n", "selection: unknown value 'best'"),
        ("sampler: random\n", "sampler: unknown value 'random'"),
        ("method: pixelcam\n", "pseudo_labels_from: pixelcam needs a trained baseline"),
        ("use_gpu: 1\n", "use_gpu: expected true or false"),
        ("- a\n- b\n", "expected a mapping of settings"),
        ("seed_grid: cells\n", "seed_grid: unknown value 'cells'; expected one of ['image', 'feature']"),
        ("bg_sampling: lowest\n", "bg_sampling: unknown value 'lowest'; expected one of ['inverse', 'area']"),
        (
            "init_from: b-best\n",
            "init_from: unknown value 'b-best'; expected one of ['b-cl', 'b-loc', 'none']",
        ),
        ("pseudo_labels_checkpoint: last\n", "pseudo_labels_checkpoint: unknown value 'last'"),
        (
            "mil_attention: soft\n",
            "mil_attention: unknown value 'soft'; expected one of ['gated', 'per_class', 'gated_per_class']",
        ),
        ("eval_size: 0\n", "eval_size"),
        ("eval_size: full\n", "eval_size"),
        (
            "executor: local\nnum_workers: 2\n",
            "executor: local runs one worker in-process, not num_workers=2",
        ),
    ],
)
def test_bad_values_name_file_and_key(tmp_path: Path, text: str, message: str):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert str(p) in str(err.value) and message in str(err.value)


def test_fidelity_defaults_and_their_sources():
    """Defaults of the switches that align with the paper or its official code (README 'Fidelity')."""
    cfg = TrainConfig()
    assert cfg.seed_grid == "image"  # official code: seeds on the image grid
    assert cfg.bg_sampling == "inverse"  # paper text: BG ~ 1 - CAM
    assert cfg.pseudo_labels_checkpoint == "b-loc"  # paper (Table 14's main rows)
    assert cfg.init_from == "b-cl"  # official code
    assert cfg.eval_size == 224  # wsolevaluation / official code
    assert cfg.no_roi_seeds == "none"  # official code on CAMELYON16
    assert cfg.mil_attention == "gated"  # Ilse et al. 2018, the DeepMIL the paper cites
    assert cfg.gradcampp_variant == "eq19"  # the method as published (paper specs: official)
    assert cfg.eval_input == "crop" and cfg.threshold_criterion == "miou"  # official code
    assert cfg.checkpoint_ties == "latest" and cfg.pixelcam_head == "baseline"  # official code
    assert TrainConfig(eval_size="native").eval_size == "native"
    assert TrainConfig(method="deepmil", mil_attention="per_class").model_kwargs() == {
        "mil_attention": "per_class"
    }


def test_missing_and_invalid_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1,\n"))


def test_shipped_configs_validate():
    root = Path(__file__).resolve().parents[1] / "studies" / "train"
    files = sorted(root.glob("*.yaml"))
    assert files
    for f in files:
        load_config(f, pseudo_labels_from="runs/x")


def test_single_run_configs_are_in_the_quickstart_regime():
    """The configs the docs point single runs to train what the quickstart study trains (issue 28)."""
    from pixelcam.study.spec import load_spec

    root = Path(__file__).resolve().parents[1] / "studies"
    spec = load_spec(root / "quickstart.yaml")
    for f in sorted((root / "train").glob("*.yaml")):
        cfg = load_config(f, pseudo_labels_from="runs/x")
        assert (cfg.backbone, cfg.pretrained) == (spec.backbone, True), f.name
        assert cfg.epochs == spec.budget.epochs and cfg.num_workers == spec.resources.workers, f.name
        for key, value in spec.train.items():
            assert getattr(cfg, key) == value, (f.name, key)
