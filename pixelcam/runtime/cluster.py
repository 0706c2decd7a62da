"""The training side of the cluster: connect to (or start) Ray, size a Train worker, and refuse at once a run
that can never be scheduled."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable

from pixelcam.adapters import ray as ray_adapter
from pixelcam.config import TrainConfig
from pixelcam.errors import TrainError

QUIET_NOTES = ("mlflow.store.db.utils",)  # "Creating initial MLflow database tables..." (a new local store)
QUIET_TRACEBACKS = ("ray.tune.execution.tune_controller", "ray.tune.tune")
# The local Ray's dashboard UI (http://127.0.0.1:8265): two more Python processes per start (its modules),
# ~3 CPU-s and ~2 s on 2 cores, for a page most local runs never open; `PIXELCAM_RAY_DASHBOARD=1` starts it.
# Without it Ray still runs its dashboard head process (its job and state APIs).
DASHBOARD_ENV = "PIXELCAM_RAY_DASHBOARD"
CPU_FOR_DATA = 1.0  # CPUs left to Ray Data's decode tasks when workers are sized automatically


def init_ray(
    num_cpus: int | None = None, quiet: bool = False, show: Callable[[str | None, str], bool] | None = None
) -> str | None:
    """Connect to the cluster in RAY_ADDRESS (jobs) or start a local Ray instance; quiet logging defaults.

    `quiet`: worker and system-process output stays in Ray's session logs instead of the console (a study
    prints its own progress from Tune results); Tune's and Ray Data's INFO notes are silenced. Returns the
    session's log directory when this call started or joined Ray, else None. `show(actor, line)`: on a quiet
    console, the lines of Ray's processes still shown (without Ray's prefix), e.g. a Train worker's
    progress; everything else of theirs stays in the session logs."""
    ray_adapter.set_env(quiet)
    import ray
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False  # one progress line per epoch instead
    if quiet:
        import logging

        for name in ("ray.tune", "ray.train", "ray.data", "ray.air"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # notes, not problems: the local cluster's token auth being on by default (it stays on), Ray Data's
        # progress bars being off (we print our own progress), a new local MLflow store's schema set-up
        ray_adapter.quiet_notes()
        ray_adapter.hide_raylet_messages(show)  # the raylet warns on the console whatever log_to_driver says
        for name in QUIET_NOTES:
            logging.getLogger(name).setLevel(logging.ERROR)
        # a failed trial's traceback: the study prints one line per failure or retry, and Tune keeps the
        # traceback in the trial's error file (the study state records its last line)
        for name in QUIET_TRACEBACKS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if ray.is_initialized():
        return None
    to_driver = not quiet or show is not None  # a quiet console shows only what `show` keeps
    with ray_adapter.keep_sigterm_handler():  # ours: one line, exit 143, nothing half-written kept
        if os.environ.get("RAY_ADDRESS"):
            info = ray.init(log_to_driver=to_driver)
        else:
            info = _start_local(num_cpus, to_driver)
    session = getattr(info, "address_info", {}).get("session_dir")
    return os.path.join(session, "logs") if session else None


# Ray's own words when its raylet did not register in time: on a loaded machine the raylet aborts when the
# dashboard agent has not written its port file within its fixed wait, and `ray.init` raises a bare
# Exception 30 s later. Whether the agent makes it depends on the load of that moment: one more start.
START_TIMEOUT = "timed out during startup"


def _start_local(num_cpus: int | None, to_driver: bool) -> object:
    """`ray.init` of a local instance, started again once when Ray says its node missed its start-up window.

    Ray 2.60 binds its gRPC servers (GCS, raylet, workers, agents) to all interfaces and resolves a loopback
    node IP back to the network address: the local cluster's guard is Ray's token authentication (on by
    default), not its binding (README "Running on a Ray cluster")."""
    import ray

    def start() -> object:
        return ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=os.environ.get(DASHBOARD_ENV, "0") == "1",
            configure_logging=True,
            logging_level="WARNING",
            log_to_driver=to_driver,
        )

    try:
        return start()
    except Exception as exc:  # Ray raises a bare Exception for this; anything else is re-raised as is
        if START_TIMEOUT not in str(exc):
            raise
        ray.shutdown()  # the half-started processes of this attempt
        print(f"Ray's local start timed out ({exc}); starting it again", file=sys.stderr, flush=True)
    return start()


def worker_resources(cfg: TrainConfig, cluster: dict[str, float]) -> dict[str, float]:
    """Resources of one Train worker. CPU runs default to sharing all CPUs but one, which Ray Data keeps
    (workers holding every CPU starve the input pipeline and the run hangs)."""
    if cfg.use_gpu:
        res = {"GPU": cfg.gpus_per_worker or 1.0}  # a fraction packs several trials on one GPU
        if cfg.cpus_per_worker:
            res["CPU"] = cfg.cpus_per_worker
        return res
    if cfg.cpus_per_worker:
        return {"CPU": cfg.cpus_per_worker}
    free = max(cluster.get("CPU", 1.0) - CPU_FOR_DATA, 0.5)
    return {"CPU": max(0.5, math.floor(2 * free / cfg.num_workers) / 2)}


def check_schedulable(need: dict[str, float], num_workers: int, cluster: dict[str, float]) -> None:
    """Raise TrainError at once when the workers can never fit (instead of Ray retrying forever)."""
    short = {
        k: (v * num_workers, cluster.get(k, 0.0))
        for k, v in need.items()
        if v * num_workers > cluster.get(k, 0.0)
    }
    if short:
        desc = ", ".join(f"{k}: needs {a:g}, cluster has {b:g}" for k, (a, b) in short.items())
        raise TrainError(f"cannot schedule {num_workers} workers x {need}: {desc}")


def check_local_gpu() -> None:
    """Raise TrainError when a run in this process asks for a GPU that it cannot see (instead of silently
    training on the CPU)."""
    import torch

    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        where = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        raise TrainError(f"use_gpu: true, but this process sees no CUDA device{where}; set use_gpu: false")
