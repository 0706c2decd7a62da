"""The public fold files of `../shared/real-folds/`, ingested exactly as published (stand-in images at the
listed paths and stated sizes): counts per split and class as the files say, ids = the listed paths, valpx a
subset of valcl, `None`/empty masks = no ROI, fold-6's missing valcl/valpx carved and reported."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pixelcam.data import open_dataset
from pixelcam.data.ingest import ingest
from pixelcam.data.png import decode_mask
from pixelcam.runtime.data import iter_split, split_size
from tests.data.ingest.real_folds import CAMELYON_FOLDS, GLAS_FOLDS, REAL_FOLDS, build_stand_ins, lines


def test_the_published_folds_are_here():
    """The fold files come with the team's shared folder beside the checkout; without them the tests below
    would have nothing to ingest (fail, never skip)."""
    assert [f.name for f in GLAS_FOLDS] == [f"fold-{i}" for i in range(5)], REAL_FOLDS
    assert [f.name for f in CAMELYON_FOLDS] == ["fold-5-excerpt", "fold-6"], REAL_FOLDS


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_stand_ins(tmp_path_factory.mktemp("real") / "root", GLAS_FOLDS + CAMELYON_FOLDS)


def expected_counts(fold: Path, names: list[str]) -> dict[str, dict[str, int]]:
    """{split: {class: n}} from the fold's class_labels.txt files (valcl as listed: valpx included)."""
    out = {}
    for split in ("train", "valcl", "valpx", "test"):
        f = fold / split / "class_labels.txt"
        if f.is_file():
            c = Counter(int(p[1]) for p in lines(f))
            out[split] = {n: c.get(i, 0) for i, n in enumerate(names)}
    return out


def listed_ids(fold: Path, split: str) -> list[str]:
    return [p[0] for p in lines(fold / split / "image_ids.txt")]


@pytest.mark.parametrize("fold", GLAS_FOLDS, ids=lambda f: f.name)
def test_glas_folds_ingest_as_published(stand_ins: Path, tmp_path: Path, fold: Path):
    ingest("glas", tmp_path / "ds", root=str(stand_ins), folds=str(fold), workers=1)
    ds = open_dataset(tmp_path / "ds")
    names = ["benign", "malignant"]
    assert ds.class_names("glas") == names and ds.roi_classes("glas") == names  # glands in both classes
    counts = ds.counts("glas")
    for split, per_class in expected_counts(fold, names).items():
        assert counts[split] == per_class, split
    if fold.name == "fold-0":  # the paper's split
        sizes = {s: sum(counts[s].values()) for s in ("train", "valcl", "valpx", "test")}
        assert sizes == {"train": 67, "valcl": 18, "valpx": 6, "test": 80}
        assert counts["valpx"] == {"benign": 3, "malignant": 3}
    for split in ("train", "valpx", "test"):
        ids = ds.read_table(splits=[split], columns=["image_id"]).column("image_id").to_pylist()
        assert ids == listed_ids(fold, split)  # the listed relative paths, once, in listed order
    valcl = [i for b in iter_split(ds, "glas", "valcl", 32, 64) for i in b.image_ids]
    assert sorted(valcl) == sorted(listed_ids(fold, "valcl"))  # B-CL sees all of valcl, valpx included
    masks = ds.read_table(columns=["mask", "label"]).to_pylist()
    assert all(r["mask"] is not None and decode_mask(r["mask"]).any() for r in masks)  # benign glands too


def test_camelyon16_excerpt_as_published(stand_ins: Path, tmp_path: Path):
    fold = next(f for f in CAMELYON_FOLDS if f.name == "fold-5-excerpt")
    src = ingest("camelyon16", tmp_path / "ds", root=str(stand_ins), folds=str(fold), workers=1)
    assert len(src.notes) == 1 and "no train/" in src.notes[0]  # the excerpt ships valcl, valpx, test only
    ds = open_dataset(tmp_path / "ds")
    assert ds.class_names("camelyon16") == ["normal", "tumor"] and ds.roi_classes("camelyon16") == ["tumor"]
    counts = ds.counts("camelyon16")
    for split, per_class in expected_counts(fold, ["normal", "tumor"]).items():
        assert counts[split] == per_class, split
    assert split_size(ds, "camelyon16", "valcl") == len(listed_ids(fold, "valcl")) == 310
    valpx = set(listed_ids(fold, "valpx"))
    assert valpx <= set(listed_ids(fold, "valcl"))  # the protocol these files follow
    ids = ds.read_table(splits=["valcl"], columns=["image_id"]).column("image_id").to_pylist()
    assert not valpx & set(ids) and len(ids) == 300  # valpx images are stored once
    test = ds.read_table(splits=["test"], columns=["image_id", "label", "mask"]).to_pylist()
    none_lines = {p[0] for p in lines(fold / "test" / "localization.txt") if p[1] == "None"}
    assert none_lines and all(r["label"] == 0 for r in test if r["image_id"] in none_lines)
    for r in test:  # `None` and empty both mean no ROI: an all-background mask
        assert decode_mask(r["mask"]).any() == (r["image_id"] not in none_lines)
    assert {r["image_id"] for r in test} == set(listed_ids(fold, "test"))


def test_camelyon16_fold6_carves_valcl_and_valpx(stand_ins: Path, tmp_path: Path):
    fold = next(f for f in CAMELYON_FOLDS if f.name == "fold-6")
    kw = dict(root=str(stand_ins), folds=str(fold), seed=3, workers=1)
    src = ingest("camelyon16", tmp_path / "a", **kw)
    assert len(src.notes) == 2 and "no valcl/" in src.notes[0] and "no valpx/" in src.notes[1]
    ds = open_dataset(tmp_path / "a")
    counts = ds.counts("camelyon16")
    listed = expected_counts(fold, ["normal", "tumor"])
    for cls in ("normal", "tumor"):
        assert counts["train"][cls] + counts["valcl"][cls] == listed["train"][cls]  # valcl carved from train
        assert counts["valpx"][cls] == 6 and counts["test"][cls] == listed["test"][cls]
    assert 0.15 < sum(counts["valcl"].values()) / 500 < 0.25
    valcl = {i for b in iter_split(ds, "camelyon16", "valcl", 32, 64) for i in b.image_ids}
    valpx = set(ds.read_table(splits=["valpx"], columns=["image_id"]).column("image_id").to_pylist())
    assert valpx <= valcl  # drawn from valcl, kept in it
    ingest("camelyon16", tmp_path / "b", **kw)
    assert open_dataset(tmp_path / "b").hash == ds.hash  # the seed fixes the carve


def test_content_hash_does_not_depend_on_where_it_was_built(stand_ins: Path, tmp_path: Path):
    fold = GLAS_FOLDS[0]
    # the same files under two roots, written to two places, decoded by a pool of processes and by this one
    # (the other tests ingest in this process: a pool of 2 spawned processes costs ~2 CPU-s per ingest)
    for name, workers in (("one", 2), ("two", 1)):
        root = tmp_path / name / "data"
        shutil.copytree(
            stand_ins / "Warwick_QU_Dataset_(Released_2016_07_08)",
            root / "Warwick_QU_Dataset_(Released_2016_07_08)",
        )
        ingest("glas", tmp_path / name / "ds", root=str(root), folds=str(fold), workers=workers)
    one, two = (open_dataset(tmp_path / n / "ds") for n in ("one", "two"))
    assert one.hash == two.hash
    src = one.read_table(splits=["train"], columns=["source_path"]).column("source_path").to_pylist()
    assert src[0] == listed_ids(fold, "train")[0]  # provenance relative to --root


def test_size_mismatch_names_the_sizes_file_and_line(stand_ins: Path, tmp_path: Path):
    fold = tmp_path / "fold"
    shutil.copytree(GLAS_FOLDS[0], fold)
    f = fold / "test" / "image_sizes.txt"
    rows = f.read_text().splitlines()
    rows[4] = rows[4].rsplit(",", 2)[0] + ",100,100"
    f.write_text("\n".join(rows) + "\n")
    with pytest.raises(Exception, match=rf"{f}:5: says .* is 100x100, but .* is \d+x\d+"):
        ingest("glas", tmp_path / "ds", root=str(stand_ins), folds=str(fold))
    assert not (tmp_path / "ds").exists()


def test_sigkilled_ingest_leaves_the_old_dataset_and_no_temporaries(stand_ins: Path, tmp_path: Path):
    fold = next(f for f in CAMELYON_FOLDS if f.name == "fold-6")
    out = tmp_path / "ds"
    ingest("glas", out, root=str(stand_ins), folds=str(GLAS_FOLDS[0]), workers=1)
    before = open_dataset(out).hash
    cmd = [sys.executable, "-m", "pixelcam.cli", "data", "ingest", "camelyon16", "--root", str(stand_ins)]
    proc = subprocess.Popen(
        [*cmd, "--folds", str(fold), "--out", str(out), "--overwrite"], start_new_session=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # kill it mid-write: rows are in the temporary dir
        if any(tmp_path.glob(".ds.tmp-*/*/*.parquet")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the ingest ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert open_dataset(out, verify=True).hash == before  # the old dataset is untouched
    assert list(tmp_path.glob(".ds.tmp-*"))  # SIGKILL leaves the temporary directory ...
    with pytest.raises(Exception, match="already exists"):
        ingest("camelyon16", out, root=str(stand_ins), folds=str(fold))
    assert not list(tmp_path.glob(".ds.tmp-*"))  # ... which the next run removes (its owner is gone)
    assert np.array_equal(sorted(p.name for p in tmp_path.iterdir()), ["ds"])


def test_folds_of_the_other_dataset_name_the_right_command(stand_ins: Path, tmp_path: Path):
    message = (
        r"names the classes \['normal', 'tumor'\], this ingester expects \['benign', 'malignant'\]; "
        r"these are camelyon16 folds: use `pixelcam data ingest camelyon16`"
    )
    with pytest.raises(Exception, match=message):
        ingest("glas", tmp_path / "a", root=str(stand_ins), folds=str(CAMELYON_FOLDS[1]))
    with pytest.raises(Exception, match=r"these are glas folds: use `pixelcam data ingest glas`"):
        ingest("camelyon16", tmp_path / "b", root=str(stand_ins), folds=str(GLAS_FOLDS[0]))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_byte_order_mark_is_not_part_of_the_first_path(stand_ins: Path, tmp_path: Path):
    fold = tmp_path / "fold"
    shutil.copytree(GLAS_FOLDS[0], fold)
    for f in fold.rglob("*.txt"):  # as a Windows editor saves them
        f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    ingest("glas", tmp_path / "ds", root=str(stand_ins), folds=str(fold), workers=1)
    ids = open_dataset(tmp_path / "ds").read_table(splits=["test"], columns=["image_id"])
    assert ids.column("image_id").to_pylist() == listed_ids(GLAS_FOLDS[0], "test")


def test_a_missing_mask_names_localization_txt_and_a_respelt_folder(stand_ins: Path, tmp_path: Path):
    fold, root = tmp_path / "fold", tmp_path / "root"
    shutil.copytree(GLAS_FOLDS[0], fold)
    shutil.copytree(stand_ins, root)
    loc = fold / "test" / "localization.txt"
    rows = loc.read_text().splitlines()
    image, mask = rows[2].split(",")[:2]
    (root / mask).unlink()
    missing = re.escape(f"{mask}: mask file not found (listed in {loc}:3)")
    with pytest.raises(Exception, match=missing + "$"):
        ingest("glas", tmp_path / "ds", root=str(root), folds=str(fold))
    # the release unpacked with spaces in its folder's name, the folds written with underscores
    release = next(p for p in root.iterdir() if p.name.startswith("Warwick"))
    release.rename(root / release.name.replace("_", " "))
    with pytest.raises(
        Exception,
        match=r"Warwick QU Dataset .* exists: the list and the folder differ in "
        r"spaces and underscores \(rename the folder to 'Warwick_QU_Dataset_",
    ):
        ingest("glas", tmp_path / "ds", root=str(root), folds=str(fold))
    assert not (tmp_path / "ds").exists()


def test_inspect_covers_the_rois_of_every_roi_class(stand_ins: Path, tmp_path: Path):
    """GlaS: glands in benign images too, so the ROI-cover column counts class 0 (CAMELYON16: tumour only)."""
    from pixelcam.data.inspect import summarize

    ingest("glas", tmp_path / "ds", root=str(stand_ins), folds=str(GLAS_FOLDS[0]), workers=1)
    test = summarize(open_dataset(tmp_path / "ds"))["glas"]["test"]
    assert len(test.coverage) == sum(test.counts.values()) == test.masked == 80
