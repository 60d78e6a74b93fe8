"""Compile-on-first-use of native libraries: the one builder behind every .so of this project.

Used by the project's TF op library and its CUDA kernels (nvcc), and by
third_party.compressed_video.native (the reader's residual kernel). It imports nothing beyond the
standard library: no TensorFlow and no application package.

What it does, the same way for every caller:

  * the cache: ``cache_dir(env_var, default_name, kind)`` is $env_var (or ~/.cache/default_name)
    /kind; a library lives at <cache>/<tag>/<name>.so where ``tag(...)`` is the first 16 hex
    digits of the sha256 of its sources and its full compiler command (plus a variant suffix),
    so another source, compiler, flag or TF version is another folder and nothing goes stale;
  * the lock: ``ensure_built`` serialises concurrent builders (threads, pytest-xdist workers,
    several apps) on an fcntl lock next to that folder, and whoever takes it second finds the
    library built;
  * the atomic rename: ``staged(target)`` hands out a temporary name in a private folder next to
    the target and renames the finished file into place, so a reader sees no file or the
    complete one, never a partial one;
  * the one-line error: ``run(steps, log_dir, error)`` runs the compiler commands (at once), and
    the first that fails raises ``error`` with one line: what failed, its exit status, the first
    error line of its output and where the full log was kept (<cache>/<tag>/build-error.log).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile
from typing import Callable, Iterable, Iterator, Optional, Sequence, Tuple, Type, Union


class BuildError(RuntimeError):
    """A native library could not be built (no compiler, compile or link error, no cache)."""


def cache_dir(env_var: str, default_name: str, kind: str) -> pathlib.Path:
    """$env_var (default ~/.cache/<default_name>) / kind."""
    root = os.environ.get(env_var) or os.path.join("~", ".cache", default_name)
    return pathlib.Path(root).expanduser() / kind


def find_tool(name: str, error: Type[Exception] = BuildError, hint: str = "") -> str:
    """The full path of the program `name` on PATH (or `name` itself when it is a path), else
    error("C++ compiler 'name' not found on PATH (hint)")."""
    path = shutil.which(name)
    if path is None:
        raise error(f"C++ compiler {name!r} not found on PATH" + (f" ({hint})" if hint else ""))
    return path


def tag(parts: Iterable[Union[bytes, str]], prefix: str = "", variant: Optional[str] = None
        ) -> str:
    """prefix + the first 16 hex digits of the sha256 of `parts` (sources, names, the command
    line) + '-variant' when a variant is given."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return prefix + digest.hexdigest()[:16] + (f"-{variant}" if variant else "")


def first_error(log: str) -> str:
    """The line of a compiler log that says what failed: the first with 'error:' (a path may
    contain 'error' too), else the first with 'error', else the last non-empty line."""
    for marker in ("error:", "error"):
        for line in log.splitlines():
            if marker in line.lower():
                return line.strip()
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def run(steps: Sequence[Tuple[str, Sequence[str]]], log_dir: pathlib.Path,
        error: Type[Exception] = BuildError) -> None:
    """Runs the commands of `steps` ((description, argv) pairs) all at once and waits for them.
    The first that fails (in the order given) raises error('<description> failed (exit N):
    <first error line> [full log: <log_dir>/build-error.log]'); a program that cannot be started
    raises error('cannot run <program>: <reason>')."""
    procs = []
    try:
        for description, argv in steps:
            log = tempfile.TemporaryFile("w+")
            try:
                proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT)
            except OSError as e:
                log.close()
                raise error(f"cannot run {argv[0]}: {e.strerror}") from None
            procs.append((description, log, proc))
        failed = None
        for description, log, proc in procs:
            proc.wait()
            log.seek(0)
            text = log.read()
            if proc.returncode != 0 and failed is None:
                failed = (description, proc.returncode, text)
    finally:
        for _, log, proc in procs:
            if proc.poll() is None:
                proc.wait()
            log.close()
    if failed is not None:
        description, code, text = failed
        kept = pathlib.Path(log_dir) / "build-error.log"
        kept.write_text(text)
        raise error(f"{description} failed (exit {code}): {first_error(text)} [full log: {kept}]")


@contextlib.contextmanager
def staged(target: pathlib.Path) -> Iterator[str]:
    """A private temporary folder next to `target`: yields the path to build `target` under
    (in that folder; other intermediate files may go there too) and renames it atomically onto
    `target` when the block ends without an error. The folder is removed either way."""
    target = pathlib.Path(target)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        partial = os.path.join(tmp, target.name)
        yield partial
        os.replace(partial, target)  # atomic: readers see the old file or the complete new one


def ensure_built(target: pathlib.Path, compile_fn: Callable[[pathlib.Path], None],
                 force: bool = False, error: Type[Exception] = BuildError,
                 what: str = "cache directory") -> pathlib.Path:
    """Returns `target`, calling compile_fn(target) first when it does not exist (or if force)
    under an fcntl lock next to its folder, so that concurrent callers compile once.
    compile_fn must create `target` whole (``staged``). A cache that cannot be created or
    written raises error('cannot create the <what> <folder>: <reason>')."""
    target = pathlib.Path(target)
    if target.exists() and not force:
        return target
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder.with_name(folder.name + ".lock"), "w")
    except OSError as e:
        raise error(f"cannot create the {what} {folder}: {e.strerror or e}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        try:
            if force or not target.exists():
                compile_fn(target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target
