"""What every study step works on: the study's state file and a context (spec, directory, the opened
dataset, the MLflow parent run, logging) handed to each step in turn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from pixelcam.data.reader import PatchDataset
from pixelcam.errors import StudyError
from pixelcam.results import EvaluationReport, ExperimentRecord, Record, SeedRecord
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
    """`state.json`: what each step has produced (typed records per model, by experiment key), the MLflow
    parent run id and which steps ran. The one place study records are written and read: every record is
    validated when the file is opened (a hand-edited or foreign state fails there, naming the record) and
    the file is saved atomically after every unit of work, so a killed study resumes."""

    TYPED: dict[str, type[Record]] = {
        "experiments": ExperimentRecord,
        "seeds": SeedRecord,
        "evaluations": EvaluationReport,
    }
    SECTIONS = (*TYPED, "stain")

    def __init__(self, path: Location) -> None:
        self.path = Location(path)
        self.data: dict[str, Any] = {k: {} for k in self.SECTIONS}
        self.data.update(parent_run_id=None, steps={})
        if self.path.is_file():
            self.data.update(self.path.read_json())
            self.data.setdefault("steps", {})
        self._typed = {section: self._load(section, kind) for section, kind in self.TYPED.items()}

    def _load(self, section: str, kind: type[Record]) -> dict[str, Record]:
        out = {}
        for key, raw in self.data.get(section, {}).items():
            try:
                out[key] = kind.from_json(raw)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(x) for x in first["loc"])
                raise StudyError(f"{self.path}: {section}.{key}.{where}: {first['msg']}") from None
        return out

    @property
    def parent_run_id(self) -> str | None:
        return self.data.get("parent_run_id")

    def set_parent_run(self, run_id: str) -> None:
        self.data["parent_run_id"] = run_id
        self.save()

    def experiment(self, key: str) -> ExperimentRecord | None:
        return self._typed["experiments"].get(key)  # type: ignore[return-value]

    def seed_run(self, key: str) -> SeedRecord | None:
        return self._typed["seeds"].get(key)  # type: ignore[return-value]

    def evaluation(self, key: str) -> EvaluationReport | None:
        return self._typed["evaluations"].get(key)  # type: ignore[return-value]

    def experiments(self) -> dict[str, ExperimentRecord]:
        return dict(self._typed["experiments"])  # type: ignore[arg-type]

    def seed_runs(self) -> dict[str, SeedRecord]:
        return dict(self._typed["seeds"])  # type: ignore[arg-type]

    def stain(self, key: str) -> list[dict[str, Any]] | None:
        return self.data["stain"].get(key)

    def stain_reports(self) -> list[dict[str, Any]]:
        """Every stain-sweep report, in run order."""
        return [rep for reports in self.data["stain"].values() for rep in reports]

    def put(self, section: str, key: str, record: Record | list[dict[str, Any]], save: bool = True) -> None:
        """Store one unit of a step's output (a model's record) and, by default, save."""
        if section in self.TYPED:
            assert isinstance(record, self.TYPED[section]), (section, type(record))
            self._typed[section][key] = record
            self.data[section][key] = record.to_json()
        else:
            self.data.setdefault(section, {})[key] = record
        if save:
            self.save()

    def has(self, section: str) -> bool:
        """Whether `section` (a step's output) exists."""
        return section in self.data

    def mark(self, section: str, value: Any) -> None:
        """Record a step's plain output (e.g. the files it wrote)."""
        self.data[section] = value

    def step_done(
        self, name: str, requires: tuple[str, ...], produces: tuple[str, ...], seconds: float = 0.0
    ) -> None:
        """Record a finished step; `seconds` (its wall time in this pass) adds to those of earlier passes, so
        a resumed study's steps show what they cost in all."""
        before = self.data["steps"].get(name, {}).get("seconds", 0.0)
        self.data["steps"][name] = {
            "requires": list(requires),
            "produces": list(produces),
            "seconds": round(before + seconds, 3),
        }
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
        return self.state.parent_run_id

    @property
    def eval_device(self) -> str:
        """Where the driver's evaluation and stain sweep run: the GPU when the study trains on GPUs and the
        driver sees one, else the CPU (a study's numbers are computed on the device it trained on)."""
        if self.spec.resources.gpus_per_worker:
            import torch

            if torch.cuda.is_available():
                return "cuda"
        return "cpu"

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
        rec: SeedRecord | ExperimentRecord | None = self.state.seed_run(seed_key(source, method, seed))
        if rec is None and seed == self.spec.seed:
            rec = self.state.experiment(experiment_key(source, method))
        return rec.checkpoint if rec is not None else None

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
