"""Assemble the dashboard as one self-contained HTML page: inline CSS, PNGs as data: URIs, no scripts and no
network access needed to view it."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2433}
header{background:#1d2433;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;font-size:13px;opacity:.85}nav{padding:8px 28px;background:#e8ebf0;font-size:13px}
nav a{margin-right:14px;color:#1d4ed8;text-decoration:none}main{padding:8px 28px 40px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:14px 20px;
margin:16px 0}
section h2{font-size:17px;margin:4px 0 6px}p.what{font-size:13px;color:#4b5563;margin:0 0 10px}
img{max-width:100%;height:auto;display:block;margin:8px 0}p.empty{font-style:italic;color:#6b7280}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #d1d5db;padding:3px 8px;
text-align:right}th{background:#f3f4f6}td.l,th.l{text-align:left}.win{color:#047857;font-weight:600}.loss{color:#b91c1c;font-weight:600}
"""


@dataclass
class Section:
    id: str
    title: str
    what: str
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (alt text, PNG bytes)
    tables: list[str] = field(default_factory=list)  # HTML of tables built with `table()`
    empty: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, relative URL)


def table(header: list[str], rows: list[list[object]], classes: list[str] | None = None) -> str:
    """An HTML table; cells are escaped, floats printed with 2 decimals; `classes` per row (e.g. 'win')."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "-" if v != v else f"{v:.2f}"
        return html.escape("-" if v is None else str(v))

    head = "".join(f'<th class="{"l" if i == 0 else ""}">{html.escape(h)}</th>' for i, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        cls = (classes or [""] * len(rows))[r]
        tds = "".join(f'<td class="{"l" if i == 0 else ""}">{cell(v)}</td>' for i, v in enumerate(row))
        body.append(f'<tr class="{cls}">{tds}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render(title: str, subtitle: list[str], sections: list[Section]) -> str:
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    parts = []
    for s in sections:
        inner = [f"<h2>{html.escape(s.title)}</h2>", f'<p class="what">{html.escape(s.what)}</p>']
        inner.extend(f'<p><a href="{html.escape(url)}">{html.escape(text)}</a></p>' for text, url in s.links)
        for alt, png in s.images:
            data = base64.b64encode(png).decode("ascii")
            inner.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        if not s.images and (s.empty or not s.tables):  # a panel without its figure says why
            inner.append(f'<p class="empty">{html.escape(s.empty or "nothing recorded for this study")}</p>')
        inner.extend(s.tables)
        parts.append(f'<section id="{s.id}">{"".join(inner)}</section>')
    sub = "".join(f"<p>{html.escape(line)}</p>" for line in subtitle)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1>{sub}</header><nav>{nav}</nav>"
        f"<main>{''.join(parts)}</main></body></html>"
    )
