"""Round-robin timing (taplab_tf.timing): call order, warm-up, medians, the median round."""
import pytest

from taplab_tf import timing


class FakeClock:
    """A clock that each variant advances by its own cost, in a log of calls."""

    def __init__(self):
        self.now = 0.0
        self.log = []

    def __call__(self):
        return self.now

    def variant(self, name, costs):
        costs = iter(costs)

        def call():
            self.log.append(name)
            self.now += next(costs)
        return call


def test_variants_are_called_in_turn_round_after_round_after_their_warm_up():
    clock = FakeClock()
    fns = {"a": clock.variant("a", [100, 100, 1, 3, 2]), "b": clock.variant("b", [50, 5, 4, 6])}
    got = timing.round_robin(fns, repeats=3, warmup=1, clock=clock)
    # warm-ups of each variant first, then a, b, a, b, a, b
    assert clock.log == ["a", "b", "a", "b", "a", "b", "a", "b"]
    assert got["a"].seconds == (100, 1, 3) and got["b"].seconds == (5, 4, 6)
    assert got["a"].median == 3 and got["a"].best == 1
    assert got["b"].median == 5 and got["b"].best == 4


def test_warm_up_calls_are_not_timed():
    clock = FakeClock()
    got = timing.round_robin({"a": clock.variant("a", [1000, 1000, 2, 4])}, repeats=2, warmup=2,
                             clock=clock)
    assert clock.log == ["a"] * 4 and got["a"].seconds == (2, 4) and got["a"].median == 3


def test_rounds_returns_each_variants_results_in_round_order_and_reports_each_call():
    seen = []
    calls = iter(range(100))
    got = timing.rounds({"x": lambda: ("x", next(calls)), "y": lambda: ("y", next(calls))},
                        repeats=2, warmup=1, on_call=lambda r, name, res: seen.append((r, res)))
    # warm-up consumed 0 (x) and 1 (y); the rounds interleave 2..5
    assert got == {"x": [("x", 2), ("x", 4)], "y": [("y", 3), ("y", 5)]}
    assert seen == [(0, ("x", 2)), (0, ("y", 3)), (1, ("x", 4)), (1, ("y", 5))]


def test_the_real_clock_measures_a_sleep():
    import time
    got = timing.round_robin({"sleep": lambda: time.sleep(0.02)}, repeats=2)
    assert 0.015 < got["sleep"].best <= got["sleep"].median < 1.0


def test_lower_median_keeps_a_whole_record():
    rows = [{"fps": 3.0, "n": 1}, {"fps": 1.0, "n": 2}, {"fps": 2.0, "n": 3}, {"fps": 4.0, "n": 4}]
    assert timing.lower_median(rows, key=lambda r: r["fps"]) == {"fps": 2.0, "n": 3}
    assert timing.lower_median(rows[:3], key=lambda r: r["fps"])["n"] == 3
    assert timing.lower_median(rows[:1], key=lambda r: r["fps"])["n"] == 1
    with pytest.raises(ValueError, match="no items"):
        timing.lower_median([], key=float)


@pytest.mark.parametrize("kwargs, message", [
    (dict(fns={"a": print}, repeats=0), "repeats"),
    (dict(fns={"a": print}, repeats=1.5), "repeats"),
    (dict(fns={"a": print}, repeats=True), "repeats"),
    (dict(fns={"a": print}, repeats=1, warmup=-1), "warmup"),
    (dict(fns={}, repeats=1), "fns"),
    (dict(fns=[print], repeats=1), "fns"),
    (dict(fns={"a": 3}, repeats=1), "not callable"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    for fn in (timing.round_robin, timing.rounds):
        with pytest.raises(ValueError, match=message):
            fn(**kwargs)
