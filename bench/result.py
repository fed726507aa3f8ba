"""What a benchmark reports: one measured figure against its baseline and its goal."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: float
    # How many times slower than the baseline (>= 1 means slower), whatever the unit:
    # value / baseline for times, baseline / value for rates.
    ratio: float
    goal: str
    met: bool
    notes: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
