"""The OOD matrix of a study: PxAP and CL of every selected model on every target's test split, as a dict
(`ood.json`), CSV and a printed table with the paper's published values beside ours."""

from __future__ import annotations

import csv
import io
from typing import Any

from pixelcam.metrics.aggregate import METRICS, near_chance
from pixelcam.metrics.stats import mean_ci
from pixelcam.study.context import experiment_key, seed_key
from pixelcam.study.spec import StudySpec


def ood_matrix(spec: StudySpec, state: dict[str, Any], targets: list[str]) -> dict[str, Any]:
    """{"targets": [...], "rows": [{"method", "source", "status", "pxap": {tgt: v}, "cl": {tgt: v}, ...}]}.

    With `seeds`, a row also has `seeds` ({metric: {tgt: [value per seed]}}, in the order of `seeds_run`)
    and `ci` ({metric: {tgt: {"mean", "half_width", "n"}}}: mean ± 95 % CI over seeds)."""
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
                row["valcl_cl"] = exp["metrics"]["valcl_cl"]
                if spec.seeds:
                    _add_seeds(row, spec, state, source, method)
            rows.append(row)
    return {"study": spec.name, "targets": list(targets), "rows": rows}


def chance_warnings(matrix: dict[str, Any], num_classes: dict[str, int]) -> list[str]:
    """`near_chance` for every selected model of the matrix (`num_classes` per source domain)."""
    out = []
    for row in matrix["rows"]:
        if "valcl_cl" in row:
            w = near_chance(row["method"], row["source"], row["valcl_cl"], num_classes[row["source"]])
            if w:
                out.append(w)
    return out


def _add_seeds(row: dict[str, Any], spec: StudySpec, state: dict[str, Any], source: str, method: str) -> None:
    reports = {}
    for seed in spec.seeds:
        key = experiment_key(source, method) if seed == spec.seed else seed_key(source, method, seed)
        if key in state["evaluations"]:
            reports[seed] = state["evaluations"][key]
    row["seeds_run"] = sorted(reports)
    row["seeds"] = {m: {} for m in METRICS}
    row["ci"] = {m: {} for m in METRICS}
    for m in METRICS:
        for t in row[m]:
            values = [reports[s]["results"][t][m] for s in row["seeds_run"] if t in reports[s]["results"]]
            row["seeds"][m][t] = values
            ci = mean_ci(values)
            row["ci"][m][t] = {"mean": ci.mean, "half_width": ci.half_width if ci.n >= 2 else None, "n": ci.n}


def cell_value(row: dict[str, Any], metric: str, target: str) -> str | None:
    """A table cell: mean ± 95 % CI over seeds when the row has >= 2 seeds, else the single value."""
    ci = row.get("ci", {}).get(metric, {}).get(target)
    if ci is not None and ci["n"] >= 2:
        return f"{ci['mean']:.2f} ± {ci['half_width']:.2f}"
    v = row.get(metric, {}).get(target)
    return None if v is None else f"{v:.2f}"


def ood_csv(matrix: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "method",
            "source",
            "target",
            "pxap",
            "cl",
            "status",
            "seeds",
            "pxap_mean",
            "pxap_ci95",
            "cl_mean",
            "cl_ci95",
        ]
    )
    for row in matrix["rows"]:
        for t in matrix["targets"]:
            ci = {m: row.get("ci", {}).get(m, {}).get(t, {}) for m in METRICS}
            w.writerow(
                [
                    row["method"],
                    row["source"],
                    t,
                    _num(row.get("pxap", {}).get(t)),
                    _num(row.get("cl", {}).get(t)),
                    row["status"],
                    " ".join(map(str, row.get("seeds_run", []))),
                    _num(ci["pxap"].get("mean")),
                    _num(ci["pxap"].get("half_width")),
                    _num(ci["cl"].get("mean")),
                    _num(ci["cl"].get("half_width")),
                ]
            )
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None or v != v else f"{v:.4f}"


def format_ood(matrix: dict[str, Any], published: dict[str, Any] | None = None) -> str:
    """The OOD matrix as text: one block per metric, rows (method, source), columns targets (* = in-domain).

    `published` ({method: {"pxap": {"src->tgt": v}, "cl": {...}}}) adds the paper's value in brackets.
    """
    targets = matrix["targets"]
    seeds = max((len(r.get("seeds_run", [])) for r in matrix["rows"]), default=0)
    over = f"mean ± 95 % CI over {seeds} seeds; " if seeds >= 2 else ""
    width = 26 if seeds >= 2 else 20
    lines = []
    for metric, title in (("pxap", "PxAP"), ("cl", "CL")):
        lines.append(f"{title} on test splits ({over}rows: model <- source; columns: target; * in-domain)")
        lines.append(f"{'':34}" + "".join(f"{t:>{width}}" for t in targets))
        for row in matrix["rows"]:
            label = f"{row['method']} <- {row['source']}"
            cells = []
            for t in targets:
                v = cell_value(row, metric, t)
                cell = "failed" if v is None else f"{v}{'*' if t == row['source'] else ''}"
                pub = (published or {}).get(row["method"], {}).get(metric, {}).get(f"{row['source']}->{t}")
                if pub is not None and v is not None:
                    cell += f" [{pub}]"
                cells.append(f"{cell:>{width}}")
            lines.append(f"{label:34}" + "".join(cells))
        lines.append("")
    if any(isinstance(v, dict) for v in (published or {}).values()):
        cite = f" ({published['source']})" if isinstance(published.get("source"), str) else ""
        lines.append(f"[x]: the paper's published value for the same pairing{cite}")
    return "\n".join(lines)
