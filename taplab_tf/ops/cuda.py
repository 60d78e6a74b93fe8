"""The CUDA kernels of mv_warp, built by nvcc and called through their C API (no TensorFlow).

    python -m taplab_tf.ops.cuda            # build (needs nvcc), print the library path

What this is for: testing and timing the CUDA kernels (cc/kernels/mv_warp_kernels.cu.cc) on a GPU
machine that has CUDA, CuPy and NumPy but no TensorFlow, which is what this project's lent GPU
machines have (tests/gpu/test_mv_warp_cuda.py, experiments/benchmark_warp_cuda.py). The kernels
are the ones a TF GPU registration of TapLab>MvWarp would launch (mv_warp_gpu.h); that
registration is not written yet because no machine here has had a CUDA build of TF 2.15 to test
it against, so TF programs on a GPU still run mv_warp's TF path.

The library goes to $TAPLAB_TF_CACHE/cuda/<tag>/libtaplab_mv_warp_cuda.so (tag: hash of sources
and nvcc command), built under an fcntl lock and renamed into place atomically by the builder
that taplab_tf.ops.build uses too (third_party.native_build). Target architecture:
$TAPLAB_TF_CUDA_ARCH (e.g. sm_90) or nvcc's -arch=native. This module imports neither TensorFlow
nor CuPy at import time.
"""
import ctypes
import os
import pathlib
import shlex
import shutil
import sys

from third_party import native_build

SOURCE_DIR = pathlib.Path(__file__).resolve().parent / "cc" / "kernels"
UNITS = ("mv_warp_kernels.cu.cc", "mv_warp_capi.cu.cc")
HEADERS = ("mv_warp.h", "mv_warp_gpu.h")
LIBRARY_NAME = "libtaplab_mv_warp_cuda.so"
DTYPES = {"float16": 0, "float32": 1, "float64": 2}


class CudaBuildError(native_build.BuildError):
    """nvcc is missing or the CUDA sources did not compile."""


def nvcc():
    path = os.environ.get("NVCC") or shutil.which("nvcc")
    if not path:
        for guess in ("/usr/local/cuda/bin/nvcc",):
            if os.path.exists(guess):
                return guess
        raise CudaBuildError("nvcc not found (install the CUDA toolkit or set $NVCC)")
    return path


def _command(compiler, output):
    arch = os.environ.get("TAPLAB_TF_CUDA_ARCH", "native")
    return [compiler, "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC", "-fmad=false",
            f"-arch={arch}", "-x", "cu", "-I", str(SOURCE_DIR),
            *[str(SOURCE_DIR / u) for u in UNITS], "-o", output]


def library_path():
    parts = []
    for name in UNITS + HEADERS:
        parts += [name, (SOURCE_DIR / name).read_bytes()]
    parts.append(shlex.join(_command(nvcc(), "OUT")))
    return (native_build.cache_dir("TAPLAB_TF_CACHE", "taplab_tf", "cuda")
            / native_build.tag(parts) / LIBRARY_NAME)


def _compile(target):
    with native_build.staged(target) as partial:
        native_build.run([("nvcc", _command(nvcc(), partial))], target.parent, CudaBuildError)


def build(force=False):
    """Compiles the CUDA library if needed; returns its path. Raises CudaBuildError."""
    return native_build.ensure_built(library_path(), _compile, force=force, error=CudaBuildError,
                                     what="CUDA cache directory")


class MvWarpCuda:
    """mv_warp on CuPy arrays through the CUDA kernels' C API (same arguments as ops.mv_warp)."""

    def __init__(self, path=None):
        import cupy  # pylint: disable=import-outside-toplevel

        self._cp = cupy
        self._lib = ctypes.CDLL(str(path or build()))
        i64, p = ctypes.c_int64, ctypes.c_void_p
        self._lib.taplab_mv_warp_workspace.restype = i64
        self._lib.taplab_mv_warp_workspace.argtypes = [i64] * 6 + [ctypes.c_int,
                                                                   ctypes.POINTER(i64)]
        self._lib.taplab_mv_warp.restype = ctypes.c_int
        self._lib.taplab_mv_warp.argtypes = ([ctypes.c_int] * 2 + [i64] * 8 + [ctypes.c_int] * 2
                                             + [p] * 6)
        self._workspace = {}

    def _buffers(self, key, shift_bytes, acc_bytes):
        buf = self._workspace.get(key)
        if buf is None:
            cp = self._cp
            buf = (cp.empty(max(shift_bytes, 1), cp.uint8), cp.empty(max(acc_bytes, 1), cp.uint8))
            self._workspace = {key: buf}  # one shape at a time
        return buf

    def __call__(self, features, motion_vectors, feature_stride, block_size=16,
                 interpolation="nearest", border="clamp", gradient=False, out=None,
                 validate=True):
        """features (or, with gradient=True, the incoming gradient) [N, h, w, C] and motion
        [N, Hb, Wb, 2] float32, CuPy arrays on the current device. Asynchronous on the current
        stream; returns the output array. validate=False skips the finiteness check of the
        motion (a device reduction and a host sync), for callers that checked it already."""
        cp = self._cp
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
        if border not in ("clamp", "zeros"):
            raise ValueError(f"border must be 'clamp' or 'zeros', got {border!r}")
        x = cp.ascontiguousarray(features)
        mv = cp.ascontiguousarray(motion_vectors, dtype=cp.float32)
        if x.ndim != 4 or mv.ndim != 4 or mv.shape[3] != 2 or mv.shape[0] != x.shape[0]:
            raise ValueError(f"features must be [N, h, w, C] and motion_vectors [N, Hb, Wb, 2] "
                             f"with the same N, got {x.shape} and {mv.shape}")
        dtype = DTYPES.get(x.dtype.name)
        if dtype is None:
            raise ValueError(f"features dtype must be one of {sorted(DTYPES)}, got {x.dtype}")
        if validate and not bool(cp.isfinite(mv).all()):
            raise ValueError("motion_vectors contains a non-finite value")
        n, h, w, c = x.shape
        gh, gw = mv.shape[1:3]
        acc = ctypes.c_int64()
        shift_bytes = self._lib.taplab_mv_warp_workspace(n, h, w, c, gh, gw, dtype,
                                                         ctypes.byref(acc))
        shifts, accumulator = self._buffers((x.shape, mv.shape, x.dtype.name), shift_bytes,
                                            acc.value)
        out = cp.empty_like(x) if out is None else out
        err = self._lib.taplab_mv_warp(
            int(bool(gradient)), dtype, n, h, w, c, gh, gw, int(feature_stride), int(block_size),
            int(interpolation == "bilinear"), int(border == "zeros"), x.data.ptr, mv.data.ptr,
            shifts.data.ptr, accumulator.data.ptr, out.data.ptr,
            cp.cuda.get_current_stream().ptr)
        if err != 0:
            raise RuntimeError("taplab_mv_warp failed: " + (
                "bad argument" if err < 0 else str(cp.cuda.runtime.getErrorString(err))))
        return out


def main(argv=None):
    del argv
    try:
        print(build(force=True))
    except CudaBuildError as e:
        print(f"taplab_tf.ops.cuda: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
