import optuna

from pixelcam.study.search import asha_settings, make_scheduler, space_fn
from pixelcam.study.spec import Budget, Choice, Range


def test_space_suggests_each_dimension_within_bounds():
    dims = {"lr": Range(1e-4, 1e-2, log=True), "n": Range(1, 20, int=True), "sampler": Choice(("pb", "th"))}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    fn = space_fn(dims)
    for _ in range(30):
        trial = study.ask()
        fn(trial)
        p = trial.params
        assert 1e-4 <= p["lr"] <= 1e-2 and isinstance(p["n"], int) and 1 <= p["n"] <= 20
        assert p["sampler"] in ("pb", "th")
        study.tell(trial, 0.0)
    dist = study.trials[0].distributions
    assert dist["lr"].log and isinstance(dist["n"], optuna.distributions.IntDistribution)


def test_space_is_picklable_for_tune_checkpoints():
    import pickle

    fn = space_fn({"lr": Range(1e-4, 1e-2, log=True)})
    assert pickle.loads(pickle.dumps(fn)).dims == fn.dims


def test_scheduler_is_asha_over_epochs_or_fifo():
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    budget = Budget(trials=4, epochs=6, grace_period=2)
    assert isinstance(make_scheduler(budget), ASHAScheduler)
    settings = asha_settings(budget)
    assert settings["max_t"] == 6 and settings["grace_period"] == 2 and settings["stop_last_trials"] is False
    assert settings["time_attr"] == "training_iteration"
    ASHAScheduler(**settings)  # every setting is one of ASHA's public arguments
    assert isinstance(make_scheduler(Budget(), early_stopping=False), FIFOScheduler)
