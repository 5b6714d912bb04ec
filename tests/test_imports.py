from __future__ import annotations

import pytest

from lmtune._imports import require
from lmtune.exceptions import MissingDependencyError


def test_a_missing_extra_names_the_pip_command() -> None:
    with pytest.raises(MissingDependencyError, match=r"pip install 'lmtune\[viz\]'"):
        require("no_such_module_for_lmtune", "viz")
    assert require("json", "core").dumps([]) == "[]"
