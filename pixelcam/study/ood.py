"""The OOD matrix of a study: PxAP and CL of every selected model on every target's test split, as a dict
(`ood.json`), CSV and a printed table with the paper's published values beside ours."""

from __future__ import annotations

import csv
import io
from typing import Any

from pixelcam.study.context import experiment_key
from pixelcam.study.spec import StudySpec


def ood_matrix(spec: StudySpec, state: dict[str, Any], targets: list[str]) -> dict[str, Any]:
    """{"targets": [...], "rows": [{"method", "source", "status", "pxap": {tgt: v}, "cl": {tgt: v}, ...}]}."""
    rows = []
    for source in spec.sources:
        for method in spec.all_methods():
            key = experiment_key(source, method)
            exp = state["experiments"].get(key, {})
            rep = state["evaluations"].get(key)
            row: dict[str, Any] = {"method": method, "source": source, "status": exp.get("status", "missing")}
            if rep is not None:
                row["pxap"] = {t: r["pxap"] for t, r in rep["results"].items()}
                row["cl"] = {t: r["cl"] for t, r in rep["results"].items()}
                row["params"] = exp.get("params", {})
                row["valpx_pxap"] = exp["metrics"]["valpx_pxap"]
            rows.append(row)
    return {"study": spec.name, "targets": list(targets), "rows": rows}


def ood_csv(matrix: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method", "source", "target", "pxap", "cl", "status"])
    for row in matrix["rows"]:
        for t in matrix["targets"]:
            w.writerow(
                [
                    row["method"],
                    row["source"],
                    t,
                    _num(row.get("pxap", {}).get(t)),
                    _num(row.get("cl", {}).get(t)),
                    row["status"],
                ]
            )
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


def format_ood(matrix: dict[str, Any], published: dict[str, Any] | None = None) -> str:
    """The OOD matrix as text: one block per metric, rows (method, source), columns targets (* = in-domain).

    `published` ({method: {"pxap": {"src->tgt": v}, "cl": {...}}}) adds the paper's value in brackets.
    """
    targets = matrix["targets"]
    lines = []
    for metric, title in (("pxap", "PxAP"), ("cl", "CL")):
        lines.append(f"{title} on test splits (rows: model <- source; columns: target; * in-domain)")
        lines.append(f"{'':34}" + "".join(f"{t:>20}" for t in targets))
        for row in matrix["rows"]:
            label = f"{row['method']} <- {row['source']}"
            cells = []
            for t in targets:
                v = row.get(metric, {}).get(t)
                cell = "failed" if v is None else f"{v:.2f}{'*' if t == row['source'] else ''}"
                pub = (published or {}).get(row["method"], {}).get(metric, {}).get(f"{row['source']}->{t}")
                if pub is not None and v is not None:
                    cell += f" [{pub}]"
                cells.append(f"{cell:>20}")
            lines.append(f"{label:34}" + "".join(cells))
        lines.append("")
    if any(isinstance(v, dict) for v in (published or {}).values()):
        cite = f" ({published['source']})" if isinstance(published.get("source"), str) else ""
        lines.append(f"[x]: the paper's published value for the same pairing{cite}")
    return "\n".join(lines)
