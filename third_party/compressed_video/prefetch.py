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
from typing import Callable, Iterator, Tuple, TypeVar

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


def background(make_items: Callable[[Callable[[str], None]], Iterator[T]], depth: int,
               name: str = "prefetch", category: type = UserWarning,
               join_timeout: float = 10.0, nice: int = 0) -> Iterator[Tuple[T, float]]:
    """Yields (item, producer seconds) from make_items(warn) run in a background thread.
    nice > 0 lowers that thread's scheduling priority by as much (Linux; elsewhere it is left
    as it is): the consumer's own threads then take a core from it at once, and the producer
    runs on the time they leave."""
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
        thread.join(timeout=join_timeout)
