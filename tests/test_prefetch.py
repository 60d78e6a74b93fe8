"""third_party.compressed_video.prefetch.background: the bounded reader thread of the reader and
the engine (order, warnings, errors, early exit, bounded look-ahead)."""
import os
import sys
import threading
import time
import warnings

import pytest

from third_party.compressed_video import ReaderWarning
from third_party.compressed_video.prefetch import Gate, background


def test_items_warnings_and_timing_arrive_in_order():
    def make(warn):
        for i in range(5):
            if i == 2:
                warn("between 1 and 2")
            time.sleep(0.01 if i == 3 else 0.0)
            yield i

    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for item, seconds in background(make, 2, category=ReaderWarning):
            seen.append((item, seconds, len(caught)))
    assert [s[0] for s in seen] == [0, 1, 2, 3, 4]
    assert [s[2] for s in seen] == [0, 0, 1, 1, 1]  # the warning comes before item 2
    assert caught[0].category is ReaderWarning and "between 1 and 2" in str(caught[0].message)
    assert seen[3][1] >= 0.009  # the producer's own time for item 3


def test_producer_errors_reach_the_consumer_after_its_items():
    def make(warn):
        yield "a"
        raise ValueError("damaged stream")

    got = []
    with pytest.raises(ValueError, match="damaged stream"):
        for item, _ in background(make, 1):
            got.append(item)
    assert got == ["a"]


def test_leaving_early_stops_the_thread_and_closes_the_producer():
    closed = threading.Event()
    produced = []

    def make(warn):
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    for item, _ in background(make, 3, name="test-prefetch"):
        if item == 1:
            break
    assert closed.wait(5)
    assert len(produced) <= 1 + 1 + 3 + 1  # consumed, in hand, queued, blocked on put
    assert not any(t.name == "test-prefetch" for t in threading.enumerate())


@pytest.mark.parametrize("depth", [0, -1, 1.5])
def test_depth_must_be_positive(depth):
    with pytest.raises(ValueError, match="depth"):
        next(background(lambda warn: iter([1]), depth))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_nice_lowers_the_producer_threads_priority_only():
    def make(warn):
        yield os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert [p for p, _ in background(make, 1, nice=5)] == [min(19, base + 5)]
    assert [p for p, _ in background(make, 1)] == [base]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the consumer's


def test_a_closed_gate_holds_the_producer_at_low_water_until_opened():
    """Closed, the gate lets the producer start an item only while fewer than low_water wait;
    opened, it runs up to the queue's depth."""
    produced = []

    def make(warn):
        for i in range(20):
            produced.append(i)
            yield i

    gate = Gate(low_water=1)
    gate.close()
    items = background(make, 3, gate=gate)
    assert next(items)[0] == 0
    time.sleep(0.3)
    assert produced == [0, 1]  # item 1 waits in the queue; the producer waits on the gate
    with gate.opened():
        time.sleep(0.3)
        assert len(produced) == 5  # items 1-3 fill the queue, item 4 waits to be put
    assert [i for i, _ in items] == list(range(1, 20))  # closed again: never starved
    assert produced == list(range(20))


def test_gate_low_water_must_be_positive():
    with pytest.raises(ValueError, match="low_water"):
        Gate(low_water=0)
