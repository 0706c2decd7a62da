"""A study's selected models in MLflow: logged by the study (its OOD step), registered on request
(`pixelcam models register STUDY --alias ALIAS`).

Each tuned model of the study (one per source and method label: the checkpoint the study selected, B-LOC or
B-CL as its spec says) becomes an MLflow 3 LoggedModel in the study's experiment: the checkpoint directory as
its artifacts with an `input_example.json` (the tensor a model takes), its training config as params, its
test PxAP / CL per target (mean over seeds) as metrics, linked to its training run (which holds the
selection metrics). Each is registered as `<study>-<method>-<source>` (or `<prefix>-...`) and the alias
points at that version, so `predict`,
`evaluate` and `train pixelcam --pseudo-labels-from` take `models:/NAME@ALIAS`. Registering again adds no
version for a model already registered; it moves the alias. A study written before the study logged its
models gets them logged when they are registered.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pixelcam.errors import StudyError
from pixelcam.logged_models import RegisteredModel, log_checkpoint_model, logged_checkpoints, register_model
from pixelcam.results import ExperimentRecord
from pixelcam.storage import Location
from pixelcam.study.context import SPEC_FILE, STATE_FILE, StudyState
from pixelcam.study.spec import StudySpec, load_stored_spec
from pixelcam.tracking import ensure_experiment, flat_params, pair_metric, tracking_uri

__all__ = ["log_study_models", "register_study_models"]


def log_study_models(
    spec: StudySpec,
    state: StudyState,
    ood: dict[str, Any],
    uri: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, str]:
    """{experiment key: LoggedModel id} of every tuned model with a checkpoint, logged once each (a model
    already logged from its checkpoint is found again, not logged twice)."""
    experiment_id = ensure_experiment(spec.mlflow_experiment(), uri)
    known = logged_checkpoints(experiment_id, uri)  # listed once: found again without copying a file
    out = {}
    for key, rec in state.experiments().items():
        if rec.status != "ok" or not rec.checkpoint:
            log(f"  {key}: no model to log ({rec.reason or 'no selected checkpoint'})")
            continue
        if rec.checkpoint in known:
            out[key] = known[rec.checkpoint]
            continue
        source, method = key.split("__", 1)
        test = _test_metrics(ood, method, source)
        out[key] = _log_model(rec, source, method, spec.name, experiment_id, test, uri, known)
    return out


def register_study_models(
    study: str, alias: str, prefix: str | None = None, log: Callable[[str], None] = print
) -> list[RegisteredModel]:
    """Register every tuned model of the study at `study` (a directory or URI) with `alias` (logging those
    the study has not logged); returns them."""
    d = Location(study)
    if not ((d / SPEC_FILE).is_file() and (d / STATE_FILE).is_file()):
        raise StudyError(f"{d}: not a study directory ({SPEC_FILE} and {STATE_FILE} expected)")
    spec = load_stored_spec(d / SPEC_FILE)  # a study on an object store too
    state = StudyState(d / STATE_FILE)
    ood = (d / "ood.json").read_json() if (d / "ood.json").is_file() else {"rows": []}
    log(f"registering the tuned models of {d} in {tracking_uri()} with alias {alias!r}:")
    models = log_study_models(spec, state, ood, log=log)
    if not models:
        raise StudyError(f"{d}: no tuned model with a checkpoint to register (has the study finished?)")
    records = state.experiments()
    done = []
    for key, model_id in models.items():
        source, method = key.split("__", 1)
        run_id = records[key].mlflow_run_id
        reg = register_model(model_id, f"{prefix or spec.name}-{method}-{source}", alias, run_id)
        log(f"  {reg.uri}  (version {reg.version}, logged model {reg.model_id})")
        done.append(reg)
    return done


def _test_metrics(ood: dict[str, Any], method: str, source: str) -> dict[str, float]:
    """Test PxAP and CL of (method, source) per target, mean over seeds, from `ood.json`."""
    out = {}
    for row in ood.get("rows", []):
        if row.get("method") == method and row.get("source") == source:
            for metric, cells in row.get("cells", {}).items():
                for target, cell in cells.items():
                    if cell.get("mean") is not None:
                        out[pair_metric(f"test_{metric}", source, target)] = float(cell["mean"])
    return out


def _log_model(
    rec: ExperimentRecord,
    source: str,
    method: str,
    study: str,
    experiment_id: str,
    test: dict[str, float],
    uri: str | None,
    known: dict[str, str],
) -> str:
    """The LoggedModel of `rec`'s checkpoint (copied to a local directory first: it may be in a bucket)."""
    checkpoint = Location(rec.checkpoint)
    meta = (checkpoint / "meta.json").read_json()
    with tempfile.TemporaryDirectory(prefix="pixelcam-model-") as tmp:
        local = Path(tmp)
        for f, rel in checkpoint.walk_files():
            (local / rel).parent.mkdir(parents=True, exist_ok=True)
            (local / rel).write_bytes(f.read_bytes())
        (local / "input_example.json").write_text(json.dumps(_input_example(meta), indent=1))
        return log_checkpoint_model(
            local,
            name=f"{study}-{method}-{source}",
            experiment_id=experiment_id,
            checkpoint_uri=checkpoint.uri,
            source_run_id=rec.mlflow_run_id,
            params=flat_params(meta.get("config", {})),
            metrics=test,  # the selection metrics are on the training run already (selected_*)
            tags={"study": study, "method": method, "source": source, "backbone": str(meta.get("backbone"))},
            uri=uri,
            known=known,
        )


def _input_example(meta: dict[str, Any]) -> dict[str, Any]:
    """What the model takes: an RGB batch at its evaluation size, normalised as its run normalised."""
    side = int(meta.get("eval_input_size") or meta.get("resize") or 224)
    return {
        "shape": [1, 3, side, side],
        "dtype": "float32",
        "layout": "NCHW, RGB in [0, 1] then normalised",
        "normalization": meta.get("normalization"),
        "class_names": meta.get("class_names"),
        "outputs": "logits (1, classes) and the localization map (1, H, W) in [0, 1]",
    }
