"""Every bad input a user can give gets one line naming the file, field or flag and what was expected, and
exit code 2, never a traceback. Table-driven through the public entry point `pixelcam.cli.main`: add a row
for every new case."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelcam.cli import main
from pixelcam.models import create_wsol_model
from pixelcam.runtime.checkpoint import save_checkpoint
from tests.data.ingest.fixtures import make_folder


def _folder(tmp: Path, edit: Callable[[str], str] | None = None, encoding: str = "utf-8") -> list[str]:
    csv = make_folder(tmp / "f")
    if edit is not None:
        csv.write_bytes(edit(csv.read_text()).encode(encoding))
    args = ["data", "ingest", "folder", "--root", str(tmp / "f"), "--labels", str(csv), "--domain", "d"]
    return args + ["--out", str(tmp / "out")]


def _checkpoint(tmp: Path, **meta_changes) -> str:
    meta = {"method": "cam", "backbone": "resnet10t", "class_names": ["normal", "cancer"], "epoch": 0}
    meta.update(tau=0.5, metrics={}, resize=32, source="synth-lymph", **meta_changes)
    save_checkpoint(tmp / "ck", create_wsol_model("cam", "resnet10t"), meta)
    return str(tmp / "ck")


def _spec(tmp: Path, extra: str) -> list[str]:
    (tmp / "s.yaml").write_text(f"name: t\nsources: [synth-colon]\nmethods: [cam]\n{extra}")
    return ["study", "run", str(tmp / "s.yaml"), "--storage", str(tmp / "runs")]


def _manifest(tmp: Path, ds: Path, text: str) -> list[str]:
    import shutil

    shutil.copytree(ds, tmp / "ds")
    (tmp / "ds" / "manifest.json").write_text(text)
    return ["data", "inspect", str(tmp / "ds")]


CASES: list[tuple[str, Callable[[Path, Path], list[str]], str]] = [
    (
        "models register on a directory that is not a study",
        lambda t, d: ["models", "register", str(t), "--alias", "champion"],
        r"not a study directory \(spec.yaml and state.json expected\)",
    ),
    (
        "models register with an alias MLflow refuses",
        lambda t, d: ["models", "register", str(t), "--alias", "v2"],
        r"--alias: 'v2': letters, digits, '_' and '-' only, not 'latest' nor v<number>",
    ),
    (
        "evaluate a registered model that is not in the registry",
        lambda t, d: ["evaluate", "--model", "models:/nope@champion", "--data", str(d)],
        r"models:/nope@champion: not in the model registry at sqlite:",
    ),
    (
        "evaluate a model URI of no known form",
        lambda t, d: ["evaluate", "--model", "models:/nope", "--data", str(d)],
        r"models:/nope: expected models:/NAME@ALIAS, models:/NAME/VERSION or models:/MODEL_ID",
    ),
    (
        "label is a superscript digit",
        lambda t, d: _folder(t, lambda s: s.replace(",normal,train", ",²,train", 1)),
        r"labels.csv:2: unknown label '²'",
    ),
    (
        "Latin-1 CSV",
        lambda t, d: _folder(t, lambda s: s.replace("images/train_normal", "images/tráin_normal"), "latin-1"),
        r"labels.csv: not UTF-8 text .* save the CSV as UTF-8",
    ),
    (
        "path traversal",
        lambda t, d: _folder(t, lambda s: s.replace("images/train_normal.png", "../../../outside.png")),
        r"labels.csv:2: image path '../../../outside.png' leads outside --root",
    ),
    (
        "absolute path outside the root",
        lambda t, d: _folder(t, lambda s: s.replace("images/train_normal.png", "/etc/passwd")),
        r"labels.csv:2: image path '/etc/passwd' leads outside --root",
    ),
    (
        "one image listed twice under two spellings",
        lambda t, d: _folder(t, lambda s: s + "./images/train_normal.png,normal,test,\n"),
        r"duplicate image 'images/train_normal.png': listed in .*labels.csv:2 and in .*labels.csv:10",
    ),
    (
        "repeated class names",
        lambda t, d: _folder(t) + ["--classes", "normal,normal,cancer"],
        r"--classes 'normal,normal,cancer': expected two or more distinct names",
    ),
    (
        "synth --seed -1",
        lambda t, d: ["data", "synth", "--out", str(t / "x"), "--seed", "-1"],
        r"seed: -1 is negative",
    ),
    (
        "synth --per-class too small names the true minimum",
        lambda t, d: ["data", "synth", "--out", str(t / "x"), "--per-class", "8"],
        r"per_class: 8 is too small .* expected >= 9",
    ),
    (
        "--overwrite on a directory that is not a dataset",
        lambda t, d: _synth_over(t, "keep", directory=True),
        r"keep: is a directory that is not a pixelcam dataset .* choose another --out",
    ),
    (
        "--overwrite on a regular file",
        lambda t, d: _synth_over(t, "afile.txt", directory=False),
        r"afile.txt: is a file; --overwrite only replaces a dataset",
    ),
    (
        "a missing dataset",
        lambda t, d: ["data", "inspect", str(t / "nope")],
        r"nope: no such dataset directory",
    ),
    (
        "a manifest that is a JSON list",
        lambda t, d: _manifest(t, d, "[1, 2]"),
        r"manifest.json: expected a JSON object with schema_version, hash and domains",
    ),
    (
        "a manifest with a malformed domain",
        lambda t, d: _manifest(t, d, json.dumps({"schema_version": 2, "hash": "x", "domains": {"a": []}})),
        r"manifest.json: domains.a: expected an object with \['class_names', 'counts', 'files'\]",
    ),
    (
        "budget.max_concurrent: -2",
        lambda t, d: _spec(t, "budget: {max_concurrent: -2}\n"),
        r"s.yaml: budget.max_concurrent: must be >= 1, got -2",
    ),
    (
        "gpus_per_worker: -1",
        lambda t, d: _spec(t, "resources: {gpus_per_worker: -1}\n"),
        r"s.yaml: resources.gpus_per_worker: must be >= 0, got -1",
    ),
    (
        "a checkpoint whose meta names another method",
        lambda t, d: ["evaluate", "--checkpoint", _checkpoint(t, method="deepmil"), "--data", str(d)],
        r"ck: the weights do not fit deepmil on resnet10t with 2 classes",
    ),
    (
        "a 3-class checkpoint on a 2-class dataset",
        lambda t, d: [
            "evaluate",
            "--checkpoint",
            _checkpoint(t, class_names=["a", "b", "c"]),
            "--data",
            str(d),
        ],
        r"ck: the weights do not fit cam on resnet10t with 3 classes",
    ),
    (
        "an invalid selected.json",
        lambda t, d: ["evaluate", "--checkpoint", _bad_run(t), "--data", str(d)],
        r"run/selected.json: cannot be read as JSON",
    ),
    (
        "--json is a directory (checked before the evaluation runs)",
        lambda t, d: ["evaluate", "--checkpoint", _checkpoint(t), "--data", str(d), "--json", str(t)],
        r"--json .*: is a directory; give a file name",
    ),
    (
        "train --epochs 0 blames the flag, not the file",
        lambda t, d: ["train", "baseline", "--config", str(_train_config(t)), "--epochs", "0"],
        r"argument --epochs: expected an integer >= 1, got 0",
    ),
    (
        "evaluate --batch-size 0",
        lambda t, d: ["evaluate", "--checkpoint", "x", "--data", str(d), "--batch-size", "0"],
        r"argument --batch-size: expected an integer >= 1, got 0",
    ),
    (
        "evaluate --split tst",
        lambda t, d: ["evaluate", "--checkpoint", "x", "--data", str(d), "--split", "tst"],
        r"argument --split: invalid choice: 'tst'",
    ),
    (
        "predict: a slide glob that matches nothing",
        lambda t, d: ["predict", "--checkpoint", "x", "--slides", str(t / "*.svs"), "--out", str(t / "o")],
        r"--slides: '.*\*\.svs' matches no file$",
    ),
    (
        "predict: a mask pattern that matches nothing",
        lambda t, d: _predict(t, "--mask", str(t / "*_mask.tif")),
        r"--mask: '.*\*_mask\.tif' matches no file$",
    ),
    (
        "predict: every file of --slides is a --mask",
        lambda t, d: _masks_only(t),
        r"--slides: every file it matches is a --mask$",
    ),
    (
        "predict: overlap as large as the tile",
        lambda t, d: _predict(t, "--tile", "64", "--overlap", "64"),
        r"--overlap 64: expected 0 <= overlap < --tile \(64\)",
    ),
    (
        "predict: a heatmap stride that does not divide the tile",
        lambda t, d: _predict(t, "--heatmap-stride", "5"),
        r"--heatmap-stride 5: must divide --tile \(224\) and --overlap \(32\)",
    ),
    (
        "predict: a class the checkpoint does not have",
        lambda t, d: _predict(t, "--class", "tumour"),
        r"--class 'tumour': the checkpoint's classes are \['normal', 'cancer'\]",
    ),
    (
        "predict: a missing checkpoint",
        lambda t, d: _predict(t, checkpoint=str(t / "nope")),
        r"nope: no such checkpoint or run directory",
    ),
    (
        "predict: a negative resolution",
        lambda t, d: _predict(t, "--mpp", "-0.5"),
        r"argument --mpp: expected a number > 0, got -0.5",
    ),
    (
        "dashboard --slides on a directory predict did not write",
        lambda t, d: ["dashboard", "--slides", str(t), "--out", str(t / "x.html")],
        r"no predict.json \(not a `pixelcam predict` output directory\)",
    ),
    (
        "dashboard with neither a study nor --slides",
        lambda t, d: ["dashboard", "--out", str(t / "x.html")],
        r"give a study \(directory or run id\) or --slides DIR, not both",
    ),
    (
        "study storage on an object store no filesystem opens",
        lambda t, d: ["study", "run", str(_spec(t, f"data: {d}\n")[2]), "--storage", "nosuch://bucket/runs"],
        r"nosuch://bucket/runs: cannot open \(.*nosuch",
    ),
    (
        "training storage on an object store no filesystem opens",
        lambda t, d: [
            "train",
            "baseline",
            "--config",
            str(_train_config(t)),
            "--data",
            str(d),
            "--source",
            "synth-colon",
            "--storage",
            "nosuch://bucket/runs",
        ],
        r"nosuch://bucket/runs: cannot open \(.*nosuch",
    ),  # fmt: skip
    (
        "a corrupt image names the file, not an in-memory buffer",
        lambda t, d: _corrupt(t),
        r"train_normal.png: cannot decode image \(not an image format PIL reads\)$",
    ),
    (
        "a training config that repeats a key",
        lambda t, d: ["train", "baseline", "--config", str(_yaml(t, b"method: cam\nlr: 0.1\nlr: 0.2\n"))],
        r"c.yaml: line 3: not valid YAML \(key 'lr' appears twice \(lines 2 and 3\)\)$",
    ),
    (
        "a study spec that repeats a nested key",
        lambda t, d: ["study", "run", str(_yaml(t, b"name: t\nbudget: {trials: 1, trials: 2}\n"))],
        r"c.yaml: line 2: not valid YAML \(key 'trials' appears twice",
    ),
    (
        "a Latin-1 encoded study spec",
        lambda t, d: ["study", "run", str(_yaml(t, "name: café\n".encode("latin-1")))],
        r"c.yaml: not UTF-8 text \(byte 9: invalid continuation byte\); save it as UTF-8$",
    ),
    (
        "a 2 MB study spec",
        lambda t, d: ["study", "run", str(_yaml(t, b"# x\n" * 600_000))],
        r"c.yaml: 2400000 bytes; a study spec is at most 1048576 bytes \(1 MiB\)$",
    ),
    (
        "a labels CSV with its header only",
        lambda t, d: _folder(t, lambda s: s.splitlines()[0] + "\n"),
        r"labels.csv: no image rows under the header; expected one row per image$",
    ),
    (
        "a synthetic tile of 100000 px",
        lambda t, d: ["data", "synth", "--out", str(t / "s"), "--size", "100000"],
        r"size: 100000 px; a synthetic tile is at most 2048 px \(a patch, not a slide\)$",
    ),
    (
        "ten million synthetic images per class",
        lambda t, d: ["data", "synth", "--out", str(t / "s"), "--per-class", "10000000"],
        r"per_class: 10000000; at most 100000 images per class and domain$",
    ),
    (
        "a prediction tile of a million pixels",
        lambda t, d: _predict(t, "--tile", "1000000", "--heatmap-stride", "8"),
        r"--tile 1000000: at most 4096 pixels \(a model's input tile, not a region\)$",
    ),
    (
        "a prediction batch that cannot fit in memory",
        lambda t, d: _predict(t, "--tile", "4096", "--batch-size", "64", "--heatmap-stride", "8"),
        r"--batch-size 64 x --tile 4096: a batch would take 48.0 GiB \(at most 8 GiB\); lower either$",
    ),
    (
        "a directory given as the training config",
        lambda t, d: ["train", "baseline", "--config", str(t)],
        r": is a directory; expected a config file \(YAML\)$",
    ),
]


def _synth_over(tmp: Path, name: str, directory: bool) -> list[str]:
    if directory:
        (tmp / name).mkdir()
        (tmp / name / "precious.txt").write_text("x")
    else:
        (tmp / name).write_text("x")
    return ["data", "synth", "--out", str(tmp / name), "--per-class", "10", "--overwrite"]


def _predict(tmp: Path, *extra: str, checkpoint: str | None = None) -> list[str]:
    (tmp / "s.tif").write_bytes(b"not read: the options are checked first")
    ck = checkpoint or _checkpoint(tmp)
    return ["predict", "--checkpoint", ck, "--slides", str(tmp / "s.tif"), "--out", str(tmp / "o"), *extra]


def _bad_run(tmp: Path) -> str:
    (tmp / "run").mkdir()
    (tmp / "run" / "selected.json").write_text("{oops")
    return str(tmp / "run")


def _masks_only(tmp: Path) -> list[str]:
    (tmp / "a_mask.tif").write_bytes(b"not read")
    pattern = str(tmp / "*.tif")
    return ["predict", "--checkpoint", "x", "--slides", pattern, "--mask", pattern, "--out", str(tmp / "o")]


def _yaml(tmp: Path, raw: bytes) -> Path:
    (tmp / "c.yaml").write_bytes(raw)
    return tmp / "c.yaml"


def _train_config(tmp: Path) -> Path:
    (tmp / "c.yaml").write_text("method: cam\n")
    return tmp / "c.yaml"


def _corrupt(tmp: Path) -> list[str]:
    args = _folder(tmp)
    (tmp / "f" / "images" / "train_normal.png").write_bytes(b"not a png")
    return args


@pytest.mark.parametrize("name, build, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_code_2(
    name: str, build, message: str, tmp_path: Path, small_ds: Path, capsys: pytest.CaptureFixture
):
    args = build(tmp_path, small_ds)
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse's own errors (a bad flag value)
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2, (name, err)
    # one error line (argparse prints its usage above it)
    assert "Traceback" not in err and sum("error:" in line for line in err.splitlines()) == 1, err
    assert re.search(message, err.splitlines()[-1]), (name, err)


def test_overwrite_refusal_keeps_what_was_there(tmp_path: Path):
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious.txt").write_text("x")
    assert main(["data", "synth", "--out", str(tmp_path / "keep"), "--per-class", "10", "--overwrite"]) == 2
    assert (tmp_path / "keep" / "precious.txt").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]  # no temporary left beside it


def test_verify_detects_a_changed_manifest_hash(tmp_path: Path, small_ds: Path, capsys):
    import shutil

    shutil.copytree(small_ds, tmp_path / "ds")
    m = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    m["hash"] = "0" * 64
    (tmp_path / "ds" / "manifest.json").write_text(json.dumps(m))
    assert main(["data", "inspect", str(tmp_path / "ds")]) == 0  # only --verify recomputes it
    assert main(["data", "inspect", str(tmp_path / "ds"), "--verify"]) == 2
    assert "does not match the recorded content" in capsys.readouterr().err


def test_evaluate_warns_when_the_data_is_not_what_the_checkpoint_was_trained_on(
    tmp_path: Path, small_ds: Path, capsys
):
    ck = _checkpoint(tmp_path, dataset_hash="f" * 64)
    assert main(["evaluate", "--checkpoint", ck, "--data", str(small_ds)]) == 0
    assert "pixelcam: warning:" in capsys.readouterr().err


def test_a_study_that_cannot_start_leaves_nothing_behind(tmp_path: Path, small_ds: Path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: t\ndata: {small_ds}\nsources: [synth-nowhere]\nmethods: [cam]\n")
    assert main(["study", "run", str(spec), "--storage", str(tmp_path / "runs")]) == 2
    assert "unknown domain 'synth-nowhere'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # so the fixed spec runs without "exists: resume"


def test_progress_in_logs_is_one_line_per_tenth(tmp_path: Path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "ds"), "--per-class", "10", "--size", "32"]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("synth: ")]
    assert 5 <= len(lines) <= 11 and lines[-1].startswith("synth: 40/40")  # not a TTY under pytest
