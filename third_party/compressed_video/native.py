"""Native (C++) residual kernel of the reader: builder, loader and numpy wrappers.

    python -m third_party.compressed_video.native                    # rebuild now
    python -m third_party.compressed_video.native --variant=address  # AddressSanitizer build
    python -m third_party.compressed_video.native --variant=baseline # SSE2-only build (no clones)
    python -m third_party.compressed_video.native --print-path

native/residual.cc does, in one pass over a P-frame with integer or half-pel block vectors, the
MPEG-4 half-pel motion compensation (bit-exact with motion.MotionCompensator.half_pel), the int16
residual, the per-pixel channel sum of |Res| (uint16) and the frame's sum of |Res|; a second entry
point counts, per block, the pixels whose channel sum reaches a limit. Both run on up to
min(4, cores) threads and are called through ctypes, which releases the GIL for the call (so the
reader's prefetch thread computes residuals while the caller runs its model).

The library is compiled on first use into a cache directory, without TensorFlow or the application:

    $COMPRESSED_VIDEO_CACHE/native/<tag>/_cv_residual.so   (default ~/.cache/compressed_video)

where <tag> is the sha256 of the source and the compiler command[-<variant>]. Concurrent builders
serialise on an fcntl lock next to that directory; the library is written under a temporary name
and atomically renamed (third_party.native_build, the builder shared with the TF op libraries).
Compiler: $CXX or g++ (C++17, -O3; no -march flags: on x86-64 the row
kernel carries SSSE3/AVX2 clones chosen at load time, so one build runs on any x86-64).

Run time: COMPRESSED_VIDEO_NATIVE=0 forces the numpy/OpenCV path; COMPRESSED_VIDEO_NATIVE_VARIANT=
address|baseline loads a test build. When the compiler is missing or the build fails, backend() is
'numpy', the reader uses the numpy/OpenCV path, and one logging.warning says why (BuildError: one
line naming what failed; the full compiler log is kept next to the library).

AddressSanitizer run of the kernel tests (clean):

    python -m third_party.compressed_video.native --variant=address
    LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)" \\
    ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:log_path=/tmp/asan-cv \\
    COMPRESSED_VIDEO_NATIVE_VARIANT=address python -m pytest -q tests/test_reader_native.py
"""
from __future__ import annotations

import ctypes
import logging
import os
import pathlib
import shlex
import sys
import threading
from typing import Optional, Tuple

import numpy as np

from third_party import native_build

LIBRARY_NAME = "_cv_residual.so"
SOURCE = pathlib.Path(__file__).resolve().parent / "native" / "residual.cc"
ABI_VERSION = 1
_VARIANT_FLAGS = {
    None: [],
    "address": ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"],
    "baseline": ["-DCV_NATIVE_NO_CLONES"],
}
_log = logging.getLogger(__name__)


class BuildError(native_build.BuildError):
    """The native kernel could not be built (no compiler, compile error)."""


def cache_root() -> pathlib.Path:
    return native_build.cache_dir("COMPRESSED_VIDEO_CACHE", "compressed_video", "native")


def compiler() -> str:
    return native_build.find_tool(os.environ.get("CXX", "g++"), BuildError,
                                  "install g++ or set $CXX")


def _flags(variant):
    return ["-std=c++17", "-O3", "-fPIC", "-shared", "-pthread", "-Wall",
            *_VARIANT_FLAGS[variant]]


def library_path(variant=None) -> pathlib.Path:
    """Where the library for this source and compiler command lives (may not exist yet)."""
    if variant not in _VARIANT_FLAGS:
        raise ValueError(f"variant must be one of {sorted(k for k in _VARIANT_FLAGS if k)} or "
                         f"None, got {variant!r}")
    try:
        source = SOURCE.read_bytes()
    except OSError as e:
        raise BuildError(f"cannot read the kernel source {SOURCE}: {e.strerror}") from None
    cxx = os.environ.get("CXX", "g++")
    tag = native_build.tag([source, shlex.join([cxx, *_flags(variant)])], variant=variant)
    return cache_root() / tag / LIBRARY_NAME


def _compile(target: pathlib.Path, variant) -> None:
    cxx = compiler()
    with native_build.staged(target) as partial:
        native_build.run([(f"compiling {SOURCE.name} with {cxx}",
                           [cxx, *_flags(variant), str(SOURCE), "-o", partial])],
                         target.parent, BuildError)


def ensure_built(force: bool = False, variant=None) -> pathlib.Path:
    """Path of the built library, compiling it first if needed (or if force)."""
    return native_build.ensure_built(library_path(variant), lambda t: _compile(t, variant),
                                     force=force, error=BuildError, what="cache directory")


def _open(path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))  # CDLL (not PyDLL): calls release the GIL
    lib.cv_native_abi_version.restype = ctypes.c_int
    lib.cv_native_abi_version.argtypes = []
    if lib.cv_native_abi_version() != ABI_VERSION:
        raise BuildError(f"{path}: ABI version {lib.cv_native_abi_version()}, "
                         f"expected {ABI_VERSION}")
    p, i = ctypes.c_void_p, ctypes.c_int
    lib.cv_residual.restype = ctypes.c_int64
    lib.cv_residual.argtypes = [p, p, i, i, p, i, i, i, p, p, i]
    lib.cv_block_counts.restype = ctypes.c_int
    lib.cv_block_counts.argtypes = [p, i, i, i, i, p, i]
    return lib


_lock = threading.Lock()
_state: dict = {}  # variant -> CDLL, or the reason it is unavailable (str)


def _variant():
    v = os.environ.get("COMPRESSED_VIDEO_NATIVE_VARIANT") or None
    return v if v in _VARIANT_FLAGS else None


def disabled() -> bool:
    """True when COMPRESSED_VIDEO_NATIVE=0 (or false/no/off) forces the numpy path."""
    return os.environ.get("COMPRESSED_VIDEO_NATIVE", "1").strip().lower() in ("0", "false", "no",
                                                                             "off")


def library() -> Optional[ctypes.CDLL]:
    """The loaded kernel library (built on first use), or None: disabled by the environment, or
    unavailable (logged once with the reason; ``unavailable_reason()`` repeats it)."""
    if disabled():
        return None
    variant = _variant()
    got = _state.get(variant)
    if got is None:
        with _lock:
            got = _state.get(variant)
            if got is None:
                try:
                    got = _open(ensure_built(variant=variant))
                except (BuildError, OSError) as e:
                    got = str(e).splitlines()[0] if str(e) else type(e).__name__
                    _log.warning("compressed_video: native residual kernel unavailable, using "
                                 "the numpy/OpenCV fallback (slower): %s", got)
                _state[variant] = got
    return None if isinstance(got, str) else got


def unavailable_reason() -> Optional[str]:
    """Why the native kernel is not used (None when it is)."""
    if disabled():
        return "disabled by COMPRESSED_VIDEO_NATIVE=0"
    library()
    got = _state.get(_variant())
    return got if isinstance(got, str) else None


def backend() -> str:
    """'native' when the C++ kernel is used for residuals, else 'numpy'."""
    return "native" if library() is not None else "numpy"


def half_pel_only(mv: np.ndarray) -> bool:
    """True when every vector component is a finite multiple of 1/2 (what the kernel handles)."""
    twice = np.asarray(mv, np.float32) * 2
    return bool((twice == np.round(twice)).all() and np.isfinite(twice).all())


def _ptr(a: Optional[np.ndarray]):
    return None if a is None else a.ctypes.data


def residual(cur: np.ndarray, prev: np.ndarray, mv: np.ndarray, block_size: int,
             want_residual: bool = True, want_chan_sum: bool = True, threads: int = 0
             ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], int]:
    """Half-pel motion compensation of ``prev`` by ``mv`` and comparison with ``cur`` (uint8
    [H, W, 3]; vectors float32 [ceil(H/B), ceil(W/B), 2], integer or half-pel: half_pel_only).
    Returns (Res int16 [H, W, 3] or None, channel sum of |Res| uint16 [H, W] or None, sum of |Res|
    over the frame). threads=0: min(4, cores)."""
    lib = library()
    if lib is None:
        raise RuntimeError(f"native kernel unavailable: {unavailable_reason()}")
    cur = np.ascontiguousarray(cur, np.uint8)
    prev = np.ascontiguousarray(prev, np.uint8)
    mv = np.ascontiguousarray(mv, np.float32)
    h, w = cur.shape[:2]
    if cur.shape != (h, w, 3) or prev.shape != cur.shape:
        raise ValueError(f"frames must be uint8 [H, W, 3] of one size, got {cur.shape} and "
                         f"{prev.shape}")
    gh, gw = -(-h // block_size), -(-w // block_size)
    if mv.shape != (gh, gw, 2):
        raise ValueError(f"motion grid {mv.shape} does not match {(gh, gw, 2)} for {h}x{w} "
                         f"frames and {block_size}px blocks")
    res = np.empty((h, w, 3), np.int16) if want_residual else None
    cs = np.empty((h, w), np.uint16) if want_chan_sum else None
    total = lib.cv_residual(_ptr(cur), _ptr(prev), h, w, _ptr(mv), gh, gw, block_size,
                            _ptr(res), _ptr(cs), int(threads))
    if total < 0:
        raise RuntimeError("native residual kernel rejected its arguments")
    return res, cs, int(total)


def block_counts(chan_sum: np.ndarray, limit: int, block_size: int = 16, threads: int = 0
                 ) -> np.ndarray:
    """int32 [ceil(H/B), ceil(W/B)]: per block (clipped at the border), the pixels whose channel
    sum (uint16 [H, W]) is >= limit."""
    lib = library()
    if lib is None:
        raise RuntimeError(f"native kernel unavailable: {unavailable_reason()}")
    cs = np.ascontiguousarray(chan_sum, np.uint16)
    h, w = cs.shape
    out = np.empty((-(-h // block_size), -(-w // block_size)), np.int32)
    limit = int(min(max(limit, 0), 1 << 16))
    if lib.cv_block_counts(_ptr(cs), h, w, block_size, limit, _ptr(out), int(threads)) != 0:
        raise RuntimeError("native block counter rejected its arguments")
    return out


def main(argv=None) -> int:
    import argparse  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(prog="python -m third_party.compressed_video.native",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=["address", "baseline"], default=None,
                        help="build a test variant: 'address' (AddressSanitizer; load with "
                             "LD_PRELOAD=libasan.so) or 'baseline' (SSE2 only); selected at run "
                             "time with COMPRESSED_VIDEO_NATIVE_VARIANT")
    parser.add_argument("--print-path", action="store_true", help="only print the library path")
    args = parser.parse_args(argv)
    try:
        if args.print_path:
            print(library_path(args.variant))
            return 0
        path = ensure_built(force=True, variant=args.variant)
    except BuildError as e:
        print(f"third_party.compressed_video.native: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
