"""The study's staining-robustness step: every selected model swept over stain-shift levels on its source's
(or the listed domains') test split, recorded in `stain.json`/`stain.csv`, MLflow and a printed table."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pixelcam.data.reader import open_dataset
from pixelcam.study.spec import StainShift, StudySpec


def sweep_plan(spec: StudySpec, domains_in_data: list[str], source: str) -> list[tuple[str, str]]:
    """(domain to shift, reference domain) pairs for models trained on `source`."""
    st = spec.stain_shift
    assert st is not None
    out = []
    for domain in st.domains or [source]:
        ref = st.reference if st.reference and st.reference != domain else None
        if ref is None:
            others = [d for d in domains_in_data if d != domain]
            if not others:
                raise ValueError(f"stain_shift: no reference domain other than {domain!r} in the dataset")
            ref = others[0]
        out.append((domain, ref))
    return out


def run_stain_step(study: Any, source: str, method: str) -> list[dict[str, Any]] | None:
    """Sweep one selected model (skipped when it has no checkpoint or was swept before)."""
    from pixelcam.study.runner import experiment_key
    from pixelcam.train.stain_sweep import stain_sweep

    spec: StudySpec = study.spec
    st: StainShift = spec.stain_shift
    key = experiment_key(source, method)
    done = study.state.setdefault("stain", {})
    if key in done:
        return done[key]
    rec = study.state["experiments"].get(key, {})
    if not rec.get("checkpoint"):
        return None
    ds = open_dataset(spec.data)
    reports = []
    for domain, ref in sweep_plan(spec, ds.domains, source):
        rep = stain_sweep(
            rec["checkpoint"], spec.data, domain, ref, st.method, st.levels, st.max_strength, st.fit_images
        )
        rep["label"] = method
        reports.append(rep)
    _log_mlflow(study, source, method, reports)
    done[key] = reports
    study.save()
    return reports


def _log_mlflow(study: Any, source: str, method: str, reports: list[dict[str, Any]]) -> None:
    from pixelcam.train.tracking import RunLogger, _client, start_run, tracking_uri

    parent = study.state.get("parent_run_id")
    if not parent:
        return
    uri = tracking_uri()
    exp = _client(uri).get_run(parent).info.experiment_id
    tags = {"kind": "stain_sweep", "study": study.spec.name, "method": method, "source": source}
    params = {"stain": study.spec.stain_shift.method, "levels": str(study.spec.stain_shift.levels)}
    run_id = start_run(exp, f"stain-{source}__{method}", tags, params, uri, parent_run_id=parent)
    log = RunLogger(run_id, uri)
    for rep in reports:
        pair = f"{source}__to__{rep['domain']}"
        for row in rep["rows"]:
            log.metrics(
                {
                    f"stain_pxap__{pair}": row["pxap"],
                    f"stain_cl__{pair}": row["cl"],
                    f"stain_delta_e__{pair}": row["delta_e"],
                },
                step=row["level"],
            )
    log.text(json.dumps(reports, indent=2), "stain_sweep.json")
    log.finish()


def stain_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat list of every sweep report in the study state, in run order."""
    return [rep for reports in state.get("stain", {}).values() for rep in reports]


def stain_csv(reports: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        ["method", "source", "domain", "reference", "stain", "level", "strength", "delta_e", "pxap", "cl"]
    )
    for rep in reports:
        for r in rep["rows"]:
            w.writerow(
                [rep["label"], rep["source"], rep["domain"], rep["reference"], rep["stain"], r["level"]]
                + [f"{r[k]:.4f}" for k in ("strength", "delta_e", "pxap", "cl")]
            )
    return buf.getvalue()


def format_stain(reports: list[dict[str, Any]]) -> str:
    """One block per metric: rows (model <- source on domain), columns levels 0..L (dE in the header)."""
    if not reports:
        return ""
    levels = [r["level"] for r in reports[0]["rows"]]
    rep0 = reports[0]
    lines = [
        f"Stain shift ({rep0['stain']}) toward the reference domain's stain, test splits; level 0 = unshifted"
    ]
    for metric, title in (("pxap", "PxAP"), ("cl", "CL")):
        lines.append(f"{title} by level")
        lines.append(f"{'':44}" + "".join(f"{lv:>7}" for lv in levels))
        for rep in reports:
            label = f"{rep['label']} <- {rep['source']} on {rep['domain']}"
            lines.append(f"{label:44}" + "".join(f"{r[metric]:>7.1f}" for r in rep["rows"]))
        lines.append("")
    de = "  ".join(f"{r['level']}:{r['delta_e']:.1f}" for r in rep0["rows"])
    lines.append(
        f"mean colour difference dE (CIE76) per level, {rep0['domain']} -> {rep0['reference']}: {de}"
    )
    return "\n".join(lines)
