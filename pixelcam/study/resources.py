"""What one trial needs from the cluster, checked before a study starts, and how many trials run at once."""

from __future__ import annotations

from pixelcam.errors import StudyError
from pixelcam.runtime.cluster import CPU_FOR_DATA, worker_resources
from pixelcam.study.spec import StudySpec
from pixelcam.study.trainable import TRIAL_RESOURCES


def _per_worker(spec: StudySpec, cluster: dict[str, float]) -> tuple[dict[str, float], bool]:
    cfg = spec.base_config(spec.methods[0], spec.sources[0])
    per_worker = worker_resources(cfg, cluster)
    if spec.resources.gpus_per_worker:
        per_worker = {**per_worker, "GPU": spec.resources.gpus_per_worker}
    return per_worker, cfg.runs_locally


def trial_resources(spec: StudySpec, cluster: dict[str, float]) -> dict[str, float]:
    """What the Tune trial's own actor holds: the worker's resources when the run executes in it (one
    worker, `executor` auto/local), else a sliver (its Train workers hold the rest)."""
    per_worker, local = _per_worker(spec, cluster)
    return dict(per_worker) if local else dict(TRIAL_RESOURCES)


def trial_requirements(spec: StudySpec, cluster: dict[str, float]) -> dict[str, float]:
    """Total resources of one trial: its Train workers plus the trial driver (or the one in-process run)."""
    per_worker, local = _per_worker(spec, cluster)
    if local:
        return dict(per_worker)
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


def retry_note(spec: StudySpec) -> str | None:
    """The console's note when the spec's retries are set for lost nodes on multi-worker trials, which they do
    not cover: on Ray 2.60 such a trial was retried but its new worker group never started
    (`tests/cluster/test_local_cluster.py` found it; docs/guide/studies.md, "Node loss")."""
    res = spec.resources
    if not res.max_failures or res.workers < 2:
        return None
    return (
        f"note: resources.max_failures {res.max_failures} with {res.workers} workers per trial: a "
        "multi-worker trial whose node is lost is retried but does not restart on Ray 2.60 (it ends FAILED); "
        "resources.workers: 1 restarts (docs/guide/studies.md, Node loss)"
    )


def _fmt(res: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(res.items())) + "}"
