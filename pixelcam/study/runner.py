"""Run a study: the loop over the pipeline of steps (`study/steps/`), inside the study's MLflow parent run.

The study directory (`<storage>/<name>`: a local directory, or a URI such as `s3://bucket/studies/NAME`,
through the same code) holds `spec.yaml`, `state.json` (what each step produced, the MLflow parent run id),
`tune/<experiment>` (Tune's state, restorable), `train/<experiment>/trial-<id>` (Train runs) and the results
(`ood.json`, `ood.csv`, `stain.*`, `dashboard.html`). `resume_study(dir)` runs the pipeline again: every step
skips the work the state records as done, and unfinished Tune experiments are restored.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import yaml

from pixelcam.config import ConfigError
from pixelcam.data.reader import PatchDataset, open_dataset
from pixelcam.environment import fingerprint
from pixelcam.errors import StudyError, Terminated, mark_kept
from pixelcam.results import OODMatrix
from pixelcam.runtime.cluster import init_ray
from pixelcam.storage import Location
from pixelcam.storage.lock import exclusive
from pixelcam.study.context import SPEC_FILE, STATE_FILE, StudyContext, StudyState
from pixelcam.study.resources import check_resources, retry_note
from pixelcam.study.spec import StudySpec, load_spec, load_stored_spec
from pixelcam.study.steps import PIPELINE
from pixelcam.tracking import RunKind, RunLogger, start_run, tracking_uri
from pixelcam.validation import read_yaml

__all__ = ["StudyError", "resume_study", "run_study"]

ENVIRONMENT_FILE = "environment.json"  # the study's `environment.fingerprint()`


DATASET_HASH = "dataset_hash"  # state.json: the content hash of the data the study started on


def open_study_dataset(spec: StudySpec) -> tuple[PatchDataset, list[str]]:
    """The study's dataset, opened once for the whole study, and its targets; every source and target must
    be one of its domains (DatasetError names the known ones)."""
    ds = open_dataset(spec.data)
    targets = spec.targets or ds.domains
    for d in list(spec.sources) + list(targets):
        ds.class_names(d)
    return ds, list(targets)


def open_parent_run(ctx: StudyContext) -> RunLogger:
    """The study's MLflow parent run: created (with the spec, manifest and code version) or reopened."""
    if ctx.parent_run_id:
        log = RunLogger(ctx.parent_run_id, ctx.uri)
        log.reopen()
        return log
    spec = ctx.spec
    params = {
        "sources": ",".join(spec.sources),
        "methods": ",".join(spec.all_methods()),
        "trials": str(spec.budget.trials),
        "epochs": str(spec.budget.epochs),
        "seed": str(spec.seed),
        "selection": spec.selection,
    }
    tags = {"study": spec.name, "dataset_hash": ctx.dataset.hash}
    log = start_run(
        RunKind.STUDY,
        f"study-{spec.name}",
        experiment=spec.mlflow_experiment(),
        tags=tags,
        params=params,
        uri=ctx.uri,
    )
    log.text((ctx.dir / SPEC_FILE).read_text(), "study_spec.yaml")
    log.text(json.dumps(ctx.dataset.manifest, indent=2, sort_keys=True), "dataset_manifest.json")
    env = fingerprint() | {"seeds": list(spec.seeds) or [spec.seed]}
    (ctx.dir / ENVIRONMENT_FILE).write_json(env)  # beside the results it produced
    log.text(json.dumps(env, indent=2, sort_keys=True), ENVIRONMENT_FILE)
    log.tags({"git_commit": str(env["git_commit"]), "cpu": env["cpu"], "torch": str(env["torch"])})
    ctx.state.set_parent_run(log.run_id)
    return log


def run_pipeline(ctx: StudyContext) -> OODMatrix | None:
    """Every step of `PIPELINE` in order inside the parent run (FAILED if a step raises); returns the OOD
    matrix."""
    parent = open_parent_run(ctx)
    try:
        for i, step in enumerate(PIPELINE, 1):
            skip = step.skip_reason(ctx)
            ctx.log(f"== step {i}/{len(PIPELINE)}: {step.name}" + (f" (skipped: {skip})" if skip else ""))
            missing = [k for k in step.requires if not ctx.state.has(k)]
            if missing:
                raise StudyError(f"study step {step.name!r} needs {missing}, which no earlier step produced")
            started = time.perf_counter()
            if not skip:
                step.run(ctx)
            ctx.state.step_done(step.name, step.requires, step.produces, time.perf_counter() - started)
    except (KeyboardInterrupt, Terminated) as exc:
        parent.finish("KILLED")
        mark_kept(exc, f"finished trials and steps are kept; continue with: pixelcam study resume {ctx.dir}")
        raise
    except BaseException:
        parent.finish("FAILED")
        raise
    parent.finish()
    return ctx.outputs.get("ood")


def _context(
    spec: StudySpec,
    directory: Location,
    ds: PatchDataset,
    targets: list[str],
    log: Callable[[str], None],
    **kw: Any,
) -> StudyContext:
    import ray

    verbose = kw.pop("verbose", False)
    logs = init_ray(quiet=not verbose)
    if logs and not verbose:
        log(f"Ray's own logs (workers, Train, Tune, Data): {logs}  (--verbose shows them here)")
    concurrency = check_resources(spec, ray.cluster_resources())
    if note := retry_note(spec):
        log(note)
    state = StudyState(directory / STATE_FILE)
    return StudyContext(spec, directory, state, ds, targets, tracking_uri(), log, concurrency, **kw)


def run_study(
    path: str,
    storage: str | None = None,
    early_stopping: bool = True,
    log: Callable[[str], None] = print,
    data: str | None = None,
    verbose: bool = False,
) -> tuple[Location, OODMatrix | None, StudySpec]:
    """`pixelcam study run FILE`: a new study directory `<storage>/<name>` (`data` overrides the spec's);
    returns (directory, OOD matrix, resolved spec)."""
    spec = load_spec(path)
    if storage:
        spec.storage = storage
    if data:
        spec.data = data
    with exclusive(Location(spec.storage) / spec.name, "study"):  # one writer: a second run fails at once
        directory = study_directory(spec)
        spec.data = Location(spec.data).uri  # a local path made absolute; a shared URI stays as given
        ds, targets = open_study_dataset(spec)  # fail before anything is written
        ctx = _context(spec, directory, ds, targets, log, early_stopping=early_stopping, verbose=verbose)
        directory.mkdir()
        raw = read_yaml(path, "study spec")
        raw["data"] = spec.data
        raw["storage"] = directory.parent.uri
        (directory / SPEC_FILE).write_text(yaml.safe_dump(raw, sort_keys=False))
        ctx.state.mark(DATASET_HASH, ds.hash)  # a resume on other data is refused (check_same_data)
        ctx.state.save()
        return directory, run_pipeline(ctx), spec


def resume_study(
    directory: str, log: Callable[[str], None] = print, verbose: bool = False
) -> tuple[Location, OODMatrix | None, StudySpec]:
    """`pixelcam study resume DIR`: continue a study from its directory (a path or its URI); returns what
    `run_study` does."""
    d = open_study_directory(directory)
    try:
        spec = load_stored_spec(d / SPEC_FILE)
    except ConfigError as exc:
        raise StudyError(str(exc)) from exc
    with exclusive(d, "study"):  # a study resumed twice at once: the second fails at once
        spec.storage = d.parent.uri
        ds, targets = open_study_dataset(spec)
        check_same_data(d, spec, ds)
        return d, run_pipeline(_context(spec, d, ds, targets, log, verbose=verbose)), spec


def check_same_data(directory: Location, spec: StudySpec, ds: PatchDataset) -> None:
    """StudyError when the study's data changed since it started (regenerated, re-ingested): its finished
    steps and the rest would come from two datasets. Studies from before the hash was recorded pass."""
    started = (directory / STATE_FILE).read_json().get(DATASET_HASH)
    if started is not None and started != ds.hash:
        raise StudyError(
            f"{directory}: the study started on dataset {started[:12]}, but {spec.data} is now "
            f"{ds.hash[:12]} (regenerated or changed); its results would mix two datasets: move {directory} "
            f"away to run the study again, or restore the data it started on"
        )


def study_directory(spec: StudySpec) -> Location:
    """Where a new study works: `<storage>/<name>`, a local directory or a URI (s3://, gs://); StudyError
    when a study of that name exists there, StorageError when its object store does not answer."""
    storage = Location(spec.storage)
    storage.check()
    directory = storage / spec.name
    if (directory / STATE_FILE).exists():
        raise StudyError(f"{directory} exists: `pixelcam study resume {directory}` continues it")
    return directory


def open_study_directory(directory: str) -> Location:
    """The study at `directory` (a path or its URI); StudyError unless it holds a study this user may
    resume."""
    d = Location(directory.rstrip("/") if "://" in directory else directory)
    d.check()
    if not ((d / SPEC_FILE).is_file() and (d / STATE_FILE).is_file()):
        raise StudyError(f"{d}: not a study directory ({SPEC_FILE} and {STATE_FILE} expected)")
    if d.is_remote:  # resuming unpickles Tune's state from the bucket: a bucket trusted like code
        return d
    # Resuming unpickles Ray Tune's state (tuner.pkl) from this directory: it must be trusted like code.
    owner, me = d.local.stat().st_uid, os.getuid()
    if owner != me:
        raise StudyError(
            f"{d}: owned by uid {owner}, not by you (uid {me}); resuming loads pickled Tune state from "
            f"it, so only a study directory you own (trusted like code) is resumed"
        )
    return d
