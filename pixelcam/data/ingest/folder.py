"""A generic folder: images (and optional masks) under `--root` and a CSV with columns
`image,label,split[,mask]` (paths relative to root; label = a class name or its index)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from pixelcam.data.errors import DatasetError
from pixelcam.data.ingest.common import Entry, check_unique, listed_path, require_masks
from pixelcam.data.schema import SPLITS


def folder_entries(root: Path, labels_csv: Path, class_names: Sequence[str]) -> list[Entry]:
    """Entries of a labels CSV; every bad row is reported with its file and line."""
    if not labels_csv.is_file():
        raise DatasetError(f"{labels_csv}: labels CSV not found")
    try:
        text = labels_csv.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{labels_csv}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the CSV as UTF-8"
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in (reader.fieldnames or [])]
    missing = [c for c in ("image", "label", "split") if c not in fields]
    if missing:
        raise DatasetError(f"{labels_csv}: columns {missing} missing; expected image,label,split[,mask]")
    entries = []
    for line, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        where = f"{labels_csv}:{line}"
        raw = row["label"]
        if raw in class_names:
            label = list(class_names).index(raw)
        elif raw.isascii() and raw.isdecimal() and int(raw) < len(class_names):
            label = int(raw)
        else:
            raise DatasetError(
                f"{where}: unknown label {raw!r}; expected one of {list(class_names)} "
                f"or 0..{len(class_names) - 1}"
            )
        if row["split"] not in SPLITS:
            raise DatasetError(f"{where}: unknown split {row['split']!r}; expected one of {list(SPLITS)}")
        if not row["image"]:
            raise DatasetError(f"{where}: empty image path")
        image_id, image = listed_path(root, row["image"], where)
        mask = listed_path(root, row["mask"], where, "mask")[1] if row.get("mask") else None
        entries.append(Entry(image_id, image, mask, label, row["split"], where))
    if not entries:
        raise DatasetError(f"{labels_csv}: no image rows under the header; expected one row per image")
    check_unique(entries)
    require_masks(entries)
    return entries
