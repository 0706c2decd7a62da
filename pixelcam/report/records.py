"""Read a study back from MLflow: its parent run, evaluation runs (metrics, per-image details, galleries),
trial runs (params and best B-LOC score) and stain-sweep runs. The dashboard is drawn from this alone."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelcam.errors import ReportError
from pixelcam.metrics.aggregate import Aggregate, aggregate, near_chance
from pixelcam.models.factory import list_methods, method_class
from pixelcam.results import Gallery, ImageDetails, OODMatrix
from pixelcam.storage import Location
from pixelcam.tracking import RunKind, child_runs, client, parse_pair_metric, tracking_uri

SHARED_PARAMS = ("lr", "lr_decay")  # searched for every method; a method adds its own `train_params`


@dataclass
class Evaluation:
    method: str
    source: str
    run_id: str
    pxap: dict[str, float]  # target -> PxAP
    cl: dict[str, float]
    details: dict[str, ImageDetails] = field(default_factory=dict)  # target -> per-image details
    gallery: dict[str, Gallery] = field(default_factory=dict)  # target -> gallery arrays
    seed: int | None = None  # set when the study retrains per seed (`seeds`)
    valcl_cl: float | None = None  # the selected model's valcl CL (near-chance warning)
    chance_cl: float | None = None  # 100 / number of classes of its source


@dataclass
class Trial:
    key: str  # experiment key <source>__<method label>
    method: str  # method label (cam, pixelcam-cam, ...)
    source: str
    trial_id: str
    params: dict[str, float | str]
    score: float  # best valpx PxAP reached from the run's `select_from_epoch` on (what B-LOC selects from)
    epochs: int
    start_time: int
    status: str


@dataclass
class StudyRecords:
    name: str
    parent_run_id: str
    sources: list[str]
    methods: list[str]  # baselines, in spec order
    targets: list[str]
    evaluations: list[Evaluation]
    trials: list[Trial]
    stain: list[dict[str, Any]]
    tracking_uri: str
    seed: int | None = None  # the study's own seed (its tuned models)
    # every seed's evaluation (`seeds` in the spec); `evaluations` holds the tuned models' only
    seeded: list[Evaluation] = field(default_factory=list)
    # the OOD step's matrix (`ood.json` on the parent run): every table cell and warning is read from it
    ood: OODMatrix | None = None
    environment: dict[str, Any] = field(default_factory=dict)  # the fingerprint recorded with the study

    def cell(self, method: str, source: str, metric: str, target: str) -> Aggregate | None:
        """`metric` of one model on `target` over its seeds, as the OOD step aggregated it (the console table,
        `ood.csv` and the parent run's metrics hold the same); before that step has run, aggregated here from
        the evaluation runs by the same function."""
        if self.ood is not None:
            row = next((r for r in self.ood.rows if r.method == method and r.source == source), None)
            c = row.cell(metric, target) if row is not None else None
            return None if c is None else Aggregate(c.mean, c.half_width, c.n)
        return self.over_seeds(method, source, metric, target)

    def chance_warnings(self, method: str | None = None, source: str | None = None) -> list[str]:
        """Near-chance warnings over every seed of every model, or of one model (the OOD step's, else
        computed here by the same function)."""
        if self.ood is not None:
            rows = [r for r in self.ood.rows if method in (None, r.method) and source in (None, r.source)]
            return [w for r in rows for w in r.near_chance]
        multi = len({e.seed for e in self.seeded}) > 1
        evals = [
            e
            for e in (self.seeded or self.evaluations)
            if method in (None, e.method) and source in (None, e.source) and e.valcl_cl is not None
        ]
        found = (
            near_chance(
                e.method, e.source, e.valcl_cl, round(100 / (e.chance_cl or 50.0)), e.seed if multi else None
            )
            for e in evals
        )
        return [w for w in found if w]

    def seeds_of(self) -> int:
        """The most seeds any model was evaluated with (as aggregated by the OOD step, when it has run)."""
        if self.ood is not None:
            return self.ood.max_seeds()
        if not self.evaluations:
            return 0
        return max(len(self.seed_evaluations(e.method, e.source)) for e in self.evaluations)

    def evaluation(self, method: str, source: str) -> Evaluation | None:
        """The tuned model's evaluation (the run of the study's seed)."""
        return next((e for e in self.evaluations if e.method == method and e.source == source), None)

    def over_seeds(self, method: str, source: str, metric: str, target: str) -> Aggregate | None:
        """`metric` ("pxap" or "cl") on `target` of one model: mean ± 95 % CI over its seeds' evaluations
        (n = 1 without `seeds`), None when no evaluation has it."""
        values = [
            getattr(e, metric)[target]
            for e in self.seed_evaluations(method, source)
            if target in getattr(e, metric)
        ]
        return aggregate(values) if values else None

    def seed_evaluations(self, method: str, source: str) -> list[Evaluation]:
        """Every seed's evaluation of one model, by seed (the tuned model alone without `seeds`)."""
        found = [e for e in self.seeded if e.method == method and e.source == source]
        if not found:
            return [e for e in [self.evaluation(method, source)] if e is not None]
        return sorted(found, key=lambda e: -1 if e.seed is None else e.seed)

    def labels(self) -> list[str]:
        """Every model label with an evaluation, baselines first, in spec order."""
        seen = [e.method for e in self.evaluations]
        return list(dict.fromkeys(m for m in self.methods if m in seen)) + list(
            dict.fromkeys(m for m in seen if m not in self.methods)
        )


def parent_run_of(study: str | Location) -> str:
    """A study directory (its state.json; a path or a URI) or an MLflow run id -> the parent run id."""
    p = Location(study)
    if (p / "state.json").is_file():
        run_id = (p / "state.json").read_json().get("parent_run_id")
        if not run_id:
            raise ReportError(f"{p / 'state.json'}: the study has no MLflow parent run yet")
        return run_id
    if p.exists():
        raise ReportError(f"{p}: not a study directory (state.json expected)")
    return str(study)


def _artifact_json(store: Any, run_id: str, path: str, tmp: Path) -> Any:
    return json.loads(Path(store.download_artifacts(run_id, path, str(tmp))).read_text())


def _artifact_or(store: Any, run_id: str, path: str, tmp: Path, default: Any) -> Any:
    """An artifact's JSON, or `default` when the run has none (a run recorded before it was logged)."""
    from mlflow.exceptions import MlflowException

    try:
        return _artifact_json(store, run_id, path, tmp)
    except (MlflowException, OSError):
        return default


def _parent_run(store: Any, parent_id: str, uri: str) -> Any:
    """The study's parent run; ReportError when it is missing or not a study's."""
    from mlflow.exceptions import MlflowException

    try:
        parent = store.get_run(parent_id)
    except MlflowException as exc:
        raise ReportError(f"no MLflow run {parent_id!r} in {uri}: {exc.message}") from None
    if parent.data.tags.get("kind") != RunKind.STUDY:
        raise ReportError(
            f"MLflow run {parent_id} is not a study's parent run (tag kind={parent.data.tags.get('kind')})"
        )
    return parent


def _evaluation(store: Any, run: Any, tmp: Path) -> Evaluation:
    """An evaluation run: PxAP and CL per target, its per-image details and gallery."""
    tags, rid = run.data.tags, run.info.run_id
    by_metric: dict[str, dict[str, float]] = {"pxap": {}, "cl": {}}
    for k, v in run.data.metrics.items():
        name = parse_pair_metric(k, ("pxap", "cl"))
        if name is not None:
            by_metric[name.metric][name.target] = v
    ev = Evaluation(tags["method"], tags["source"], rid, by_metric["pxap"], by_metric["cl"])
    ev.seed = int(tags["seed"]) if "seed" in tags else None
    ev.valcl_cl = run.data.metrics.get("selected_valcl_cl")
    ev.chance_cl = run.data.metrics.get("chance_cl")
    for tgt in ev.pxap:
        raw = _artifact_or(store, rid, f"details/{tgt}.json", tmp, None)
        if raw is None:  # an evaluation from before details were recorded: no bars/gallery for it
            continue
        ev.details[tgt] = ImageDetails.from_json(raw)
        npz = store.download_artifacts(rid, f"gallery/{tgt}.npz", str(tmp))
        ev.gallery[tgt] = Gallery.from_bytes(Path(npz).read_bytes())
    return ev


def _trial(store: Any, run: Any) -> Trial | None:
    """A trial run with its searched parameters and best valpx PxAP (None before its first epoch)."""
    tags, rid = run.data.tags, run.info.run_id
    start = int(float(run.data.params.get("select_from_epoch", 0)))
    hist = [m for m in store.get_metric_history(rid, "valpx_pxap") if m.step >= start]
    if not hist:
        return None
    names = SHARED_PARAMS + method_class(tags["method"]).train_params
    params = {k: _number_or_text(run.data.params[k]) for k in names if k in run.data.params}
    return Trial(
        key=tags.get("experiment_key", ""),
        method=tags.get("method_label", tags.get("method", "")),
        source=tags.get("source", ""),
        trial_id=tags.get("trial_id", rid[:8]),
        params=params,
        score=max(m.value for m in hist),
        epochs=len({m.step for m in hist}),
        start_time=run.info.start_time,
        status=run.info.status,
    )


def _ood_matrix(raw: Any, parent_id: str) -> OODMatrix | None:
    """The parent run's `ood.json` as a typed matrix (None before the OOD step); ReportError if malformed."""
    from pydantic import ValidationError

    if raw is None:
        return None
    try:
        return OODMatrix.from_json(raw)
    except ValidationError as exc:
        raise ReportError(f"MLflow run {parent_id}: artifact ood.json is not an OOD matrix: {exc}") from None


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def load_records(study: str | Location, uri: str | None = None) -> StudyRecords:
    """Everything the dashboard shows, read from the study's MLflow parent run and its children."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file otherwise
    uri = uri or tracking_uri()
    store = client(uri)
    parent_id = parent_run_of(study)
    parent = _parent_run(store, parent_id, uri)
    params = parent.data.params
    sources = params.get("sources", "").split(",")
    all_labels = params.get("methods", "").split(",")
    baselines = [m for m in all_labels if m in list_methods(kind="baseline")]
    evaluations, trials, stain = [], [], []
    with tempfile.TemporaryDirectory() as tmpdir:
        for run in child_runs(parent_id, uri):
            kind = run.data.tags.get("kind")
            if kind == RunKind.EVALUATION:
                evaluations.append(_evaluation(store, run, Path(tmpdir)))
            elif kind == RunKind.TRIAL:
                trials += [t for t in [_trial(store, run)] if t is not None]
            elif kind == RunKind.STAIN_SWEEP:
                stain += _artifact_or(store, run.info.run_id, "stain_sweep.json", Path(tmpdir), [])
    targets = [t for e in evaluations for t in e.pxap]
    order = {label: i for i, label in enumerate(all_labels)}
    evaluations.sort(
        key=lambda e: (sources.index(e.source) if e.source in sources else 99, order.get(e.method, 99))
    )
    trials.sort(key=lambda t: t.start_time)
    study_seed = int(params["seed"]) if "seed" in params else None
    seeded = [e for e in evaluations if e.seed is not None]
    evaluations = [e for e in evaluations if e.seed is None or e.seed == study_seed]
    stain.sort(key=lambda r: (r["source"], order.get(r.get("label", ""), 99), r["domain"]))
    with tempfile.TemporaryDirectory() as tmpdir:
        raw = _artifact_or(store, parent_id, "ood.json", Path(tmpdir), None)
        environment = _artifact_or(store, parent_id, "environment.json", Path(tmpdir), {})
    ood = _ood_matrix(raw, parent_id)
    return StudyRecords(
        name=parent.data.tags.get("study", parent.info.run_name),
        parent_run_id=parent_id,
        sources=sources,
        methods=baselines,
        targets=sorted(
            set(targets), key=lambda t: (t not in sources, sources.index(t) if t in sources else t)
        ),
        evaluations=evaluations,
        trials=trials,
        stain=stain,
        tracking_uri=uri,
        seed=study_seed,
        seeded=seeded,
        ood=ood,
        environment=environment,
    )
