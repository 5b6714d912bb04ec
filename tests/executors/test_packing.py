"""Packing decisions from recorded measurements: MiniLM-L6 on SST-2 at batch 32 on one H100 (one process
42.8 steps/s; 4 processes 158, 8 make 240, 14 make 284), and a model whose memory limits the packing."""

from __future__ import annotations

import pytest

from lmtune.exceptions import ConfigError
from lmtune.executors.packing import Measurement, choose_packing, measure, next_level

GIB = 1 << 30
H100 = 80 * GIB
MINILM = {1: 42.8, 2: 84.0, 4: 158.0, 8: 240.0, 16: 290.0, 32: 296.0}


def _measured(levels: list[int], rates: dict[int, float], gib_per_trial: float) -> list[Measurement]:
    return [Measurement(n, rates[n], int(n * gib_per_trial * GIB)) for n in levels]


def test_doubling_goes_on_while_throughput_rises_and_stops_when_it_flattens() -> None:
    seen: list[Measurement] = []
    while (level := next_level(seen, H100)) is not None:
        seen.append(Measurement(level, MINILM[level], int(level * 1.5 * GIB)))
    assert [m.trials for m in seen] == [1, 2, 4, 8, 16, 32]
    decision = choose_packing(seen, H100)
    assert decision.trials == 16  # 32 adds only 2%: not worth halving each trial's speed
    assert decision.steps_per_second == 290.0


def test_memory_caps_the_packing_even_where_throughput_would_rise() -> None:
    seen: list[Measurement] = []
    while (level := next_level(seen, H100)) is not None:
        seen.append(Measurement(level, MINILM.get(level, 100.0 * level), int(level * 12 * GIB)))
    assert max(m.trials for m in seen) == 6  # 6 x 12 GiB fits in 90% of 80 GiB, 8 would not
    assert choose_packing(seen, H100).trials == 6


def test_a_packing_that_does_not_help_keeps_one_trial() -> None:
    seen = _measured([1, 2], {1: 300.0, 2: 305.0}, 2.0)  # a large model already fills the GPU
    assert next_level(seen, H100) is None
    assert choose_packing(seen, H100).trials == 1


def test_a_trial_larger_than_the_gpu_is_reported() -> None:
    decision = choose_packing([Measurement(1, 10.0, 90 * GIB)], H100)
    assert decision.trials == 1 and "memory" in decision.reason


def test_bad_measurements_are_rejected() -> None:
    with pytest.raises(ConfigError, match="steps_per_second"):
        Measurement(2, 0.0, 0)
    with pytest.raises(ConfigError, match="at least one"):
        choose_packing([], H100)


def test_measure_times_a_real_step() -> None:
    torch = pytest.importorskip("torch")
    x = torch.randn(64, 64)
    result = measure(lambda: x @ x, trials=4, warmup=1, steps=5)
    assert result.trials == 4 and result.steps_per_second > 0
    if not torch.cuda.is_available():
        assert result.peak_bytes == 0
