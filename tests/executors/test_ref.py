"""What a trial process receives: the study's own sampler, pickled, suggesting what the parent's would."""

from __future__ import annotations

import pickle
from pathlib import Path

import lmtune
from lmtune.executors.ref import StudyRef
from lmtune.history import TrialHistory
from lmtune.samplers import AutoSampler
from lmtune.space import SearchSpace

SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
        "layers": {"type": "int", "low": 1, "high": 12},
        "optimizer": {"type": "categorical", "choices": ["adamw", "sgd", "adagrad"]},
    }
)


def _objective(trial: lmtune.Trial) -> float:
    return trial.params["lr"] * trial.params["layers"] + (trial.params["optimizer"] == "sgd")


def test_pickled_auto_sampler_suggests_what_the_original_does(tmp_path: Path) -> None:
    original = AutoSampler(seed=7, n_trials=40, gp_max_params=2, grid_max_size=5)
    study = lmtune.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", space=SPACE, sampler=original)
    study.optimize(_objective, n_trials=12)  # a history for the model-based samplers to fit
    history = study.history()
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is AutoSampler and copy.describe() == original.describe()
    for number in (12, 13, 40):
        assert copy.choose(SPACE, history)[1] == original.choose(SPACE, history)[1]
        assert copy.suggest(SPACE, history, number) == original.suggest(SPACE, history, number)
    empty = TrialHistory((), "minimize", SPACE)
    assert copy.suggest(SPACE, empty, 0) == original.suggest(SPACE, empty, 0)


def test_study_ref_carries_the_default_sampler_itself(tmp_path: Path) -> None:
    study = lmtune.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", space=SPACE, seed=11)
    ref = pickle.loads(pickle.dumps(StudyRef.from_study(study, _objective)))
    assert isinstance(ref.sampler, AutoSampler) and ref.sampler.seed == study.sampler.seed == 11
    reopened = ref.open()
    assert reopened.sampler.describe() == study.sampler.describe()
