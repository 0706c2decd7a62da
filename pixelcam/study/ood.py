"""The OOD matrix of a study: PxAP and CL of every selected model on every target's test split, aggregated
over the seeds it was trained with (`metrics.aggregate`), as a typed record (`ood.json`), a long-format CSV
and a printed table with the paper's published values beside ours."""

from __future__ import annotations

import csv
import io
from typing import Any

from pixelcam.metrics.aggregate import METRICS, aggregate, cell_text, near_chance
from pixelcam.results import PRIOR_LABEL, EvaluationReport, OODCell, OODMatrix, OODRow
from pixelcam.study.context import StudyState, experiment_key, seed_key
from pixelcam.study.spec import StudySpec

CHANCE_MARK = "!"  # after a row label: the model is near chance on valcl CL for at least one seed


def ood_matrix(
    spec: StudySpec, state: StudyState, targets: list[str], num_classes: dict[str, int]
) -> OODMatrix:
    """Every (source, model label) of the study as a row; each cell aggregates the model's evaluations
    over every seed run (`seeds`, else the study's own seed). `num_classes` per source domain."""
    evaluated = {
        (source, method): seed_evaluations(spec, state, source, method)
        for source in spec.sources
        for method in spec.all_methods()
    }
    rows = [_row(spec, state, s, m, num_classes[s], runs) for (s, m), runs in evaluated.items()]
    priors = {  # every model is evaluated on the same test splits: any report gives a target's prior
        t: r.roi_prior
        for runs in evaluated.values()
        for report, _ in runs.values()
        for t, r in report.results.items()
        if r.roi_prior is not None
    }
    return OODMatrix(
        study=spec.name,
        targets=list(targets),
        seeds=list(spec.seeds) or [spec.seed],
        rows=rows,
        warnings=[w for row in rows for w in row.near_chance],
        roi_prior={t: priors[t] for t in targets if t in priors},
    )


def seed_evaluations(
    spec: StudySpec, state: StudyState, source: str, method: str
) -> dict[int, tuple[EvaluationReport, dict[str, float]]]:
    """{seed: (test report, the run's selection metrics)} of every seed of a model that was evaluated."""
    out = {}
    for seed in spec.seeds or [spec.seed]:
        if seed == spec.seed:
            key, rec = experiment_key(source, method), state.experiment(experiment_key(source, method))
        else:
            key = seed_key(source, method, seed)
            rec = state.seed_run(key)
        report = state.evaluation(key)
        if report is not None and rec is not None:
            out[seed] = (report, rec.metrics)
    return out


def _row(
    spec: StudySpec,
    state: StudyState,
    source: str,
    method: str,
    classes: int,
    runs: dict[int, tuple[EvaluationReport, dict[str, float]]],
) -> OODRow:
    """One model's row from its seeds' evaluations (`seed_evaluations`)."""
    exp = state.experiment(experiment_key(source, method))
    status = exp.status if exp is not None else "missing"
    if exp is None or not runs:
        return OODRow(method=method, source=source, status=status)
    targets = dict.fromkeys(t for report, _ in runs.values() for t in report.results)
    cells = {m: {t: _cell(runs, m, t, spec.seed) for t in targets} for m in METRICS}
    warnings = [
        near_chance(method, source, metrics["valcl_cl"], classes, seed if len(runs) > 1 else None)
        for seed, (_, metrics) in runs.items()
    ]
    return OODRow(
        method=method,
        source=source,
        status=status,
        cells=cells,
        params=exp.params,
        valpx_pxap=exp.metrics.get("valpx_pxap"),
        valcl_cl=exp.metrics.get("valcl_cl"),
        near_chance=[w for w in warnings if w],
    )


def _cell(
    runs: dict[int, tuple[EvaluationReport, dict[str, float]]], metric: str, target: str, study_seed: int
) -> OODCell:
    seeds = [s for s, (report, _) in runs.items() if target in report.results]
    values = [getattr(runs[s][0].results[target], metric) for s in seeds]
    agg = aggregate(values)
    own = values[seeds.index(study_seed)] if study_seed in seeds else None
    return OODCell(
        seeds=seeds, values=values, mean=agg.mean, half_width=agg.half_width, n=agg.n, study_seed_value=own
    )


def cell_value(row: OODRow, metric: str, target: str) -> str | None:
    """A table cell: mean ± 95 % CI over seeds (the value alone with one seed); None without one."""
    cell = row.cell(metric, target)
    return None if cell is None else cell_text(cell.mean, cell.half_width, cell.n)


CSV_COLUMNS = (
    "method",
    "source",
    "target",
    "seed",
    "status",
    "pxap",
    "cl",
    "pxap_ci95",
    "cl_ci95",
    "n",
    "near_chance",
)


def ood_csv(matrix: OODMatrix) -> str:
    """Long format: one row per (model, target, seed), then an aggregate row (`seed` = `all`) with the mean
    of each metric, its 95 % CI half-width and n; a model without results has one row with its status."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for row in matrix.rows:
        flag = "yes" if row.near_chance else ""
        for t in matrix.targets:
            px, cl = row.cell("pxap", t), row.cell("cl", t)
            if px is None or cl is None:
                w.writerow([row.method, row.source, t, "", row.status, "", "", "", "", 0, flag])
                continue
            for seed, p, c in zip(px.seeds, px.values, cl.values):
                w.writerow([row.method, row.source, t, seed, row.status, _num(p), _num(c), "", "", 1, flag])
            w.writerow(
                [row.method, row.source, t, "all", row.status, _num(px.mean), _num(cl.mean)]
                + [_num(px.half_width), _num(cl.half_width), px.n, flag]
            )
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None or v != v else f"{v:.4f}"


def format_ood(matrix: OODMatrix, published: dict[str, Any] | None = None) -> str:
    """The OOD matrix as text: one block per metric, rows (method, source), columns targets (* = in-domain,
    `!` after a label: near chance on some seed). `published` ({method: {"pxap": {"src->tgt": v}, ...}})
    adds the paper's value in brackets."""
    seeds = matrix.max_seeds()
    over = f"mean ± 95 % CI over {seeds} seeds; " if seeds >= 2 else ""
    width = 26 if seeds >= 2 else 20
    lines = []
    for metric, title in (("pxap", "PxAP"), ("cl", "CL")):
        lines.append(f"{title} on test splits ({over}rows: model <- source; columns: target; * in-domain)")
        lines.append(f"{'':34}" + "".join(f"{t:>{width}}" for t in matrix.targets))
        for row in matrix.rows:
            label = f"{row.method} <- {row.source}" + (f" {CHANCE_MARK}" if row.near_chance else "")
            cells = [f"{_cell_text(row, metric, t, published):>{width}}" for t in matrix.targets]
            lines.append(f"{label:34}" + "".join(cells))
        if metric == "pxap" and matrix.roi_prior:
            prior = [f"{matrix.prior_text(t):>{width}}" for t in matrix.targets]
            lines.append(f"{PRIOR_LABEL:34}" + "".join(prior))
        lines.append("")
    if any(isinstance(v, dict) for v in (published or {}).values()):
        cite = f" ({published['source']})" if isinstance(published.get("source"), str) else ""
        lines.append(f"[x]: the paper's published value for the same pairing{cite}")
    if matrix.warnings:
        lines.append(f"{CHANCE_MARK}: near chance; " + "; ".join(matrix.warnings))
    return "\n".join(lines)


def _cell_text(row: OODRow, metric: str, target: str, published: dict[str, Any] | None) -> str:
    v = cell_value(row, metric, target)
    if v is None:
        return "failed" if row.status != "ok" or not row.cells else "-"
    cell = f"{v}{'*' if target == row.source else ''}"
    pub = (published or {}).get(row.method, {}).get(metric, {}).get(f"{row.source}->{target}")
    return cell + (f" [{pub}]" if pub is not None else "")
