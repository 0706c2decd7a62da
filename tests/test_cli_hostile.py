"""More hostile input through `pixelcam.cli.main`, by category: operating-system errors (a path through a
file, a place the user may not write, a full or read-only disk), configs, specs, datasets, checkpoints and
flags.
Each row: exit code 2, one `pixelcam: error:` line naming the file, field or flag and what was expected, no
traceback, and the files under the test's directory exactly as they were (nothing written, nothing lost).
With `tests/test_cli_errors.py`'s table, the hostile-input table of the CLI."""

from __future__ import annotations

import errno
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelcam.cli import main
from tests.test_cli_errors import _checkpoint, _folder, _predict, _yaml

Build = Callable[[Path, Path], list[str]]


def _file(tmp: Path, name: str = "f", data: bytes = b"x") -> Path:
    (tmp / name).write_bytes(data)
    return tmp / name


def _train(tmp: Path, ds: Path, over: dict | None = None, *flags: str) -> list[str]:
    import yaml

    cfg = {"method": "cam", "backbone": "resnet10t", "data": str(ds), "source": "synth-lymph", **(over or {})}
    path = _file(tmp, "t.yaml", yaml.safe_dump(cfg).encode())
    return ["train", "baseline", "--config", str(path), "--storage", str(tmp / "runs"), *flags]


def _spec(tmp: Path, ds: Path, body: str) -> list[str]:
    spec = _file(tmp, "s.yaml", body.replace("DATA", str(ds)).encode())
    return ["study", "run", str(spec), "--storage", str(tmp / "runs")]


SPEC = "name: t\ndata: DATA\nsources: [synth-lymph]\nmethods: [cam]\n"


def _copy(tmp: Path, ds: Path) -> Path:
    shutil.copytree(ds, tmp / "ds")
    return tmp / "ds"


def _inspect(tmp: Path, ds: Path, edit: Callable[[Path], None], *flags: str) -> list[str]:
    copy = _copy(tmp, ds)
    edit(copy)
    return ["data", "inspect", str(copy), *flags]


def _parquet(ds: Path) -> Path:
    return sorted(ds.rglob("*.parquet"))[0]


def _evaluate(tmp: Path, ds: Path, edit: Callable[[Path], None] | None = None, *flags: str) -> list[str]:
    ck = Path(_checkpoint(tmp))
    if edit is not None:
        edit(ck)
    return ["evaluate", "--checkpoint", str(ck), "--data", str(ds), *flags]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _sweep(tmp: Path, ds: Path, *flags: str) -> list[str]:
    base = ["stain-sweep", "--checkpoint", _checkpoint(tmp), "--data", str(ds)]
    return [*base, "--domain", "synth-lymph", "--reference", "synth-lymph", *flags]


THROUGH = (  # mkdir through a regular file
    r"/[fg]/?.*: (a part of the path is a file, not a directory \(ENOTDIR\)"
    r"|is a file, not a directory \(EEXIST\))$"
)

# --- operating-system errors, real ------------------------------------------------------------------------
OS_CASES: list[tuple[str, Build, str]] = [
    (
        "synth --out through a regular file (ENOTDIR)",
        lambda t, d: ["data", "synth", "--out", str(_file(t) / "ds"), "--per-class", "10"],
        THROUGH,
    ),
    (
        "ingest --out through a regular file",
        lambda t, d: [*_folder(t)[:-1], str(_file(t, "g") / "o")],
        THROUGH,
    ),
    (
        "preview --out through a regular file",
        lambda t, d: ["data", "preview", str(d), "--out", str(_file(t) / "p.png")],
        THROUGH,
    ),
    (
        "preview --out is a directory",
        lambda t, d: ["data", "preview", str(d), "--out", str(t)],
        r": is a directory, a file was expected \(EISDIR\)$|is a directory; give a file name",
    ),
    (
        "synth-slide --out through a regular file",
        lambda t, d: [
            "data",
            "synth-slide",
            "--data",
            str(d),
            "--domain",
            "synth-lymph",
            "--size",
            "512",
            "--out",
            str(_file(t) / "s.tif"),
        ],
        THROUGH,
    ),  # fmt: skip
    (
        "train --storage through a regular file",
        lambda t, d: [*_train(t, d)[:-2], "--storage", str(_file(t) / "runs")],
        THROUGH,
    ),
    (
        "study --storage through a regular file",
        lambda t, d: [*_spec(t, d, SPEC)[:-2], "--storage", str(_file(t) / "runs")],
        THROUGH,
    ),
    (
        "evaluate --json through a regular file",
        lambda t, d: _evaluate(t, d, None, "--json", str(_file(t) / "r.json")),
        r"--json .*/f/r.json: .*/f is a file, not a directory$",
    ),
    (
        "predict --out through a regular file",
        lambda t, d: [*_predict(t)[:-2], "--out", str(_file(t) / "o")],
        THROUGH,
    ),
    (
        "predict --out naming a regular file",
        lambda t, d: [*_predict(t)[:-2], "--out", str(_file(t))],
        r"/f: is a file, not a directory \(EEXIST\)$",
    ),
    (
        "synth --out where the system forbids writing (EPERM)",
        lambda t, d: ["data", "synth", "--out", "/sys/pixelcam-test/ds", "--per-class", "10"],
        r"/sys/pixelcam-test.*: operation not permitted there: check the path, or write elsewhere \(EPERM\)$",
    ),
    (
        "evaluate --json where the system denies writing (EACCES)",
        lambda t, d: _evaluate(t, d, None, "--json", "/sys/kernel/pixelcam-test.json"),
        r"/sys/kernel/.*: permission denied: check the permissions of the path, or write elsewhere "
        r"\(EACCES\)$",
    ),
]

# --- configs, specs, datasets, checkpoints and flags --------------------------------------------------------
INPUT_CASES: list[tuple[str, Build, str]] = [
    ("synth --size 0", lambda t, d: ["data", "synth", "--out", str(t / "s"), "--size", "0"],
     r"argument --size: expected an integer >= 1, got 0$"),
    ("synth --size abc", lambda t, d: ["data", "synth", "--out", str(t / "s"), "--size", "abc"],
     r"argument --size: expected an integer >= 1, got 'abc'$"),
    ("synth --per-class 0", lambda t, d: ["data", "synth", "--out", str(t / "s"), "--per-class", "0"],
     r"argument --per-class: expected an integer >= 1, got 0$"),
    ("synth an unknown domain", lambda t, d: ["data", "synth", "--out", str(t / "s"), "--domains", "synth-x"],
     r"unknown .*'synth-x'.*synth-colon"),
    ("synth-slide from a missing dataset",
     lambda t, d: ["data", "synth-slide", "--data", str(t / "nope"), "--domain", "synth-lymph",
                   "--out", str(t / "s.tif")],
     r"nope: no such dataset directory"),
    ("synth-slide of an unknown domain",
     lambda t, d: ["data", "synth-slide", "--data", str(d), "--domain", "synth-x", "--out", str(t / "s.tif")],
     r"synth-x"),
    ("synth-slide of a million pixels a side",
     lambda t, d: ["data", "synth-slide", "--data", str(d), "--domain", "synth-lymph", "--size", "1000000",
                   "--out", str(t / "s.tif")],
     r"--size 1000000: a synthetic slide is at most 16384 px a side \(built in memory\)$"),
    ("inspect a regular file", lambda t, d: ["data", "inspect", str(_file(t))],
     r"/f: not a pixelcam dataset \(manifest.json missing\); create one with `pixelcam data synth`"),
    ("inspect an empty manifest", lambda t, d: _inspect(t, d, lambda c: (c / "manifest.json").write_text("")),
     r"manifest.json: .*JSON"),
    ("inspect a binary manifest",
     lambda t, d: _inspect(t, d, lambda c: (c / "manifest.json").write_bytes(b"\xff\xfe\x00garbage")),
     r"manifest.json: "),
    ("inspect a manifest of a future schema",
     lambda t, d: _inspect(t, d, lambda c: _edit_json(c / "manifest.json", schema_version=99)),
     r"manifest.json: .*schema_version 99"),
    ("inspect with a Parquet file deleted", lambda t, d: _inspect(t, d, lambda c: _parquet(c).unlink()),
     r"\.parquet: .*(missing|no such)"),
    ("inspect with a Parquet file truncated", lambda t, d: _inspect(t, d, lambda c: _truncate(_parquet(c))),
     r"\.parquet: "),
    ("inspect with a Parquet file replaced by text",
     lambda t, d: _inspect(t, d, lambda c: _parquet(c).write_text("id,label\n1,2\n")),
     r"\.parquet: "),
    ("preview --per-class 0", lambda t, d: ["data", "preview", str(d), "--out", str(t / "p.png"),
                                            "--per-class", "0"],
     r"argument --per-class: expected an integer >= 1, got 0$"),
    ("merge a missing dataset",
     lambda t, d: ["data", "merge", str(d), str(t / "nope"), "--out", str(t / "m")],
     r"nope: no such dataset directory"),
    ("merge a dataset with itself", lambda t, d: ["data", "merge", str(d), str(d), "--out", str(t / "m")],
     r"(twice|same|repeat|both)"),
    ("merge two datasets with the same domain",
     lambda t, d: ["data", "merge", str(_copy(t, d)), str(d), "--out", str(t / "m")],
     r"domain 'synth-lymph' is in both .* ingest one with --domain NAME$"),
    ("ingest glas from a missing root",
     lambda t, d: ["data", "ingest", "glas", "--root", str(t / "nope"), "--out", str(t / "o")],
     r"nope"),
    ("ingest camelyon16 from a missing root",
     lambda t, d: ["data", "ingest", "camelyon16", "--root", str(t / "nope"), "--folds", str(t / "nope"),
                   "--out", str(t / "o")],
     r"nope"),
    ("ingest folder with a missing labels CSV",
     lambda t, d: [*_folder(t)[:6], str(t / "nope.csv"), *_folder(t)[7:]],
     r"nope.csv: "),
    ("ingest folder with an empty labels CSV", lambda t, d: _folder(t, lambda s: ""),
     r"labels.csv: "),
    ("ingest folder without a split column",
     lambda t, d: _folder(t, lambda s: "\n".join(",".join(r.split(",")[:2]) for r in s.splitlines()) + "\n"),
     r"labels.csv: .*split"),
    ("ingest folder with an unknown split",
     lambda t, d: _folder(t, lambda s: s.replace(",train", ",tset", 1)),
     r"labels.csv:2: .*'tset'"),
    ("train with a missing config", lambda t, d: ["train", "baseline", "--config", str(t / "nope.yaml")],
     r"nope.yaml: "),
    ("train with an empty config (all defaults: the default dataset is missing)",
     lambda t, d: ["train", "baseline", "--config", str(_file(t, "c.yaml", b"")), "--data", str(t / "nope")],
     r"nope: no such dataset directory"),
    ("train with a config that is a list",
     lambda t, d: ["train", "baseline", "--config", str(_file(t, "c.yaml", b"- cam\n"))],
     r"c.yaml: .*mapping|c.yaml: .*expected"),
    ("train with an unknown key", lambda t, d: _train(t, d, {"learning_rate": 0.1}),
     r"t.yaml: .*learning_rate"),
    ("train with a negative lr", lambda t, d: _train(t, d, {"lr": -0.1}), r"t.yaml: .*lr"),
    ("train with lr NaN", lambda t, d: _train(t, d, {"lr": float("nan")}), r"t.yaml: .*lr"),
    ("train an unknown method", lambda t, d: _train(t, d, {"method": "gradcam9000"}), r"gradcam9000"),
    ("train an unknown backbone", lambda t, d: _train(t, d, {"backbone": "resnet9000"}), r"resnet9000"),
    ("train with a crop larger than the resize", lambda t, d: _train(t, d, {"resize": 32, "crop": 64}),
     r"crop"),
    ("train on a missing dataset", lambda t, d: _train(t, t / "nope"), r"nope: no such dataset directory"),
    ("train on a source the dataset lacks", lambda t, d: _train(t, d, {"source": "synth-colon"}),
     r"synth-colon"),
    ("train --resume of a run that does not exist", lambda t, d: _train(t, d, None, "--resume"),
     r"nothing to resume"),
    ("train --num-workers 0", lambda t, d: _train(t, d, None, "--num-workers", "0"),
     r"argument --num-workers: expected an integer >= 1, got 0$"),
    ("train with an unknown precision", lambda t, d: _train(t, d, {"precision": "fp8"}), r"fp8"),
    ("evaluate an empty checkpoint directory",
     lambda t, d: ["evaluate", "--checkpoint", str(_empty_dir(t)), "--data", str(d)],
     r"empty: "),
    ("evaluate a text file as model.pt",
     lambda t, d: _evaluate(t, d, lambda ck: (ck / "model.pt").write_text("not a model\n")),
     r"model.pt: not a readable PyTorch state dict, truncated or another kind of file \(.*\)$"),
    ("evaluate a truncated model.pt", lambda t, d: _evaluate(t, d, lambda ck: _truncate(ck / "model.pt")),
     r"model.pt: not a readable PyTorch state dict, truncated or another kind of file \(.*\)$"),
    ("evaluate a checkpoint whose meta.json is not JSON",
     lambda t, d: _evaluate(t, d, lambda ck: _meta(ck).write_text("{oops")),
     r"\.json: cannot read the checkpoint's meta \(.*\)$"),
    ("evaluate a checkpoint without its meta.json",
     lambda t, d: _evaluate(t, d, lambda ck: _meta(ck).unlink()),
     r"ck"),
    ("evaluate an unknown domain", lambda t, d: _evaluate(t, d, None, "--domains", "synth-x"),
     r"synth-x"),
    ("evaluate on a GPU this machine lacks", lambda t, d: _evaluate(t, d, None, "--device", "cuda:7"),
     r"--device cuda:7: "),
    ("evaluate on a device that does not exist", lambda t, d: _evaluate(t, d, None, "--device", "tpu"),
     r"--device tpu: "),
    ("stain-sweep --levels 0", lambda t, d: _sweep(t, d, "--levels", "0"),
     r"argument --levels: expected an integer >= 1, got 0$"),
    ("stain-sweep of an unknown domain", lambda t, d: [*_sweep(t, d)[:-4], "--domain", "synth-x",
                                                       "--reference", "synth-lymph"],
     r"synth-x"),
    ("stain-sweep with a negative strength", lambda t, d: _sweep(t, d, "--max-strength", "-1"),
     r"argument --max-strength: expected a number > 0, got -1"),
    ("stain-sweep toward the domain's own stain", lambda t, d: _sweep(t, d),
     r"stain reference 'synth-lymph' is the evaluated domain itself: nothing would shift$"),
    ("predict --tile 0", lambda t, d: _predict(t, "--tile", "0"),
     r"argument --tile: expected an integer >= 1, got 0$"),
    ("predict --batch-size 0", lambda t, d: _predict(t, "--batch-size", "0"),
     r"argument --batch-size: expected an integer >= 1, got 0$"),
    ("predict --actors 0", lambda t, d: _predict(t, "--actors", "0"),
     r"argument --actors: expected an integer >= 1, got 0$"),
    ("study with a missing spec", lambda t, d: ["study", "run", str(t / "nope.yaml")], r"nope.yaml: "),
    ("study with an empty spec", lambda t, d: ["study", "run", str(_file(t, "s.yaml", b""))], r"s.yaml: "),
    ("study with a spec that is a list", lambda t, d: ["study", "run", str(_file(t, "s.yaml", b"- a\n"))],
     r"s.yaml: "),
    ("study of an unknown method", lambda t, d: _spec(t, d, SPEC.replace("[cam]", "[camm]")), r"camm"),
    ("study without sources", lambda t, d: _spec(t, d, SPEC.replace("[synth-lymph]", "[]")), r"sources"),
    ("study with zero trials", lambda t, d: _spec(t, d, SPEC + "budget: {trials: 0}\n"),
     r"budget.trials"),
    ("study with a search range upside down",
     lambda t, d: _spec(t, d, SPEC + "search: {lr: {low: 0.1, high: 0.001}}\n"), r"search.lr"),
    ("study with an unknown top-level key", lambda t, d: _spec(t, d, SPEC + "trails: 3\n"), r"trails"),
    ("study resume of a directory that is not a study",
     lambda t, d: ["study", "resume", str(_empty_dir(t))], r"empty: "),
    ("study resume of a missing directory", lambda t, d: ["study", "resume", str(t / "nope")], r"nope"),
    ("study resume on data that changed since it started", lambda t, d: _stale_study(t, d),
     r"/runs/t: the study started on dataset 000000000000, but .+ is now [0-9a-f]{12} \(regenerated"),
    ("dashboard of a directory that is not a study",
     lambda t, d: ["dashboard", str(_empty_dir(t)), "--out", str(t / "x.html")], r"empty"),
    ("ui --port 0", lambda t, d: ["ui", "--port", "0"], r"argument --port: expected an integer >= 1, got 0$"),
    ("ui --port 70000", lambda t, d: ["ui", "--port", "70000"],
     r"argument --port: expected a port number 1-65535, got 70000$"),
    ("a study spec of 1.1 MB of one line", lambda t, d: ["study", "run", str(_yaml(t, b"#" * 1_100_000))],
     r"c.yaml: 1100000 bytes; a study spec is at most"),
]  # fmt: skip


def _edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _stale_study(tmp: Path, ds: Path) -> list[str]:
    """A study directory whose state.json says it started on other data than its spec's dataset now is."""
    d = tmp / "runs" / "t"
    d.mkdir(parents=True)
    (d / "spec.yaml").write_text(SPEC.replace("DATA", str(ds)))
    (d / "state.json").write_text(json.dumps({"dataset_hash": "0" * 64}))
    return ["study", "resume", str(d)]


def _empty_dir(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _meta(ck: Path) -> Path:
    (meta,) = [p for p in ck.glob("*.json")]
    return meta


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with its content (None for a directory): what a row must leave as it was."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
        if not p.is_symlink()
    }


def _run(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse's own errors (a bad flag value)
        rc = exc.code
    return rc, capsys.readouterr().err.strip()


def _check(name: str, rc: int, err: str, message: str) -> None:
    assert rc == 2, (name, err)
    assert "Traceback" not in err and sum("error:" in line for line in err.splitlines()) == 1, err
    assert re.search(message, err.splitlines()[-1]), (name, err)


CASES = OS_CASES + INPUT_CASES


@pytest.mark.parametrize("name, build, message", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_one_line_exit_2_and_changes_nothing(
    name: str, build: Build, message: str, tmp_path: Path, small_ds: Path, capsys: pytest.CaptureFixture
):
    args = build(tmp_path, small_ds)
    before, data_before = _tree(tmp_path), _tree(small_ds)
    rc, err = _run(args, capsys)
    _check(name, rc, err, message)
    assert _tree(tmp_path) == before, f"{name}: files under the test's directory changed"
    assert _tree(small_ds) == data_before


# --- a full disk, a read-only filesystem, a denied directory: simulated at the moment of writing ------------
# (the suite runs as root on CI, where permissions do not deny, and mounting a full or read-only filesystem
# needs privileges: the error is raised where the OS would raise it, and the rest is the real code path)
SIMULATED = [
    (errno.ENOSPC, "no space left on the device: free some space or write elsewhere (ENOSPC)"),
    (errno.EROFS, "the filesystem is read-only: write elsewhere (EROFS)"),
    (errno.EACCES, "permission denied: check the permissions of the path, or write elsewhere (EACCES)"),
    (errno.EDQUOT, "disk quota exceeded: free some space or write elsewhere (EDQUOT)"),
    (errno.EIO, "input/output error: the disk or the network filesystem failed (EIO)"),
]


def _failing(code: int) -> Callable[..., None]:
    def fail(src, dst, *a, **k):
        raise OSError(code, "simulated", str(dst))

    return fail


@pytest.mark.parametrize("code, words", SIMULATED, ids=[errno.errorcode[c] for c, _ in SIMULATED])
def test_a_dataset_rewrite_that_cannot_finish_keeps_the_old_one(
    code: int, words: str, tmp_path: Path, small_ds: Path, monkeypatch, capsys
):
    """`data synth --overwrite` over an existing dataset, failing as it puts the new one in place."""
    copy = _copy(tmp_path, small_ds)
    before = _tree(tmp_path)
    monkeypatch.setattr("pixelcam.storage.atomic.os.replace", _failing(code))
    rc, err = _run(["data", "synth", "--out", str(copy), "--per-class", "10", "--size", "32", "--overwrite"],
                   capsys)  # fmt: skip
    _check(errno.errorcode[code], rc, err, re.escape(words) + "$")
    assert str(tmp_path) in err.splitlines()[-1]  # the path is named
    assert _tree(tmp_path) == before  # the old dataset as it was, no temporary left


@pytest.mark.parametrize("code, words", SIMULATED, ids=[errno.errorcode[c] for c, _ in SIMULATED])
def test_a_report_that_cannot_be_written_leaves_no_temporary(
    code: int, words: str, tmp_path: Path, small_ds: Path, monkeypatch, capsys
):
    """`evaluate --json` whose report cannot be put in place: one line, the old report kept."""
    args = _evaluate(tmp_path, small_ds, None, "--json", str(_file(tmp_path, "r.json", b"{}")))
    before = _tree(tmp_path)
    monkeypatch.setattr("pixelcam.storage.atomic.os.replace", _failing(code))
    rc, err = _run(args, capsys)
    _check(errno.errorcode[code], rc, err, re.escape(words) + "$")
    assert _tree(tmp_path) == before
