"""Single-process evaluation of a checkpoint on the `test` split of one or more domains.

PxAP over the whole split (maps of the true class vs the masks at the checkpoint's `eval_size`), CL, and
TP*/FN*/TN*/FP* at the tau chosen on the source's valpx and stored with the checkpoint. Baseline maps are
min-max normalised per image, PixelCAM's are used as is (recorded as `normalization`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pixelcam.data.reader import PatchDataset, as_dataset
from pixelcam.errors import CheckpointError
from pixelcam.metrics import confusion_rates
from pixelcam.metrics.aggregate import chance_warning
from pixelcam.models.precision import precision_of
from pixelcam.results import DomainResult, EvaluationReport, Gallery, ImageDetails
from pixelcam.runtime.checkpoint import LoadedCheckpoint, input_size_of, load_checkpoint
from pixelcam.runtime.data import check_splits, iter_split
from pixelcam.runtime.eval_loop import evaluate_batches

COLUMNS = ("pxap", "cl", "tp_star", "fn_star", "tn_star", "fp_star")


def evaluate(
    checkpoint: str | Path,
    data: PatchDataset | str | Path,
    domains: Sequence[str] | None = None,
    split: str = "test",
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    num_bins: int = 1000,
    precision: str | None = None,
) -> EvaluationReport:
    """PxAP, CL and the confusion rates at tau of the checkpoint on each domain's `split`, with what produced
    them. `precision`: autocast dtype (default: the run's own, from its config)."""
    report, _ = evaluate_with_details(
        checkpoint, data, domains, split, batch_size, device, num_bins, precision, per_class=None
    )
    return report


def evaluate_with_details(
    checkpoint: str | Path,
    data: PatchDataset | str | Path,
    domains: Sequence[str] | None = None,
    split: str = "test",
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    num_bins: int = 1000,
    precision: str | None = None,
    per_class: int | None = 2,
) -> tuple[EvaluationReport, dict[str, tuple[ImageDetails, Gallery]]]:
    """(`evaluate`'s report, {domain: (details, gallery)}) from one model pass per image. `per_class` None or
    0: no details (an empty dict)."""
    from pixelcam.evaluation.details import DetailsCollector

    ck = load_checkpoint(checkpoint)
    config = ck.meta.get("config", {})
    num = precision_of({**config, **({"precision": precision} if precision else {})}, device)
    model = num.model(ck.build_model())
    ds = as_dataset(data)
    domains = list(domains) if domains else ds.domains
    tau = float(ck.meta["tau"])
    warnings = []
    trained_on = ck.meta.get("dataset_hash")
    if trained_on and trained_on != ds.hash:
        warnings.append(
            f"{ds.location} (hash {ds.hash[:12]}) is not the dataset {ck.path} was trained and selected on "
            f"(hash {trained_on[:12]}): tau and any in-domain reading come from other data"
        )
    results, details = {}, {}
    for domain in domains:
        check_splits(ds, domain, (split,), where="target")
        names = ds.class_names(domain)
        if len(names) != len(ck.meta["class_names"]):
            raise CheckpointError(
                f"{ck.path}: trained on classes {ck.meta['class_names']}, but domain {domain!r} of "
                f"{ds.location} has {len(names)}: {names}"
            )
        collector = (
            DetailsCollector(model, domain, split, eval_size_of(ck.meta), per_class, num_bins)
            if per_class
            else None
        )
        px, acc = evaluate_batches(
            model,
            iter_split(ds, domain, split, input_size_of(ck.meta), batch_size),
            device,
            num_bins,
            eval_size=eval_size_of(ck.meta),
            precision=num,
            observe=collector,
        )
        if collector is not None:
            details[domain] = collector.result()
        rates = {k: v for k, v in confusion_rates(px, tau).as_dict().items() if k != "tau"}
        results[domain] = DomainResult(
            pxap=px.compute(), cl=acc.compute(), images=int(acc.total), roi_prior=px.prior(), **rates
        )
    warnings += chance_warnings(ck, results)
    report = EvaluationReport(
        checkpoint=ck.path.uri,
        method=ck.method,
        backbone=ck.meta["backbone"],
        source=ck.meta["source"],
        split=split,
        tau=tau,
        normalization=ck.meta.get("normalization", "minmax"),
        eval_size=eval_size_of(ck.meta),
        precision=num.name,
        channels_last=num.channels_last,
        dataset_hash=ds.hash,
        results=results,
        warnings=warnings,
    )
    return report, details


def chance_warnings(ck: LoadedCheckpoint, results: dict[str, DomainResult]) -> list[str]:
    """Near-chance flags of the evaluated model: its selection's valcl CL (from the checkpoint) and its CL
    on every evaluated domain."""
    who = f"{ck.method} <- {ck.meta['source']}"
    classes = len(ck.meta["class_names"])
    found = [
        chance_warning(who, f"CL on {domain}", r.cl, classes) for domain, r in results.items() if r.images
    ]
    valcl = ck.meta.get("metrics", {}).get("valcl_cl")
    if valcl is not None:
        found.insert(0, chance_warning(who, "selected valcl CL", float(valcl), classes))
    return [w for w in found if w]


def image_details(
    checkpoint: str | Path,
    data: PatchDataset | str | Path,
    domain: str,
    split: str = "test",
    per_class: int = 2,
    batch_size: int = 32,
    num_bins: int = 1000,
) -> tuple[ImageDetails, Gallery]:
    """(details, gallery) of one checkpoint on one domain's split (`evaluation.details`)."""
    _, details = evaluate_with_details(
        checkpoint, data, [domain], split, batch_size, num_bins=num_bins, per_class=per_class
    )
    return details[domain]


def eval_size_of(meta: dict[str, Any]) -> int | str:
    """The PxAP resolution a checkpoint was selected at (runs before `eval_size` existed: native)."""
    return meta.get("config", {}).get("eval_size", "native")


def format_table(report: EvaluationReport) -> str:
    """A plain-text table: one row per domain, PxAP, CL and the confusion rates at tau."""
    head = (
        f"{report.method} ({report.backbone}) trained on {report.source}, "
        f"{report.split} split, tau={report.tau:.3f}"
    )
    cols = ("domain", "PxAP", "CL", "TP*", "FN*", "TN*", "FP*", "images", "ROI prior")
    lines = [head, "  ".join(f"{c:>12}" for c in cols)]
    for domain, r in report.results.items():
        prior = "-" if r.roi_prior is None else f"{r.roi_prior:.2f}"
        vals = [domain] + [f"{getattr(r, k):.2f}" for k in COLUMNS] + [str(r.images), prior]
        lines.append("  ".join(f"{v:>12}" for v in vals))
    return "\n".join(lines)
