"""The viewer page: its layers inline (no request for a descriptor), a checkbox per toggled layer, the
vendored OpenSeadragon beside it with its licence, nothing fetched from elsewhere."""

import json
import re

from pixelcam.report.viewer import SCRIPT, Layer, viewer_page, write_viewer


def _layers() -> list[Layer]:
    desc = {"Image": {"Url": "slide_files/", "Format": "jpeg", "Size": {"Width": "10", "Height": "8"}}}
    return [
        Layer("slide", "slide", desc),
        Layer("heatmap", "heatmap", desc, 0.5, 0.6),
        Layer("roi", "ground </script> truth", desc, 0.5, toggle=True),
    ]


def test_the_page_carries_its_layers_inline_and_a_checkbox_per_toggle():
    page = viewer_page("s1", _layers(), "a note")
    data = re.search(r'<script type="application/json" id="layers">(.*?)</script>', page, re.S).group(1)
    layers = json.loads(data)  # the label's "</script>" is escaped: the JSON block is not cut short
    assert [(x["name"], x["width"], x["opacity"]) for x in layers] == [
        ("slide", 1.0, 1.0),
        ("heatmap", 0.5, 0.6),
        ("roi", 0.5, 1.0),
    ]
    assert page.count('data-layer="') == 1 and 'data-layer="roi"' in page
    assert 'type="range" id="opacity"' in page and "a note" in page
    assert re.findall(r'src="([^"]+)"', page) == [SCRIPT] and "http" not in page.replace("http://schemas", "")


def test_write_viewer_puts_openseadragon_and_its_licence_beside_the_page(tmp_path):
    page = write_viewer(tmp_path, "s1", _layers(), "")
    assert page == tmp_path / "viewer.html"
    assert (tmp_path / SCRIPT).stat().st_size > 100_000
    assert (
        "Redistribution and use in source and binary forms"
        in (tmp_path / "openseadragon-LICENSE.txt").read_text()
    )
