"""What a study prints while it runs: one line per epoch of every trial and one per finished trial, from the
driver (Tune results), so the console shows the study's own progress and not Ray's internals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:  # a plain base class when Tune is not importable (the CLI's --help imports nothing heavy)
    from ray.tune import Callback
except ImportError:  # pragma: no cover
    Callback = object  # type: ignore[assignment,misc]


def _label(trial: Any) -> str:
    cfg = getattr(trial, "config", {}) or {}
    cfg = {**cfg, **(cfg.get("run") or {})}  # a wave's run carries its own tags and overrides
    key = cfg.get("tags", {}).get("experiment_key", "trial")
    seed = (cfg.get("overrides") or {}).get("seed")
    return f"[{key}{f'@seed{seed}' if seed is not None else ''} {getattr(trial, 'trial_id', '?')}]"


def epoch_line(label: str, result: dict[str, Any], epochs: int) -> str:
    """One epoch of one trial, as the Train workers' own progress line."""
    nan = float("nan")
    return (
        f"{label} epoch {int(result.get('epoch', 0)) + 1}/{epochs}  loss {result.get('loss', nan):.4f}  "
        f"valpx PxAP {result.get('valpx_pxap', nan):.2f}  valcl CL {result.get('valcl_cl', nan):.1f}  "
        f"{result.get('images_per_s', 0.0):.1f} img/s"
    )


def _print_line(line: str) -> None:
    print(line, flush=True)


class StudyProgress(Callback):
    """Tune callback: an epoch line per reported result, a line per trial that ends (done or failed).

    Tune pickles its callbacks with the experiment state; the `log` function is not part of that (under
    `ray job submit` even `print` is a patched object that does not pickle): a restored callback prints."""

    def __init__(self, log: Callable[[str], None] | None, epochs: int) -> None:
        self.log, self.epochs = log or _print_line, epochs

    def __reduce__(self) -> tuple:
        return (StudyProgress, (None, self.epochs))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if "valpx_pxap" in result:
            self.log(epoch_line(_label(trial), result, self.epochs))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = getattr(trial, "last_result", {}) or {}
        # the epoch it reached: a trial retried from its checkpoint reports fewer Tune iterations than epochs
        ran = int(last["epoch"]) + 1 if "epoch" in last else int(last.get("training_iteration", 0))
        how = "done" if ran >= self.epochs else f"stopped early after {ran} epoch(s)"
        self.log(f"{_label(trial)} {how}: best valpx PxAP {last.get('selected_score', float('nan')):.2f}")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log(
            f"{_label(trial)} failed (its worker or node was lost, or it raised); retried "
            f"(resources.max_failures), continuing from its latest checkpoint"
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log(f"{_label(trial)} failed (its error is recorded; the study goes on)")
