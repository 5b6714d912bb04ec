"""The study file's ``scheduler:`` section."""

from __future__ import annotations

import pytest

from lmtune.exceptions import ConfigError
from lmtune.schedulers import (
    BOHB,
    CurveExtrapolation,
    Hyperband,
    MedianStopping,
    NoScheduler,
    PopulationBasedTraining,
    SuccessiveHalving,
    scheduler_from_config,
)


@pytest.mark.parametrize(
    ("config", "cls"),
    [
        (
            {
                "name": "asha",
                "resource": "epoch",
                "min_resource": 1,
                "max_resource": 5,
                "reduction_factor": 3,
            },
            SuccessiveHalving,
        ),
        ({"name": "hyperband", "max_resource": 27, "pause": True}, Hyperband),
        ({"name": "bohb", "max_resource": 9, "model": "tpe"}, BOHB),
        ({"name": "median", "min_resource": 2}, MedianStopping),
        ({"name": "pbt", "max_resource": 10, "population_size": 4}, PopulationBasedTraining),
        ({"name": "curve", "max_resource": 10}, CurveExtrapolation),
        ({"name": "none"}, NoScheduler),
    ],
)
def test_valid_configs_build_their_scheduler(config, cls):
    assert type(scheduler_from_config(config)) is cls


def test_asha_stops_by_default_and_pauses_on_request():
    assert scheduler_from_config({"name": "asha", "max_resource": 5}).pause is False
    assert scheduler_from_config({"name": "asha", "max_resource": 5, "pause": True}).pause is True


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"name": "sha2"}, "scheduler.name must be one of"),
        ({"max_resource": 5}, "scheduler.name must be one of"),
        ({"name": "asha"}, "scheduler.max_resource is required"),
        (
            {"name": "asha", "max_resource": 5, "reduction_factor": 1},
            "reduction_factor must be a number >= 2",
        ),
        ({"name": "asha", "max_resource": 5, "min_resource": 6}, "min_resource must be <= max_resource"),
        ({"name": "asha", "max_resource": 0}, "max_resource must be a positive integer"),
        ({"name": "asha", "max_resource": 5, "pause": "yes"}, "scheduler.pause must be true or false"),
        ({"name": "asha", "max_resource": 5, "resource": "hours"}, "scheduler.resource must be one of"),
        ({"name": "asha", "max_resource": 5, "eta": 3}, "scheduler.eta is not an option of scheduler 'asha'"),
        (
            {"name": "hyperband", "max_resource": 5, "n_brackets": 4},
            "n_brackets must be an integer from 1 to 3",
        ),
        ({"name": "bohb", "max_resource": 5, "model": "smac"}, "scheduler.model must be one of"),
        (
            {"name": "median", "max_resource": 5},
            "scheduler.max_resource is not an option of scheduler 'median'",
        ),
        ({"name": "pbt", "max_resource": 5, "quantile": 0.9}, "scheduler.quantile must be in (0, 0.5]"),
        ({"name": "curve", "max_resource": 5, "probability": 1.5}, "scheduler.probability must be in (0, 1)"),
        ("asha", "scheduler must be a mapping"),
    ],
)
def test_invalid_configs_name_the_field(config, message):
    with pytest.raises(ConfigError) as info:
        scheduler_from_config(config)
    assert message in str(info.value)
