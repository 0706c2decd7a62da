"""The slide dashboard: one self-contained HTML page over a `pixelcam predict` output directory.

A summary table of every slide (done or failed, with the reason), then a section per slide: its overview
(thumbnail with the detected tissue outlined | the heatmap over the tissue), its top-scoring tiles with their
maps, and its figures (tiles, tissue, scores, slide-level PxAP against a mask when one was given).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pixelcam.errors import ReportError
from pixelcam.report.html import Section, render, table
from pixelcam.storage.atomic import write_text_atomic

SUMMARY = "predict.json"  # written by pixelcam.evaluation.slides.predict


def section_id(name: str) -> str:
    """The HTML id of a slide's section (`slide-` + the name, other characters as `-`)."""
    return "slide-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _fmt(value: Any, pct: bool = False) -> Any:
    if value is None:
        return None
    return float(value) * (100.0 if pct else 1.0) if isinstance(value, (int, float)) else value


def build_sections(directory: Path, report: dict[str, Any], link_base: str = ".") -> list[Section]:
    """The dashboard's sections; `link_base`: the predict directory as seen from the page (its viewers'
    links are relative to it, so a page written elsewhere still reaches them)."""
    rows, classes = [], []
    for name, s in sorted(report["slides"].items()):
        if "error" in s:
            rows.append([name, "failed", None, None, None, None, None, s["error"][:160]])
            classes.append("loss")
            continue
        rows.append(
            [
                name,
                f"level {s['level']}",
                s["tiles"],
                _fmt(s["tissue_fraction"], pct=True),
                _fmt(s.get("score_mean")),
                _fmt(s.get("positive_tile_fraction"), pct=True),
                _fmt(s.get("pxap")),
                "" if s.get("pxap") is None else f"ROI prior {s['roi_prior']:.2f}",
            ]
        )
        classes.append("")
    score = report.get("class_names", ["?"])[-1] if report.get("class_names") else "score"
    header = [
        "slide",
        "analysed at",
        "tiles",
        "tissue %",
        f"mean p({score})",
        "tiles p>=0.5 %",
        "PxAP",
        "note",
    ]
    sections = [
        Section(
            "slides",
            "Slides",
            f"{report['method']} from {report['checkpoint']}: {report['tiles']} tiles"
            + (f" at {report['tiles_per_s']:.1f} tiles/s" if report.get("tiles_per_s") else "")
            + (
                f" ({report['steady_tiles_per_s']:.1f} tiles/s at steady state)"
                if report.get("steady_tiles_per_s")
                else ""
            )
            + f"; {len(report['failed'])} slide(s) failed.",
            tables=[table(header, rows, classes)],
        )
    ]
    for name, s in sorted(report["slides"].items()):
        if "error" in s:
            continue
        d = directory / name
        images = [
            (f"{name}: tissue outline | heatmap overlay", (d / "overview.png").read_bytes()),
        ]
        if (d / "top_tiles.png").exists():
            images.append((f"{name}: top-scoring tiles and their maps", (d / "top_tiles.png").read_bytes()))
        hm = s["heatmap"]
        what = (
            f"{s['path']}: level {s['level']} ({s['level_size'][0]}x{s['level_size'][1]} px"
            + (f", {s['mpp']:.3g} um/px" if s.get("mpp") else "")
            + f"); heatmap {hm['size'][0]}x{hm['size'][1]} ({hm['level0_per_pixel']:g} slide px per pixel); "
            f"maps of the {s['map_class']} class, {s['normalization']} normalisation. Left: the detected "
            "tissue; right: the map over it (jet: blue 0, red 1). Below: the tiles with the highest "
            f"p({s.get('score_class')}) (top row) and their maps."
        )
        links = (
            [(f"{name}: zoomable viewer (slide, heatmap, contours)", f"{link_base}/{name}/{s['viewer']}")]
            if s.get("viewer")
            else []
        )
        sections.append(Section(section_id(name), name, what, images=images, links=links))
    return sections


def build_slides_dashboard(directory: str | Path, out: str | Path) -> Path:
    """Write the slide dashboard of a `pixelcam predict` output `directory` to `out` (atomically)."""
    directory, out = Path(directory), Path(out)
    path = directory / SUMMARY
    if not path.is_file():
        raise ReportError(f"{directory}: no {SUMMARY} (not a `pixelcam predict` output directory)")
    try:
        report = json.loads(path.read_text())
        base = Path(os.path.relpath(directory.resolve(), out.resolve().parent)).as_posix()
        sections = build_sections(directory, report, base)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"{path}: not a readable predict summary ({type(exc).__name__}: {exc})") from None
    ok = len(report["slides"]) - len(report["failed"])
    page = render(
        f"pixelcam slides: {directory.name}",
        [f"{ok} of {len(report['slides'])} slides", f"checkpoint {report['checkpoint']}"],
        sections,
    )
    write_text_atomic(out, page)
    return out
