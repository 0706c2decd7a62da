"""A slide's zoomable viewer: one HTML page over Deep Zoom layers, drawn by OpenSeadragon.

OpenSeadragon (BSD-3-Clause, `vendor/openseadragon/LICENSE.txt`) is vendored and copied beside the page, and
the layers' descriptors are inline, so the page works from disk with no network and requests nothing outside
its own folder. Layers: the slide, the heatmap (opacity slider, colour bar) and outline layers (the contours
at tau, the ground truth when a mask was given), each toggled by a checkbox.
"""

from __future__ import annotations

import html
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VENDOR = Path(__file__).parent / "vendor" / "openseadragon"
SCRIPT = "openseadragon.min.js"
PAGE = "viewer.html"


@dataclass(frozen=True)
class Layer:
    """One tiled image: its name, inline DZI descriptor, width in viewport units (1 = the slide's width),
    opacity and whether a checkbox toggles it."""

    name: str
    label: str
    descriptor: dict[str, Any]
    width: float = 1.0
    opacity: float = 1.0
    toggle: bool = False


STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; height: 100vh; display: flex; flex-direction: column; }
header { padding: 8px 12px; display: flex; gap: 18px; align-items: center; flex-wrap: wrap; }
.note { font-size: 12px; color: #555; }
#viewer { width: 100%; flex: 1; min-height: 300px; background: #f4f4f4; }
.bar { width: 160px; height: 12px; background: linear-gradient(to right, #00007f, #0000ff, #007fff,
  #00ffff, #7fff7f, #ffff00, #ff7f00, #ff0000, #7f0000); border: 1px solid #999; }
.scale { display: flex; align-items: center; gap: 4px; font-size: 12px; }
"""

SCRIPT_BODY = """
const layers = JSON.parse(document.getElementById("layers").textContent);
const viewer = OpenSeadragon({
  // the canvas drawer: WebGL cannot take images read from file:// as textures (the page opens from disk)
  id: "viewer", drawer: "canvas", showNavigationControl: false, maxZoomPixelRatio: 4,
  tileSources: layers.map(l => ({tileSource: l.descriptor, x: 0, y: 0, width: l.width, opacity: l.opacity})),
});
window.pixelcamViewer = viewer;
const item = name => viewer.world.getItemAt(layers.findIndex(l => l.name === name));
document.getElementById("opacity").addEventListener("input", e => {
  item("heatmap").setOpacity(e.target.value / 100);
});
for (const box of document.querySelectorAll("input[data-layer]")) {
  box.addEventListener("change", e => item(e.target.dataset.layer).setOpacity(e.target.checked ? 1 : 0));
}
"""


def viewer_page(title: str, layers: list[Layer], note: str) -> str:
    """The viewer's HTML: header with the opacity slider, colour bar and layer checkboxes, then the viewer."""
    boxes = "".join(
        f'<label><input type="checkbox" data-layer="{html.escape(lay.name)}" checked> '
        f"{html.escape(lay.label)}</label>"
        for lay in layers
        if lay.toggle
    )
    data = json.dumps([lay.__dict__ for lay in layers]).replace("</", "<\\/")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><header><strong>{html.escape(title)}</strong>"
        '<label>heatmap opacity <input type="range" id="opacity" min="0" max="100" value="60"></label>'
        '<span class="scale">0 <span class="bar"></span> 1</span>'
        f'{boxes}<span class="note">{html.escape(note)}</span></header><div id="viewer"></div>'
        f'<script type="application/json" id="layers">{data}</script>'
        f'<script src="{SCRIPT}"></script><script>{SCRIPT_BODY}</script></body></html>'
    )


def write_viewer(directory: Path, title: str, layers: list[Layer], note: str) -> Path:
    """Write `directory/viewer.html` and OpenSeadragon (with its licence) beside it; returns the page."""
    for name in (SCRIPT, "LICENSE.txt"):
        shutil.copyfile(VENDOR / name, directory / (name if name == SCRIPT else "openseadragon-LICENSE.txt"))
    page = directory / PAGE
    page.write_text(viewer_page(title, layers, note))
    return page
