"""The Tune function trainable: one trial = one Ray Train run (TorchTrainer) of the trial's config.

Runs inside the trial's actor. Rank 0's per-epoch report reaches Tune through TuneReportCallback (its
`TUNE_KEYS`; one Tune result per epoch, so ASHA's time unit is the epoch). The Train run is named after the
trial id, so a restored trial continues from its own checkpoints, and its MLflow run (a child of the study's
parent run) is reused.
"""

from __future__ import annotations

from typing import Any

from pixelcam.data.reader import PatchDataset
from pixelcam.storage import Location

TRIAL_RESOURCES = {"CPU": 0.01}  # the trial driver only waits on its Train run; Train workers hold the CPUs


def trial_name(trial_id: str) -> str:
    return f"trial-{trial_id}"


def trial_driver(
    config: dict[str, Any], dataset: PatchDataset | None = None, shared_data: dict[str, Any] | None = None
) -> None:
    """Tune trainable. `config`: {"base": TrainConfig dict, "searched": [keys], "train_storage",
    "mlflow_uri", "mlflow_parent", "tags", optional "overrides" (fixed settings of a grid) and "kind" (the
    MLflow run kind, default trial)} plus the searched values (merged in by OptunaSearch); in a wave
    (`study.waves`) "run" carries the run's own base, train_storage, tags and overrides; `dataset`: the
    study's opened dataset and `shared_data` its decoded train datasets (through `tune.with_parameters`)."""
    import ray.tune

    from pixelcam.config import TrainConfig
    from pixelcam.tracking import RunKind
    from pixelcam.train.runner import train
    from pixelcam.train.session import tune_metrics

    trial_id = ray.tune.get_context().get_trial_id()
    config = {**config, **{k: v for k, v in (config.get("run") or {}).items() if k != "key"}}  # a wave's run
    values = {k: config[k] for k in config["searched"]}
    values.update(config.get("overrides", {}))  # a grid of fixed settings (the seeds step: seed, baseline)
    cfg = TrainConfig.from_dict(config["base"]).replace(
        **values, name=trial_name(trial_id), storage=config["train_storage"]
    )
    tags = {**config.get("tags", {}), "trial_id": trial_id} | (
        {"seed": str(values["seed"])} if "seed" in values else {}
    )
    if config.get("stand_in"):  # benchmarks only: the trial's bookkeeping without its training
        from pixelcam.study.stand_in import run_stand_in

        run_stand_in(cfg, dataset, values, config.get("mlflow_parent"), config.get("mlflow_uri"), tags)
        return
    res = train(
        cfg,
        resume=(Location(cfg.storage) / cfg.run_name()).exists(),  # a retried trial continues its run
        callbacks=None if cfg.runs_locally else [tune_callback()],  # a local run reports to Tune itself
        parent_run_id=config.get("mlflow_parent"),
        mlflow_uri=config.get("mlflow_uri"),  # the study's store, not one in the trial's own directory
        extra_tags=tags,
        dataset=dataset,
        kind=config.get("kind", RunKind.TRIAL),
        shared_data=shared_data,
    )
    if not res.history:
        # a restored trial whose run had checkpointed its last epoch (the study was killed between that and
        # the trial's end): no epoch ran, so nothing reached Tune; the run's selected result is its result
        score = res.metrics[cfg.selection_metric]
        ray.tune.report(tune_metrics({**res.metrics, "selected_score": score, "epoch": res.epoch}))


def tune_callback() -> Any:
    """Ray Train -> Tune: Ray's `TuneReportCallback`, forwarding only `TUNE_KEYS` of rank 0's report (the
    other metrics are in MLflow; Tune keeps a running analysis of each one it gets, per trial). Made only
    for a trial that runs Ray Train: it starts an actor of its own (a queue, ~1.3 CPU-s of process start-up),
    which a trial training in its Tune actor never uses."""
    from ray.tune.integration.ray_train import TuneReportCallback

    from pixelcam.train.session import tune_metrics

    class TuneKeysCallback(TuneReportCallback):
        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
            super().after_report(run_context, [tune_metrics(m) for m in metrics], checkpoint)

    return TuneKeysCallback()
