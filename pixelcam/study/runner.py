"""Run a study: per source, tune each baseline, then PixelCAM on each tuned baseline (Ray Tune + Optuna +
ASHA, every trial a Ray Train run), evaluate every selected model on every target's test split (the OOD
matrix), and record it all in MLflow under one parent run.

The study directory (`<storage>/<name>`) holds `spec.yaml`, `state.json` (what is finished, the MLflow parent
run id), `tune/<experiment>` (Tune's state, restorable), `train/<experiment>/trial-<id>` (Train runs) and the
results `ood.json`, `ood.csv`. `resume_study(dir)` continues it: finished experiments and evaluations are
skipped, unfinished Tune experiments are restored (finished trials are not rerun).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pixelcam.config import ConfigError
from pixelcam.data.reader import is_uri, open_dataset
from pixelcam.study.ood import experiment_key, format_ood, ood_csv, ood_matrix
from pixelcam.study.search import TUNE_METRIC, make_scheduler, make_searcher
from pixelcam.study.spec import StudySpec, load_spec, spec_from_dict
from pixelcam.study.stain import format_stain, run_stain_step, stain_csv, stain_rows
from pixelcam.study.trainable import TRIAL_RESOURCES, trial_driver, trial_name
from pixelcam.train.checkpoint import selected_in_run, write_json_atomic, write_text_atomic
from pixelcam.train.runner import CPU_FOR_DATA, close_stopped_run, init_ray, worker_resources

STATE_FILE = "state.json"
SPEC_FILE = "spec.yaml"


class StudyError(RuntimeError):
    """The study cannot run (unschedulable, directory conflict, nothing to resume)."""


def trial_requirements(spec: StudySpec, cluster: dict[str, float]) -> dict[str, float]:
    """Total resources of one trial: its Train workers plus the trial driver."""
    cfg = spec.base_config(spec.methods[0], spec.sources[0])
    per_worker = worker_resources(cfg, cluster)
    if spec.resources.gpus_per_worker:
        per_worker = {**per_worker, "GPU": spec.resources.gpus_per_worker}
    need = {k: v * spec.resources.workers for k, v in per_worker.items()}
    need["CPU"] = need.get("CPU", 0.0) + TRIAL_RESOURCES["CPU"]
    return need


def check_resources(spec: StudySpec, cluster: dict[str, float]) -> int:
    """Raise StudyError when one trial cannot fit the cluster; else return how many trials run at once."""
    need = trial_requirements(spec, cluster)
    short = {k: v for k, v in need.items() if v > cluster.get(k, 0.0) + 1e-9}
    if short:
        have = {k: cluster.get(k, 0.0) for k in need}
        raise StudyError(
            f"{spec.source_file or spec.name}: a trial needs {_fmt(need)} "
            f"({spec.resources.workers} workers), the cluster has {_fmt(have)}; lower resources.workers or "
            f"resources.gpus_per_worker/cpus_per_worker, or add nodes"
        )
    if spec.budget.max_concurrent:
        return spec.budget.max_concurrent
    if need.get("GPU"):
        return max(1, int(cluster.get("GPU", 0.0) // need["GPU"]))
    cpu_for_trials = cluster.get("CPU", 1.0) - CPU_FOR_DATA
    return max(1, int(cpu_for_trials // max(need["CPU"], 1e-9)))


def _fmt(res: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(res.items())) + "}"


class Study:
    """One study directory and its MLflow parent run; `run()` does (or finishes) the work."""

    def __init__(self, spec: StudySpec, directory: Path, log: Callable[[str], None] = print) -> None:
        self.spec = spec
        self.dir = directory
        self.log = log
        self.state: dict[str, Any] = {
            "experiments": {},
            "evaluations": {},
            "stain": {},
            "parent_run_id": None,
        }
        if (directory / STATE_FILE).is_file():
            self.state = json.loads((directory / STATE_FILE).read_text())

    def save(self) -> None:
        write_json_atomic(self.dir / STATE_FILE, self.state)

    # -- MLflow -------------------------------------------------------------------------------------------
    def _mlflow(self):
        from pixelcam.train.tracking import RunLogger, ensure_experiment, start_run, tracking_uri

        uri = tracking_uri()
        exp = ensure_experiment(self.spec.mlflow_experiment(), uri)
        if not self.state["parent_run_id"]:
            ds = open_dataset(self.spec.data)
            tags = {"kind": "study", "study": self.spec.name, "dataset_hash": ds.hash}
            params = {
                "sources": ",".join(self.spec.sources),
                "methods": ",".join(self.spec.all_methods()),
                "trials": str(self.spec.budget.trials),
                "epochs": str(self.spec.budget.epochs),
                "seed": str(self.spec.seed),
                "selection": self.spec.selection,
            }
            run_id = start_run(exp, f"study-{self.spec.name}", tags, params, uri)
            log = RunLogger(run_id, uri)
            log.text((self.dir / SPEC_FILE).read_text(), "study_spec.yaml")
            log.text(json.dumps(ds.manifest, indent=2, sort_keys=True), "dataset_manifest.json")
            log.text(json.dumps(_code_version(), indent=2), "code_version.json")
            self.state["parent_run_id"] = run_id
            self.save()
        else:
            RunLogger(self.state["parent_run_id"], uri).client.update_run(
                self.state["parent_run_id"], "RUNNING"
            )
        return uri, exp, self.state["parent_run_id"]

    # -- tuning -------------------------------------------------------------------------------------------
    def tune(self, source: str, method: str, concurrency: int) -> dict[str, Any]:
        """Tune one (source, method) experiment; returns its record (best trial, checkpoint, metrics)."""
        import ray.tune

        from pixelcam.train.tracking import tracking_uri

        key = experiment_key(source, method)
        done = self.state["experiments"].get(key)
        if done is not None:
            self.log(f"[{key}] done earlier: best trial {done.get('best_trial')}")
            return done
        baseline, fixed = self.spec.variant(method)
        pixelcam = baseline is not None
        base = self.spec.base_config("pixelcam" if pixelcam else method, source)
        if pixelcam:
            parent = self.state["experiments"].get(experiment_key(source, baseline), {})
            if not parent.get("checkpoint"):
                rec = {"status": "skipped", "reason": f"baseline {baseline} has no model"}
                self.state["experiments"][key] = rec
                self.save()
                return rec
            base = base.replace(pseudo_labels_from=parent["checkpoint"], **fixed)
        dims = {k: v for k, v in self.spec.searched(pixelcam).items() if k not in fixed}
        train_storage = self.dir / "train" / key
        tune_root = self.dir / "tune"
        constants = {
            "base": base.to_dict(),
            "searched": sorted(dims),
            "train_storage": str(train_storage),
            "mlflow_uri": tracking_uri(),
            "mlflow_parent": self.state["parent_run_id"],
            "tags": {"study": self.spec.name, "experiment_key": key, "kind": "trial", "method_label": method},
        }
        trainable = ray.tune.with_resources(trial_driver, TRIAL_RESOURCES)
        path = tune_root / key
        if ray.tune.Tuner.can_restore(str(path)):
            self.log(f"[{key}] restoring the Tune experiment (finished trials are kept)")
            tuner = ray.tune.Tuner.restore(
                str(path), trainable, resume_unfinished=True, resume_errored=False, param_space=constants
            )
        else:
            self.log(f"[{key}] tuning {sorted(dims)} over {self.spec.budget.trials} trials")
            tuner = ray.tune.Tuner(
                trainable,
                param_space=constants,
                tune_config=ray.tune.TuneConfig(
                    metric=TUNE_METRIC,
                    mode="max",
                    search_alg=make_searcher(dims, self.spec.seed),
                    scheduler=make_scheduler(self.spec.budget, self.early_stopping),
                    num_samples=self.spec.budget.trials,
                    max_concurrent_trials=concurrency,
                ),
                run_config=ray.tune.RunConfig(
                    name=key,
                    storage_path=str(tune_root),
                    failure_config=ray.tune.FailureConfig(max_failures=0),
                    verbose=0,
                ),
            )
        grid = tuner.fit()
        rec = self._best(key, grid, train_storage, dims)
        self._close_stopped_trials(grid, train_storage)
        self._close_killed_children()
        self.state["experiments"][key] = rec
        self.save()
        if rec.get("checkpoint"):
            m = rec["metrics"]
            self.log(
                f"[{key}] best trial {rec['best_trial']}: valpx PxAP {m['valpx_pxap']:.2f}, valcl CL "
                f"{m['valcl_cl']:.1f} with {rec['params']} ({rec['trials_ok']} ok, "
                f"{rec['trials_failed']} failed, {rec['trial_epochs']} trial-epochs)"
            )
        else:
            self.log(f"[{key}] every trial failed: {rec.get('errors')}")
        return rec

    early_stopping = True

    def _best(self, key: str, grid: Any, train_storage: Path, dims: dict) -> dict[str, Any]:
        best, ok, failed, epochs, errors = None, 0, 0, 0, []
        for r in grid:
            if r.error is not None:
                failed += 1
                errors.append(str(r.error).strip().splitlines()[-1][:300])
                continue
            m = r.metrics or {}
            epochs += int(m.get("training_iteration", 0))
            trial_id = m.get("trial_id")
            info = selected_in_run(train_storage / trial_name(str(trial_id)))
            if info is None:  # stopped before its first checkpoint
                continue
            ok += 1
            score = m.get(TUNE_METRIC, -math.inf)
            if best is None or score > best[0]:
                best = (score, trial_id, info, {k: r.config.get(k) for k in dims})
        rec: dict[str, Any] = {
            "trials_ok": ok,
            "trials_failed": failed,
            "trial_epochs": epochs,
            "errors": errors,
        }
        if best is None:
            rec["status"] = "failed"
            return rec
        score, trial_id, info, params = best
        rec.update(
            status="ok",
            best_trial=trial_id,
            score=score,
            checkpoint=info["checkpoint"],
            metrics=info["metrics"],
            tau=info["tau"],
            params=params,
            mlflow_run_id=info.get("mlflow_run_id"),
        )
        return rec

    def _close_stopped_trials(self, grid: Any, train_storage: Path) -> None:
        """Tune is the judge of how a trial ended: a trial it reports without error was stopped by the
        scheduler (or finished), whatever its Train run's exception looked like while it was being torn down.
        Its MLflow run ends KILLED (stopped early) or FINISHED (every epoch ran), never FAILED."""
        for r in grid:
            trial_id = (r.metrics or {}).get("trial_id")
            if r.error is None and trial_id:
                close_stopped_run(train_storage / trial_name(str(trial_id)), self.spec.budget.epochs)

    def _close_killed_children(self) -> None:
        """Trials stopped by ASHA never finish their MLflow runs: mark them KILLED."""
        from pixelcam.train.tracking import _client

        client = _client()
        parent = self.state["parent_run_id"]
        if not parent:
            return
        runs = client.search_runs(
            [client.get_run(parent).info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent}' and attributes.status = 'RUNNING'",
        )
        for run in runs:
            client.set_terminated(run.info.run_id, status="KILLED")
            self.log(f"closed MLflow run {run.info.run_name} of a stopped trial (KILLED)")

    # -- evaluation ---------------------------------------------------------------------------------------
    def evaluate(self, source: str, method: str, targets: list[str]) -> dict[str, Any] | None:
        from pixelcam.train.details import gallery_bytes, image_details
        from pixelcam.train.evaluate import evaluate
        from pixelcam.train.tracking import RunLogger, start_run, tracking_uri

        key = experiment_key(source, method)
        if key in self.state["evaluations"]:
            return self.state["evaluations"][key]
        rec = self.state["experiments"].get(key, {})
        if not rec.get("checkpoint"):
            return None
        report = evaluate(rec["checkpoint"], self.spec.data, targets)
        uri = tracking_uri()
        parent = self.state["parent_run_id"]
        if parent:
            from pixelcam.train.tracking import _client

            exp = _client(uri).get_run(parent).info.experiment_id
            tags = {
                "kind": "evaluation",
                "study": self.spec.name,
                "method": method,
                "source": source,
                "best_trial": str(rec["best_trial"]),
            }
            run_id = start_run(
                exp,
                f"eval-{key}",
                tags,
                {k: str(v) for k, v in rec["params"].items()},
                uri,
                parent_run_id=parent,
            )
            log = RunLogger(run_id, uri)
            metrics = {}
            for tgt, row in report["results"].items():
                metrics[f"pxap__{source}__to__{tgt}"] = row["pxap"]
                metrics[f"cl__{source}__to__{tgt}"] = row["cl"]
            log.metrics(metrics)
            log.text(json.dumps(report, indent=2), "evaluation.json")
            for tgt in report["results"]:  # per-image PxAP and J, and a gallery of maps, for the dashboard
                details, gallery = image_details(rec["checkpoint"], self.spec.data, tgt)
                log.text(json.dumps(details), f"details/{tgt}.json")
                log.data(gallery_bytes(gallery), f"gallery/{tgt}.npz")
            log.finish()
            RunLogger(parent, uri).metrics({f"{method}__{k}": v for k, v in metrics.items()})
        self.state["evaluations"][key] = report
        self.save()
        return report

    def dashboard(self) -> Path | None:
        """Write `dashboard.html` in the study directory and log its figures to the parent run."""
        from pixelcam.report import build_dashboard

        try:
            out = build_dashboard(self.state["parent_run_id"], self.dir / "dashboard.html")
        except Exception as exc:  # the results are already saved; a broken figure must not fail the study
            self.log(
                f"dashboard not built ({type(exc).__name__}: {exc}); retry: pixelcam dashboard {self.dir}"
            )
            return None
        return out

    # -- staining robustness ---------------------------------------------------------------------------------
    def stain_step(self) -> str:
        """Sweep every selected model over the stain-shift levels (spec.stain_shift); returns the table."""
        if self.spec.stain_shift is None:
            return ""
        for source in self.spec.sources:
            for method in self.spec.all_methods():
                key = experiment_key(source, method)
                if key not in self.state.get("stain", {}):
                    self.log(f"[{key}] stain-shift sweep ({self.spec.stain_shift.method})")
                run_stain_step(self, source, method)
        reports = stain_rows(self.state)
        write_json_atomic(self.dir / "stain.json", reports)
        write_text_atomic(self.dir / "stain.csv", stain_csv(reports))
        table = format_stain(reports)
        self.log(table)
        return table

    # -- the whole study ----------------------------------------------------------------------------------
    def run(self, early_stopping: bool = True) -> dict[str, Any]:
        import ray

        self.early_stopping = early_stopping
        init_ray()
        concurrency = check_resources(self.spec, ray.cluster_resources())
        ds = open_dataset(self.spec.data)
        targets = self.spec.targets or ds.domains
        for d in list(self.spec.sources) + list(targets):
            ds.class_names(d)  # unknown domain -> DatasetError naming the known ones
        uri, _, parent = self._mlflow()
        try:
            for source in self.spec.sources:
                for method in self.spec.methods:
                    self.tune(source, method, concurrency)
                if self.spec.pixelcam:
                    for method in self.spec.methods:
                        for label in self.spec.pixelcam_labels(method):
                            self.tune(source, label, concurrency)
            for source in self.spec.sources:
                for method in self.spec.all_methods():
                    self.evaluate(source, method, targets)
            self._close_killed_children()  # trials stopped at their last report, now surely gone
            stain_table = self.stain_step()
            matrix = ood_matrix(self.spec, self.state, targets)
            write_json_atomic(self.dir / "ood.json", matrix)
            write_text_atomic(self.dir / "ood.csv", ood_csv(matrix))
            table = format_ood(matrix, self.spec.published)
            self.log(table)
            if parent:
                from pixelcam.train.tracking import RunLogger

                log = RunLogger(parent, uri)
                log.text(json.dumps(matrix, indent=2), "ood.json")
                log.text(ood_csv(matrix), "ood.csv")
                log.text(table, "ood_table.txt")
                if stain_table:
                    log.text(json.dumps(stain_rows(self.state), indent=2), "stain.json")
                    log.text(stain_csv(stain_rows(self.state)), "stain.csv")
                    log.text(stain_table, "stain_table.txt")
                self.dashboard()
                log.finish()
        except BaseException:
            if parent:
                from pixelcam.train.tracking import RunLogger

                RunLogger(parent, uri).finish("FAILED")
            raise
        return matrix


def _code_version() -> dict[str, str]:
    import subprocess

    from pixelcam import __version__

    out = {"pixelcam": __version__}
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
        ).stdout.strip()
        if sha:
            out["git_commit"] = sha
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def run_study(
    path: str,
    storage: str | None = None,
    early_stopping: bool = True,
    log: Callable[[str], None] = print,
    data: str | None = None,
) -> tuple[Path, dict[str, Any], StudySpec]:
    """`pixelcam study run FILE`: a new study directory `<storage>/<name>` (`data` overrides the spec's);
    returns (directory, OOD matrix, resolved spec)."""
    spec = load_spec(path)
    if storage:
        spec.storage = storage
    if data:
        spec.data = data
    directory = Path(spec.storage).resolve() / spec.name
    if (directory / STATE_FILE).exists():
        raise StudyError(f"{directory} exists: `pixelcam study resume {directory}` continues it")
    import ray

    init_ray()
    check_resources(spec, ray.cluster_resources())  # fail before anything is written
    directory.mkdir(parents=True, exist_ok=True)
    if not is_uri(spec.data):  # a shared URI (s3://, gs://) stays as given
        spec.data = str(Path(spec.data).resolve())
    raw = yaml.safe_load(Path(path).read_text())
    raw["data"] = spec.data
    raw["storage"] = str(directory.parent)
    write_text_atomic(directory / SPEC_FILE, yaml.safe_dump(raw, sort_keys=False))
    study = Study(spec, directory, log)
    study.save()
    return directory, study.run(early_stopping), spec


def resume_study(
    directory: str, log: Callable[[str], None] = print
) -> tuple[Path, dict[str, Any], StudySpec]:
    """`pixelcam study resume DIR`: continue a study from its directory; returns what `run_study` does."""
    d = Path(directory).resolve()
    if not (d / SPEC_FILE).is_file() or not (d / STATE_FILE).is_file():
        raise StudyError(f"{d}: not a study directory ({SPEC_FILE} and {STATE_FILE} expected)")
    try:
        spec = spec_from_dict(yaml.safe_load((d / SPEC_FILE).read_text()), str(d / SPEC_FILE))
    except ConfigError as exc:
        raise StudyError(str(exc)) from exc
    spec.storage = str(d.parent)
    return d, Study(spec, d, log).run(), spec
