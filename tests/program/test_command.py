"""A trial's command line from the template: fields, format specs, `--name value` pairs, conditional parameters."""

from __future__ import annotations

import pytest

from lmtune.exceptions import ConfigError
from lmtune.program.command import CommandTemplate

KNOWN = ["learning_rate", "optimizer", "momentum", "layers"]


def no_reserved(name: str) -> str:
    raise AssertionError(f"{name} was not used")


def test_fields_take_each_trials_values_with_their_format_spec() -> None:
    template = CommandTemplate.parse(
        [
            "python",
            "train.py",
            "--lr",
            "{learning_rate}",
            "--lr-text={learning_rate:.1e}",
            "--layers",
            "{layers}",
        ],
        KNOWN,
    )
    argv = template.render({"learning_rate": 3e-05, "layers": 4, "optimizer": "adam"}, no_reserved)
    assert argv == ["python", "train.py", "--lr", "3e-05", "--lr-text=3.0e-05", "--layers", "4"]


def test_without_fields_every_active_parameter_is_appended_as_a_pair() -> None:
    template = CommandTemplate.parse(["python", "train.py", "--epochs", "3"], KNOWN)
    argv = template.render({"learning_rate": 0.1, "optimizer": "sgd", "momentum": True}, no_reserved)
    assert argv == [
        "python", "train.py", "--epochs", "3",
        "--learning_rate", "0.1", "--optimizer", "sgd", "--momentum", "true",
    ]  # fmt: skip


def test_an_inactive_parameter_is_left_out_with_its_option() -> None:
    template = CommandTemplate.parse(
        [
            "python",
            "train.py",
            "--optimizer",
            "{optimizer}",
            "--momentum",
            "{momentum}",
            "--m={momentum}",
            "-v",
        ],
        KNOWN,
    )
    assert template.render({"optimizer": "adam"}, no_reserved) == [
        "python",
        "train.py",
        "--optimizer",
        "adam",
        "-v",
    ]
    assert template.render({"optimizer": "sgd", "momentum": 0.9}, no_reserved) == [
        "python", "train.py", "--optimizer", "sgd", "--momentum", "0.9", "--m=0.9", "-v",
    ]  # fmt: skip


def test_reserved_fields_and_literal_braces() -> None:
    template = CommandTemplate.parse(
        ["python", "train.py", "--out", "{checkpoint_dir}/model", "--tag", "run{trial_number}", '{{"a": 1}}'],
        KNOWN,
    )
    values = {"checkpoint_dir": "/ckpt/trial_00007", "trial_number": 7}
    argv = template.render({}, values.__getitem__)
    assert argv == ["python", "train.py", "--out", "/ckpt/trial_00007/model", "--tag", "run7", '{"a": 1}']


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            ["python", "train.py", "--lr", "{lr}"],
            r"`program.command\[3\]` names \{lr\}.*are layers, learning_rate",
        ),
        (["python", "train.py", "{learning_rate"], r"`program.command\[2\]`: .*literal brace"),
        (["python", "train.py", "{0}"], r"\{0\} in '\{0\}' is not a parameter name"),
        (["{learning_rate}"], r"`program.command\[0\]` is the program to run"),
        ([], r"`program.command` is empty"),
    ],
)
def test_bad_templates_name_the_argument_and_the_fix(command: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CommandTemplate.parse(command, KNOWN)
