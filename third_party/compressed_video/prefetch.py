"""A bounded background iterator: the one thread helper of the reader and of its consumers.

`background(make_items, depth, name)` runs `make_items(warn)` (a function returning an iterator)
in a daemon thread that stays at most `depth` items ahead of the consumer, and yields
(item, seconds the producer spent on it). What the producer reports through `warn(message)` is
issued as a warning of `category` from the consumer's thread, in order with the items (warnings
raised inside another thread escape pytest.warns and the caller's filters). An exception of the
producer is raised in the consumer; leaving the loop early stops the thread and closes the
producer's iterator (which closes a video file).

Decoding, colour conversion and the residual pass release the GIL (FFmpeg, OpenCV, numpy, the
native kernel), so they overlap the consumer's own work, e.g. a TensorFlow model.

A Gate (optional) says when the producer may start its next item: while the consumer holds it
open, or while fewer than `low_water` items wait in the queue (so the consumer is never starved
and never deadlocks). A consumer whose own work is disturbed by the producer's (decoding and the
residual pass stream ~25 MB a frame at 1024x2048, evicting the caches of small steps) opens it
for the stretches that stream memory anyway (the engine: while phi runs).

The reader uses it for open_compressed(prefetch=N); an application may use it for its own queue
of decoded frames (it wraps any iterable), so it lives here: this package imports nothing of its
callers.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Tuple, TypeVar

T = TypeVar("T")

_ITEM, _WARNING, _ERROR, _END = range(4)


def _lower_priority(nice: int) -> None:
    """This thread's nice value raised by `nice` (a Linux thread is its own task); a platform
    without per-thread priorities keeps it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        pass


class Gate:
    """When background()'s producer may start its next item: while open, or while fewer than
    `low_water` (>= 1) items are ready for the consumer. Starts open."""

    def __init__(self, low_water: int = 2):
        if int(low_water) != low_water or low_water < 1:
            raise ValueError(f"low_water must be a positive integer, got {low_water!r}")
        self.low_water = int(low_water)
        self._cond = threading.Condition()
        self._open = True

    def open(self) -> None:
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._open = False

    @contextmanager
    def opened(self):
        """Open for the duration of a `with` block, closed after."""
        self.open()
        try:
            yield self
        finally:
            self.close()

    def poke(self, ready: Optional[int] = None) -> None:
        """The consumer took an item (`ready` left in the queue): a waiting producer looks at
        the queue again, where it may then start one (it is not woken only to wait again: its
        thread would take the GIL from the consumer for nothing). None: wake it regardless."""
        if ready is not None and ready >= self.low_water:
            return
        with self._cond:
            self._cond.notify_all()

    def wait(self, ready: Callable[[], int], stop: threading.Event) -> None:
        """Blocks the producer while closed and `ready()` >= low_water (or until stop is set)."""
        with self._cond:
            while not self._open and ready() >= self.low_water and not stop.is_set():
                self._cond.wait(0.05)


def background(make_items: Callable[[Callable[[str], None]], Iterator[T]], depth: int,
               name: str = "prefetch", category: type = UserWarning,
               join_timeout: float = 10.0, nice: int = 0,
               gate: Optional[Gate] = None) -> Iterator[Tuple[T, float]]:
    """Yields (item, producer seconds) from make_items(warn) run in a background thread.
    nice > 0 lowers that thread's scheduling priority by as much (Linux; elsewhere it is left
    as it is): the consumer's own threads then take a core from it at once, and the producer
    runs on the time they leave. gate: the producer starts each item only when the Gate lets
    it (module docstring)."""
    if int(depth) != depth or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    q: "queue.Queue" = queue.Queue(maxsize=int(depth))
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        items = None
        if nice > 0:
            _lower_priority(int(nice))
        try:
            items = iter(make_items(lambda msg: put((_WARNING, msg, 0.0))))
            while True:
                if gate is not None:
                    gate.wait(q.qsize, stop)
                    if stop.is_set():
                        return
                t0 = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    break
                if not put((_ITEM, item, time.perf_counter() - t0)):
                    return
            put((_END, None, 0.0))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put((_ERROR, e, 0.0))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, item, seconds = q.get()
            if gate is not None:
                gate.poke(q.qsize())
            if kind == _ITEM:
                yield item, seconds
            elif kind == _WARNING:
                warnings.warn(item, category, stacklevel=2)
            elif kind == _ERROR:
                raise item
            else:
                return
    finally:
        stop.set()
        if gate is not None:
            gate.poke()
        thread.join(timeout=join_timeout)
