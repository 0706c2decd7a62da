"""What every study step works on: the study's state file and a context (spec, directory, the opened
dataset, the MLflow parent run, logging) handed to each step in turn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pixelcam.data.reader import PatchDataset
from pixelcam.storage import Location
from pixelcam.study.spec import StudySpec
from pixelcam.tracking import RunLogger, start_run

STATE_FILE = "state.json"
SPEC_FILE = "spec.yaml"


def experiment_key(source: str, method: str) -> str:
    """The key of one tuned model: `<source>__<method label>` (state, Tune and Train directories, tags)."""
    return f"{source}__{method}"


def seed_key(source: str, method: str, seed: int) -> str:
    """The key of one model retrained with `seed`: `<experiment key>@seed<seed>`."""
    return with_seed(experiment_key(source, method), seed)


def with_seed(key: str, seed: int) -> str:
    """`<experiment key>@seed<seed>` from an experiment key."""
    return f"{key}@seed{seed}"


class StudyState:
    """`state.json`: what each step has produced (per-model records by experiment key), the MLflow parent
    run id and which steps ran. Saved atomically after every unit of work, so a killed study resumes."""

    RECORDS = ("experiments", "seeds", "evaluations", "stain")

    def __init__(self, path: Location) -> None:
        self.path = Location(path)
        self.data: dict[str, Any] = {k: {} for k in self.RECORDS}
        self.data.update(parent_run_id=None, steps={})
        if self.path.is_file():
            self.data.update(self.path.read_json())
            self.data.setdefault("steps", {})

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    def record(self, section: str, key: str, value: Any) -> None:
        """Store one unit of a step's output (e.g. one experiment's record) and save."""
        self.data.setdefault(section, {})[key] = value
        self.save()

    def save(self) -> None:
        self.path.write_json(self.data)


@dataclass
class StudyContext:
    """Handed to every step: read the spec, the state and the opened dataset; record into the state."""

    spec: StudySpec
    dir: Location  # the study directory: a local path or a URI (s3://...), the same code either way
    state: StudyState
    dataset: PatchDataset
    targets: list[str]
    uri: str  # MLflow tracking URI of the study and of all its trials
    log: Callable[[str], None] = print
    concurrency: int = 1  # trials at once
    early_stopping: bool = True
    outputs: dict[str, Any] = field(default_factory=dict)  # what steps hand to later steps in this process
    train_data: dict[str, Any] = field(default_factory=dict)  # decoded train datasets shared by trials

    @property
    def parent_run_id(self) -> str | None:
        return self.state["parent_run_id"]

    def parent_logger(self) -> RunLogger | None:
        return RunLogger(self.parent_run_id, self.uri) if self.parent_run_id else None

    def child_run(
        self, kind: str, name: str, tags: dict[str, str], params: dict[str, Any] | None = None
    ) -> RunLogger | None:
        """A run of `kind` under the study's parent run (None when the study has no parent run)."""
        if not self.parent_run_id:
            return None
        return start_run(
            kind,
            name,
            parent_run_id=self.parent_run_id,
            tags={"study": self.spec.name, **tags},
            params=params,
            uri=self.uri,
        )

    def seed_checkpoint(self, source: str, method: str, seed: int) -> str | None:
        """The checkpoint of `method` on `source` trained with `seed` (the tuned one for the study's seed)."""
        rec = self.state["seeds"].get(seed_key(source, method, seed))
        if rec is None and seed == self.spec.seed:
            rec = self.state["experiments"].get(experiment_key(source, method))
        return (rec or {}).get("checkpoint")

    def shared_train_data(self, configs: list[dict[str, Any]]) -> dict[str, Any]:
        """The decoded train datasets the runs of `configs` (TrainConfig dicts) need, materialised once per
        study (per source, size and masks) in Ray's object store and handed to every trial, instead of each
        trial decoding its source again (~5 s of its start-up on 2 cores). Only for runs that cache their
        decoded images anyway (`cache_decoded`); the others stream as before."""
        from pixelcam.config import TrainConfig
        from pixelcam.runtime.data import train_data_key, train_dataset
        from pixelcam.train.runner import caches_decoded

        out = {}
        for raw in configs:
            cfg = TrainConfig.from_dict(raw)
            if not caches_decoded(cfg, self.dataset):
                continue
            key = train_data_key(cfg.source, cfg.resize, cfg.is_supervised)
            if key not in self.train_data:
                self.train_data[key] = train_dataset(
                    self.dataset, cfg.source, cfg.resize, cache=True, masks=cfg.is_supervised
                )
            out[key] = self.train_data[key]
        return out

    def models(self) -> list[tuple[str, str]]:
        """Every (source, model label) of the study, in the order results are reported."""
        return [(s, m) for s in self.spec.sources for m in self.spec.all_methods()]
