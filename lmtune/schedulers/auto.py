"""``auto``: lmtune's one default multi-fidelity strategy, the same from a study file (``scheduler: {name: auto,
max_resource: 5}``) and from Python (``scheduler="auto"`` with ``max_resource``, or
:func:`default_multifidelity_scheduler`).

It is :class:`~lmtune.schedulers.bohb.BOHB` with the settings that did best on ``benchmarks/multifidelity`` (see
docs/strategies.md for the tables): one bracket (ASHA that stops trials outside the top third of each rung), the
first trial at the prior mode or centre of the space, a model (GP or TPE, as ``sampler: auto`` chooses) fitted on
every trial's value at the highest rung it reached, mapped onto the reference rung's scale by the line between the
two rungs (the calibrated view), leaving out rungs whose ranking disagrees with the highest rung's, and a
budget-aware top rung that keeps half of the resource on fully trained candidates; its random draws (a third of
the trials, and those before the model) are points of a scrambled Sobol sequence. While other trials run beside
the one it decides for (several workers), it keeps no share for the top rung (with most trials still at the
first rung, that share held the lower rungs back at 8 workers), gives no trial but the centre one ASHA's first pass
at the first rung (the first few random draws to report went on for being the best of too few), and fits the
model from 3 results on instead of one more than the parameters. The choice and its reasons are logged once.
"""

from __future__ import annotations

import logging
from typing import Any

from lmtune.history import TrialHistory
from lmtune.schedulers.bohb import BOHB
from lmtune.space import SearchSpace
from lmtune.trial import TrialRecord, TrialState

__all__ = ["AUTO_SETTINGS", "IN_PARALLEL", "AutoScheduler", "default_multifidelity_scheduler"]

logger = logging.getLogger("lmtune")

#: The BOHB settings ``auto`` chooses, beside the rungs the caller gives.
AUTO_SETTINGS: dict[str, Any] = {
    "reduction_factor": 3,
    "n_brackets": 1,
    "model": "auto",
    "model_rungs": "calibrated",
    "initial": "centre",
    "full_share": 0.5,
    "min_correlation": 0.3,
    "random_fraction": 1 / 3,
    "random_draws": "sobol",
}

#: What ``auto`` uses instead while other trials run beside the one it decides for: no top-rung share, no first
#: pass at the first rung for any trial but the centre one, and the model from 3 results on. A subclass's
#: ``in_parallel`` may leave out the last two (then ASHA's first pass, and the model after one result more than the
#: parameters).
IN_PARALLEL: dict[str, Any] = {
    "model_rungs": "calibrated",
    "full_share": 0.0,
    "first_pass": False,
    "min_points_in_model": 3,
}

_WHY = (
    "one bracket: the extra Hyperband brackets cost more than they saved on short budgets; first trial at the "
    "prior mode or centre: a sensible configuration is fully trained early; the model (GP for few numeric "
    "parameters, else TPE, as sampler auto chooses) fitted across all rungs, each trial's value carried to the "
    "reference rung's scale by the line between the rungs: it learns from every report, not only the few trials "
    "at the top rung, except rungs whose ranking disagrees with the highest rung's (Kendall tau below {agree}), "
    "so misleading low fidelities do not steer it; top rung keeps {share:.0%} of the resource on fully trained "
    "candidates, so the final choice rests on enough of them; random draws from a scrambled Sobol sequence: "
    "they cover the space more evenly than uniform ones, most of all the first batch parallel workers start; "
    "while several trials run at once: no top-rung share, a trial goes on from the first rung only among the best "
    "third of the reports there (no pass for the first to report, but the centre trial), and the model from 3 "
    "results on, which did better at 8 workers"
)


class AutoScheduler(BOHB):
    """lmtune's default multi-fidelity strategy (``scheduler: {name: auto}``): BOHB with :data:`AUTO_SETTINGS` on
    rungs from ``min_resource`` to ``max_resource`` (in ``resource`` units), :data:`IN_PARALLEL` while other
    trials run; logs what it chose and why. A subclass may set other ``settings``/``in_parallel`` (the benchmarks
    keep earlier forms of ``auto`` that way)."""

    settings: dict[str, Any] = AUTO_SETTINGS
    in_parallel: dict[str, Any] = IN_PARALLEL

    def __init__(
        self,
        max_resource: int,
        min_resource: int = 1,
        *,
        resource: str = "epoch",
        pause: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(
            max_resource, min_resource, pause=pause, resource=resource, seed=seed, **self.settings
        )
        logger.info(
            "scheduler auto: BOHB, rungs %s %ss, %s; why: %s",
            self.levels,
            resource,
            ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.settings.items()
            ),
            _WHY.format(share=self.full_share, agree=self.min_correlation),
        )

    def model_history(self, history: TrialHistory, space: SearchSpace) -> TrialHistory | None:
        if running_beside(history):
            needed = self.in_parallel.get("min_points_in_model")
            return self.rungs_view(self.in_parallel["model_rungs"], history, space, needed)
        return super().model_history(history, space)

    def passes_first(self, trial: TrialRecord, history: TrialHistory) -> bool:
        """ASHA's first pass, except while trials run in parallel (``in_parallel["first_pass"]`` false): the first
        trials to report at the first rung then are mostly random draws that went on before there was anything to
        compare them with. The centre trial keeps its pass: it is the reference trained first."""
        if running_beside(history):
            return self.in_parallel.get("first_pass", True) or self.is_centre(trial.number)
        return super().passes_first(trial, history)

    def top_rung_share(self, history: TrialHistory) -> float:
        if running_beside(history):
            return self.in_parallel["full_share"]
        return super().top_rung_share(history)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "in_parallel": self.in_parallel}


def running_beside(history: TrialHistory) -> bool:
    """Whether trials run in parallel: more than one is running (the one decided for counts when it reports, and a
    new trial is asked for when one has ended, so one worker never shows two)."""
    return sum(r.state is TrialState.RUNNING for r in history) > 1


#: The name Python callers have used for the default; the same class.
default_multifidelity_scheduler = AutoScheduler
