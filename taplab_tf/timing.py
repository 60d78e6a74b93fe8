"""Round-robin timing: several variants timed in turn, round after round, side by side.

On a shared machine the load of other processes comes and goes. Timing variant A for a while and
then variant B lets a slow spell land on one of them alone; calling them in turn, round after
round, spreads it over all of them alike, so that their ratios hold when the absolute times move.
Every benchmark of the project times its variants this way, through this module: the warp ops
(experiments.benchmark_warp), the reader's modes (experiments.benchmark_reader), TapLab's module
sets (taplab_tf.pipeline.benchmark.speed_table) and the networks (taplab_tf.models.profile).

    times = round_robin({"cpp": lambda: run_cpp(), "tf": lambda: run_tf()}, repeats=10, warmup=2)
    times["cpp"].median, times["cpp"].best          # seconds of one call

    # variants that measure themselves (a call returns a record, e.g. frames and seconds):
    records = rounds({"perframe": lambda: time_it(a), "ffw": lambda: time_it(b)}, repeats=3)
    lower_median(records["ffw"], key=lambda r: r["fps"])   # the median round's record

A variant's timed call must include fetching its result (e.g. `.numpy()` on a TensorFlow
output), or asynchronous work is left out of the time.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Timing:
    """The wall-clock seconds of one variant's timed calls, in round order."""
    seconds: Tuple[float, ...]

    @property
    def median(self) -> float:
        """The median call (the mean of the two middle ones for an even count)."""
        return float(statistics.median(self.seconds))

    @property
    def best(self) -> float:
        """The fastest call: the least disturbed by other load."""
        return float(min(self.seconds))


def _check(fns: Mapping[str, Callable], repeats: int, warmup: int) -> None:
    if not isinstance(fns, Mapping) or not fns:
        raise ValueError(f"fns: a non-empty mapping of name -> callable expected, got {fns!r}")
    bad = [name for name, fn in fns.items() if not callable(fn)]
    if bad:
        raise ValueError(f"fns: not callable: {bad}")
    for name, value, least in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}: must be an integer >= {least}, got {value!r}")


def rounds(fns: Mapping[str, Callable[[], T]], repeats: int, warmup: int = 0,
           on_call: Optional[Callable[[int, str, T], None]] = None) -> Dict[str, List[T]]:
    """Calls each variant `warmup` times (results dropped; tracing, caches), then `repeats` rounds
    in which every variant is called once, in the mapping's order. Returns each variant's results
    in round order. on_call(round_index, name, result) runs after each call of a round (progress
    lines), outside the variant's own measurement."""
    _check(fns, repeats, warmup)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    results: Dict[str, List[T]] = {name: [] for name in fns}
    for r in range(repeats):
        for name, fn in fns.items():
            result = fn()
            results[name].append(result)
            if on_call is not None:
                on_call(r, name, result)
    return results


def round_robin(fns: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 0,
                clock: Callable[[], float] = time.perf_counter) -> Dict[str, Timing]:
    """Times each variant's calls round-robin (see rounds): {name: Timing} of the `repeats` timed
    calls per variant, after `warmup` untimed ones. `clock` is the time source (seconds)."""
    def timed(fn):
        def call():
            t0 = clock()
            fn()
            return clock() - t0
        return call

    _check(fns, repeats, warmup)
    got = rounds({name: timed(fn) for name, fn in fns.items()}, repeats, warmup)
    return {name: Timing(tuple(float(s) for s in seconds)) for name, seconds in got.items()}


def lower_median(items: Sequence[T], key: Callable[[T], float]) -> T:
    """The item whose key is the median (of an even count, the lower of the two middle ones), so
    that a record measured in one round is kept whole rather than averaged with another."""
    if not items:
        raise ValueError("lower_median: no items")
    ordered = sorted(items, key=key)
    return ordered[(len(ordered) - 1) // 2]
