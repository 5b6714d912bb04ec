"""Every built-in scheduler passes the shipped conformance suite (:mod:`lmtune.testing.schedulers`)."""

from __future__ import annotations

from lmtune.schedulers import (
    BOHB,
    SCHEDULERS,
    AutoScheduler,
    CurveExtrapolation,
    Hyperband,
    MedianStopping,
    NoScheduler,
    PopulationBasedTraining,
    SuccessiveHalving,
)
from lmtune.testing.schedulers import SchedulerConformance


class TestNoSchedulerConformance(SchedulerConformance):
    scheduler_class = NoScheduler


class TestMedianStoppingConformance(SchedulerConformance):
    scheduler_class = MedianStopping
    scheduler_options = {"n_startup_trials": 3}


class TestAshaConformance(SchedulerConformance):
    scheduler_class = SuccessiveHalving
    scheduler_options = {"max_resource": 9, "reduction_factor": 3}


class TestPausingAshaConformance(SchedulerConformance):
    scheduler_class = SuccessiveHalving
    scheduler_options = {"max_resource": 9, "reduction_factor": 3, "pause": True}


class TestHyperbandConformance(SchedulerConformance):
    scheduler_class = Hyperband
    scheduler_options = {"max_resource": 9, "reduction_factor": 3, "pause": True}


class TestBohbConformance(SchedulerConformance):
    scheduler_class = BOHB
    scheduler_options = {"max_resource": 9, "reduction_factor": 3}


class TestAutoSchedulerConformance(SchedulerConformance):
    scheduler_class = AutoScheduler
    scheduler_options = {"max_resource": 9}


class TestPopulationBasedTrainingConformance(SchedulerConformance):
    scheduler_class = PopulationBasedTraining
    scheduler_options = {"max_resource": 9, "population_size": 4, "perturbation_interval": 3}


class TestCurveExtrapolationConformance(SchedulerConformance):
    scheduler_class = CurveExtrapolation
    scheduler_options = {"max_resource": 9}


def test_every_registered_scheduler_has_a_conformance_class() -> None:
    tested = {cls.scheduler_class for cls in SchedulerConformance.__subclasses__()}
    assert set(SCHEDULERS.values()) <= tested
