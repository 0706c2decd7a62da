"""The public "WSOL done right" fold files (GlaS, CAMELYON16), read as published.

A fold directory holds `train/ [valcl/] [valpx/] test/`, each with `image_ids.txt` (a path per line, relative
to the dataset root), `class_labels.txt` (`path,label`), `localization.txt` (`path,mask,`: the mask field is
empty or the literal `None` for an image without ROI; a trailing empty field is usual) and `image_sizes.txt`
or `images_size.txt` (`path,width,height`). Class names come from `encoding.yaml` beside the folds
(`{normal: 0, tumor: 1}`). `valpx` is a subset of `valcl` in the protocol: those images are read once and
kept in valpx, marked as also belonging to valcl (B-CL uses all of valcl, B-LOC uses valpx).

A fold without train/ (an excerpt, a target used only for evaluation) gives a dataset without a training
split. A fold without valcl gets one carved from train (stratified, by seed); one without valpx gets valpx
drawn from valcl among the images with pixel labels. Each deviation is reported as a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from pixelcam.data.errors import DatasetError
from pixelcam.data.ingest.common import Entry, check_unique, listed_path, require_masks

FOLD_SPLITS = ("train", "valcl", "valpx", "test")
SIZE_FILES = ("image_sizes.txt", "images_size.txt")
NO_MASK = ("", "none")


@dataclass
class Folds:
    """Entries of every split, the sizes the folds declare (image id -> (W, H, where stated)), the class
    names, and notes on anything the ingest had to add (carved splits)."""

    entries: list[Entry]
    sizes: dict[str, tuple[int, int, str]]
    class_names: list[str]
    notes: list[str] = field(default_factory=list)


def read_encoding(folds: Path, default: list[str]) -> list[str]:
    """Class names ordered by id from `encoding.yaml` in the fold directory or its parent; `default` when
    there is none."""
    for f in (folds / "encoding.yaml", folds.parent / "encoding.yaml"):
        if f.is_file():
            try:
                enc = yaml.safe_load(f.read_text())
            except yaml.YAMLError as exc:
                raise DatasetError(f"{f}: not valid YAML ({exc})") from None
            if (
                not isinstance(enc, dict)
                or sorted(enc.values()) != list(range(len(enc)))
                or not all(isinstance(k, str) for k in enc)
            ):
                raise DatasetError(f"{f}: expected {{class name: id}} with ids 0..N-1, got {enc!r}")
            return [name for name, _ in sorted(enc.items(), key=lambda kv: kv[1])]
    return list(default)


KNOWN_CLASSES = {"glas": ["benign", "malignant"], "camelyon16": ["normal", "tumor"]}


def check_kind(folds: Path, found: list[str], expected: list[str]) -> None:
    """DatasetError when the folds' encoding names other classes than the ingester's (GlaS folds given to
    `ingest camelyon16`, or the reverse), naming the command that matches them."""
    if sorted(found) == sorted(expected):
        return
    other = next((k for k, names in KNOWN_CLASSES.items() if sorted(names) == sorted(found)), None)
    hint = f"; these are {other} folds: use `pixelcam data ingest {other}`" if other else ""
    raise DatasetError(
        f"{folds}: the folds' encoding.yaml names the classes {found}, this ingester expects {expected}{hint}"
    )


def _rows(path: Path, ncols: int) -> list[tuple[str, list[str]]]:
    """(where, fields) of every non-empty line; `where` is `file:line`."""
    out = []
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (a Windows editor's) is not a path
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        parts = [p.strip() for p in raw.split(",")]
        if len(parts) < ncols:
            raise DatasetError(f"{path}:{line}: expected {ncols} comma-separated fields, got {raw!r}")
        out.append((f"{path}:{line}", parts))
    return out


def _split(root: Path, fold: Path, split: str, class_names: list[str]):
    ids_file = fold / "image_ids.txt"
    for name in ("image_ids.txt", "class_labels.txt"):
        if not (fold / name).is_file():
            raise DatasetError(f"{fold / name}: not found; expected it in the fold folder")
    labels = {p[0]: (where, p[1]) for where, p in _rows(fold / "class_labels.txt", 2)}
    masks: dict[str, tuple[str, str]] = {}  # image path -> (where in localization.txt, mask path)
    if (fold / "localization.txt").is_file():
        masks = {p[0]: (w, p[1]) for w, p in _rows(fold / "localization.txt", 1) if len(p) > 1}
    sizes: dict[str, tuple[int, int, str]] = {}
    size_file = next((fold / n for n in SIZE_FILES if (fold / n).is_file()), None)
    if size_file is not None:
        for where, p in _rows(size_file, 3):
            try:
                sizes[p[0]] = (int(p[1]), int(p[2]), where)
            except ValueError:
                raise DatasetError(f"{where}: width/height must be integers, got {p[1:3]}") from None
    entries = []
    for where, (path, *_rest) in _rows(ids_file, 1):
        if path not in labels:
            raise DatasetError(f"{where}: {path} has no line in {fold / 'class_labels.txt'}")
        lwhere, raw = labels[path]
        label = int(raw) if raw.isascii() and raw.isdecimal() and int(raw) < len(class_names) else -1
        if label < 0:
            expected = ", ".join(f"{i} ({n})" for i, n in enumerate(class_names))
            raise DatasetError(f"{lwhere}: unknown label {raw!r}; expected {expected}")
        image_id, image = listed_path(root, path, where)
        mwhere, mask = masks.get(path, (where, ""))
        mask_path = None if mask.lower() in NO_MASK else listed_path(root, mask, mwhere, "mask")[1]
        entries.append(Entry(image_id, image, mask_path, label, split, where, mask_where=mwhere))
    return entries, sizes


def read_folds(
    root: Path,
    folds: Path,
    default_classes: list[str],
    roi_classes: list[str] | None = None,
    seed: int = 0,
    valpx_per_class: int = 3,
    valcl_fraction: float = 0.2,
) -> Folds:
    """Every split of a fold directory as entries (valpx images marked as also in valcl), the declared sizes
    and the notes on carved splits. `roi_classes`: the classes whose images carry an ROI (default: all); an
    image of another class is all background, so it counts as pixel-labelled without a mask."""
    if not folds.is_dir():
        raise DatasetError(f"{folds}: fold directory not found")
    class_names = read_encoding(folds, default_classes)
    check_kind(folds, class_names, default_classes)
    roi_labels = {i for i, n in enumerate(class_names) if roi_classes is None or n in roi_classes}
    present = {s: (folds / s).is_dir() for s in FOLD_SPLITS}
    if not present["test"]:
        raise DatasetError(
            f"{folds / 'test'}: fold folder missing; expected {list(FOLD_SPLITS)} (test at least)"
        )
    if not present["train"] and not (present["valcl"] and present["valpx"]):
        raise DatasetError(
            f"{folds / 'train'}: fold folder missing; without train/ the folds need valcl/ and valpx/ as well"
        )
    per_split, sizes = {}, {}
    for s in (s for s in FOLD_SPLITS if present[s]):
        per_split[s], found = _split(root, folds / s, s, class_names)
        sizes.update(found)
    notes = []
    if "train" not in per_split:  # e.g. an excerpt, or a target domain used for evaluation only
        per_split["train"] = []
        notes.append(f"{folds}: no train/ in the folds; the dataset has no training split (evaluation only)")
    rng = np.random.default_rng(seed)
    if "valcl" not in per_split:
        per_split["train"], per_split["valcl"] = _carve(per_split["train"], valcl_fraction, rng, class_names)
        notes.append(
            f"{folds}: no valcl/ in the folds; carved {len(per_split['valcl'])} images "
            f"({valcl_fraction:.0%} of train per class) from train with --seed {seed}"
        )
    valcl_ids = {e.image_id for e in per_split["valcl"]}
    if "valpx" in per_split:
        valpx = [replace(e, also_valcl=e.image_id in valcl_ids) for e in per_split["valpx"]]
    else:
        valpx = _draw_valpx(per_split["valcl"], valpx_per_class, rng, class_names, roi_labels, folds)
        notes.append(
            f"{folds}: no valpx/ in the folds; drew {valpx_per_class} pixel-labelled images per class "
            f"from valcl with --seed {seed} (they stay in valcl, as in the protocol)"
        )
    in_valpx = {e.image_id for e in valpx}
    entries = per_split["train"] + [e for e in per_split["valcl"] if e.image_id not in in_valpx]
    entries += valpx + per_split["test"]
    check_unique(entries)  # valpx ⊂ valcl is the protocol; any other repeat is a leak between splits
    require_masks(entries, roi_labels)
    return Folds(entries, sizes, class_names, notes)


def _carve(
    entries: list[Entry], fraction: float, rng, class_names: list[str]
) -> tuple[list[Entry], list[Entry]]:
    """(train kept, valcl carved): a stratified `fraction` of each class, both in listed order."""
    carved: set[str] = set()
    for label in range(len(class_names)):
        pool = [e for e in entries if e.label == label]
        n = max(1, round(len(pool) * fraction)) if pool else 0
        carved |= {pool[i].image_id for i in rng.choice(len(pool), n, replace=False).tolist()} if n else set()
    keep = [e for e in entries if e.image_id not in carved]
    return keep, [replace(e, split="valcl") for e in entries if e.image_id in carved]


def _draw_valpx(
    valcl: list[Entry], per_class: int, rng, class_names: list[str], roi_labels: set[int], folds: Path
) -> list[Entry]:
    """`per_class` pixel-labelled valcl images per class (an image of a class without ROI always is one)."""
    out = []
    for label, name in enumerate(class_names):
        pool = [e for e in valcl if e.label == label and (e.mask_path is not None or label not in roi_labels)]
        if len(pool) < per_class:
            raise DatasetError(
                f"{folds / 'valcl'}: {len(pool)} usable {name} images, need {per_class} to draw valpx "
                f"(the folds have no valpx/)"
            )
        for i in sorted(rng.choice(len(pool), per_class, replace=False).tolist()):
            out.append(replace(pool[i], split="valpx", also_valcl=True))
    return out
