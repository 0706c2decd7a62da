"""The staining-robustness results of a study as tables: which (domain, reference) pairs a model is swept on,
and the sweep reports as rows, CSV and printed text (the step that runs the sweeps is `steps/stain.py`)."""

from __future__ import annotations

import csv
import io
from typing import Any

from pixelcam.study.spec import StudySpec


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
