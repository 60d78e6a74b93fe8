"""Outputs written whole or not at all (DEVELOPERS.md): one helper for every writer.

    with atomic_write("results/benchmark.json") as tmp:   # tmp: a unique name in results/
        with open(tmp, "w") as f:
            json.dump(obj, f)
    # here results/benchmark.json is the complete new file (os.replace); on any exception,
    # KeyboardInterrupt included, the temporary file is removed and the old file is untouched.

The temporary name is unique (tempfile.mkstemp in the target folder, so two processes writing the
same output never share it, and os.replace stays on one file system) and keeps the target's
extension (writers such as h5py, matplotlib or FFmpeg pick the format from it). The target folder
is created when missing. third_party/compressed_video keeps its own copy (it must not import
taplab_tf).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Iterator


@contextlib.contextmanager
def atomic_write(path: str, makedirs: bool = True) -> Iterator[str]:
    """Yields a unique temporary path beside `path`; on success renames it onto `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if makedirs:
        os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    stem, ext = os.path.splitext(base)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".partial{ext}", dir=folder)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the output gets the usual mode
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str, text: str) -> str:
    """Writes text to path atomically; returns path."""
    with atomic_write(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
    return path


def write_json(path: str, obj, **dump_kwargs) -> str:
    """Writes obj as JSON (indent 2, trailing newline) to path atomically; returns path."""
    dump_kwargs.setdefault("indent", 2)
    with atomic_write(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, **dump_kwargs)
            f.write("\n")
    return path
