"""Checkpoints: a directory with `model.pt` (weights), `optim.pt` (optimizer + LR schedule) and `meta.json`
(written last: a checkpoint is complete when it has one).

Tensors are loaded with `torch.load(weights_only=True)` (no pickled code runs); everything else (method,
backbone, class names, epoch, metrics, tau, the resolved config, the dataset hash) is JSON. A run directory
(`<storage>/<name>`, a `Location`: local or on an object store) holds the `epoch_NNN` checkpoints and
`selected.json`, which points at the checkpoint chosen by the run's selection criterion.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pixelcam.errors import CheckpointError, StorageError, first_line
from pixelcam.logged_models import download_model, is_model_uri
from pixelcam.models.base import WSOLModel
from pixelcam.models.factory import create_wsol_model, model_kwargs
from pixelcam.results import SelectedCheckpoint
from pixelcam.storage import Location
from pixelcam.storage.atomic import write_json_atomic

MODEL_FILE = "model.pt"
OPTIM_FILE = "optim.pt"
META_FILE = "meta.json"
SELECTED_FILE = "selected.json"


@dataclass
class LoadedCheckpoint:
    path: Location
    meta: dict[str, Any]
    model_state: dict[str, torch.Tensor]

    @property
    def method(self) -> str:
        return self.meta["method"]

    def build_model(self) -> WSOLModel:
        """The model with its weights loaded (in eval mode, on CPU)."""
        m = self.meta
        try:
            model = create_wsol_model(
                m["method"],
                m["backbone"],
                num_classes=len(m["class_names"]),
                **model_kwargs(m["method"], m.get("model_kwargs", m)),  # older checkpoints: keys at top level
            )
            model.load_state_dict(self.model_state)
        except KeyError as exc:
            raise CheckpointError(f"{self.path / META_FILE}: {exc.args[0]}") from None
        except RuntimeError as exc:  # the weights are of another method, backbone or class count
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(
                f"{self.path}: the weights do not fit {m['method']} on {m['backbone']} with "
                f"{len(m['class_names'])} classes, as {META_FILE} says ({first})"
            ) from None
        return model.eval()


def save_checkpoint(
    directory: str | os.PathLike,
    model: WSOLModel,
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
) -> Path:
    """Write a checkpoint into `directory` (created); returns it."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), d / MODEL_FILE)
    if optimizer is not None:
        state = {"optimizer": optimizer.state_dict()}
        if scheduler is not None:
            state["scheduler"] = scheduler.state_dict()
        torch.save(state, d / OPTIM_FILE)
    write_json_atomic(d / META_FILE, meta)
    return d


def load_checkpoint(path: str | os.PathLike | Location) -> LoadedCheckpoint:
    """Read a checkpoint directory (or resolve a run directory through its `selected.json`)."""
    p = resolve_checkpoint_dir(path)
    try:
        meta = (p / META_FILE).read_json()
    except (OSError, StorageError, ValueError) as exc:
        why = first_line(exc)
        raise CheckpointError(f"{p / META_FILE}: cannot read the checkpoint's meta ({why})") from exc
    try:
        state = _load_tensors(p / MODEL_FILE)
    except (OSError, StorageError, ValueError, RuntimeError, pickle.UnpicklingError, EOFError) as exc:
        raise CheckpointError(
            f"{p / MODEL_FILE}: not a readable PyTorch state dict, truncated or another kind of file "
            f"({first_line(exc)})"
        ) from exc
    return LoadedCheckpoint(path=p, meta=meta, model_state=state)


def _load_tensors(f: Location) -> Any:
    return torch.load(io.BytesIO(f.read_bytes()), map_location="cpu", weights_only=True)


def load_optim_state(path: str | os.PathLike | Location) -> dict[str, Any] | None:
    f = Location(path) / OPTIM_FILE
    return _load_tensors(f) if f.is_file() else None


def resolve_checkpoint_dir(path: str | os.PathLike | Location) -> Location:
    """A checkpoint directory as is; a run directory -> its selected checkpoint; a registry model
    (`models:/NAME@ALIAS`, `models:/NAME/VERSION`) -> its local copy; else CheckpointError."""
    if is_model_uri(path):
        return Location(download_model(str(path)))
    p = Location(path)
    if (p / META_FILE).is_file():
        return p
    if (p / SELECTED_FILE).is_file():
        return resolve_checkpoint_dir(selected_checkpoint(p, read_selected(p)))
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint or run directory")
    raise CheckpointError(
        f"{p}: neither a checkpoint ({META_FILE} missing) nor a finished run directory "
        f"({SELECTED_FILE} missing)"
    )


def resolve_pseudo_label_source(ref: str | Location) -> Location:
    """Checkpoint dir, run dir (either may be an object-store URI), or an MLflow run id (its
    `pixelcam.checkpoint` tag) or a registry model (`models:/NAME@ALIAS`) -> checkpoint dir."""
    if is_model_uri(ref):
        return resolve_checkpoint_dir(ref)
    p = Location(ref)
    if p.exists():
        return resolve_checkpoint_dir(p)
    from pixelcam.tracking import checkpoint_of_run

    found = checkpoint_of_run(str(ref))
    if found is None:
        raise CheckpointError(
            f"{ref}: not a checkpoint or run directory, and no MLflow run with that id has a checkpoint tag"
        )
    return resolve_checkpoint_dir(found)


def run_of_checkpoint(checkpoint: Location) -> Location | None:
    """The run directory a checkpoint belongs to (`<run>/epoch_NNN`), None for a lone checkpoint."""
    parent = Location(checkpoint).parent
    return parent if (parent / SELECTED_FILE).is_file() or latest_meta(parent) is not None else None


def run_checkpoints(run_dir: str | os.PathLike | Location) -> dict[str, Location]:
    """{selection: checkpoint dir} a run keeps: its B-LOC and B-CL bests (`selected.json`'s `by_selection`,
    or the latest checkpoint's `best_by` while the run has not finished); runs written before both were kept
    know only their own selection's."""
    d = Location(run_dir)
    if (d / SELECTED_FILE).is_file():
        sel = read_selected(d)
        found = {k: d / v for k, v in sel.get("by_selection", {}).items()}
        if sel.get("selection"):
            found.setdefault(sel["selection"], selected_checkpoint(d, sel))
    else:
        latest = latest_meta(d) or {}
        found = {k: d / f"epoch_{b['epoch']:03d}" for k, b in latest.get("best_by", {}).items()}
        if latest.get("selection") and "best" in latest:
            found.setdefault(latest["selection"], d / f"epoch_{latest['best']['epoch']:03d}")
    return {k: p for k, p in found.items() if (p / META_FILE).is_file()}


def baseline_checkpoint(ref: str | Location, selection: str) -> tuple[Location, str]:
    """(checkpoint dir, how it was found) of baseline `ref` under `selection` (b-loc / b-cl).

    `ref` is a checkpoint dir, run dir or MLflow run id; a checkpoint of a run stands for its run, whose
    B-LOC or B-CL best is returned. A lone checkpoint (no run around it) is used as is, whatever `selection`.
    """
    ckpt = resolve_pseudo_label_source(ref)
    run = run_of_checkpoint(ckpt)
    if run is None:
        return ckpt, "lone checkpoint"
    kept = run_checkpoints(run)
    if selection not in kept:
        raise CheckpointError(
            f"{run}: the baseline run keeps no {selection.upper()} checkpoint (it keeps "
            f"{sorted(kept) or 'none'}; runs written before both were kept have only their own selection's): "
            f"retrain the baseline, or choose another pseudo_labels_checkpoint / init_from"
        )
    return kept[selection], f"{selection} of run {run.name}"


def read_selected(run_dir: Location) -> dict[str, Any]:
    """A run directory's `selected.json`; CheckpointError naming it when it is not what a run writes."""
    f = Location(run_dir) / SELECTED_FILE
    try:
        sel = f.read_json()
    except (OSError, StorageError, ValueError) as exc:
        raise CheckpointError(f"{f}: cannot be read as JSON ({exc})") from None
    if not isinstance(sel, dict) or not isinstance(sel.get("checkpoint"), str):
        raise CheckpointError(f"{f}: expected an object whose 'checkpoint' names the selected checkpoint")
    return sel


def selected_checkpoint(run_dir: Location, sel: dict[str, Any]) -> Location:
    """The selected checkpoint's directory: stored relative to the run directory (so a moved run directory
    still resolves), or absolute in runs written before."""
    ref = sel["checkpoint"]
    return Location(ref) if os.path.isabs(ref) or "://" in ref else Location(run_dir) / ref


def latest_meta(run_dir: str | os.PathLike | Location) -> dict[str, Any] | None:
    """Meta of a run directory's latest complete checkpoint (`epoch_NNN/meta.json`), None before the first."""
    epochs = [p for p in Location(run_dir).glob("epoch_*") if (p / META_FILE).is_file()]
    return (epochs[-1] / META_FILE).read_json() if epochs else None


def selected_in_run(run_dir: str | os.PathLike | Location) -> SelectedCheckpoint | None:
    """The selected checkpoint of a run directory: `selected.json` when the run finished, else (a run stopped
    early, e.g. by ASHA after its last report) the best epoch recorded in its latest checkpoint."""
    d = Location(run_dir)
    if (d / SELECTED_FILE).is_file():
        sel = read_selected(d)
        chosen = selected_checkpoint(d, sel)
        if not {"epoch", "metrics", "tau"} <= set(sel):  # a minimal selected.json: the rest from the meta
            meta = (chosen / META_FILE).read_json()
            sel = {k: meta[k] for k in ("epoch", "metrics", "tau")} | sel
        return SelectedCheckpoint.from_json({**sel, "checkpoint": chosen.uri})
    latest = latest_meta(d)
    if latest is None:
        return None
    chosen = d / f"epoch_{latest['best']['epoch']:03d}"
    if not (chosen / META_FILE).is_file():
        return None
    meta = (chosen / META_FILE).read_json()
    return SelectedCheckpoint(
        checkpoint=chosen.uri,
        epoch=meta["epoch"],
        metrics=meta["metrics"],
        tau=meta["tau"],
        selection=meta.get("selection"),
    )


def input_size_of(meta: dict[str, Any]) -> int:
    """The side a checkpoint's run validated at (`eval_input`), so evaluation matches it; checkpoints from
    before the switch: their resize side."""
    return int(meta.get("eval_input_size", meta["resize"]))
