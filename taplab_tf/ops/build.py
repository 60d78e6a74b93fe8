"""Builds the TapLab op library (_taplab_ops.so) from taplab_tf/ops/cc against the installed TF.

    python -m taplab_tf.ops.build            # rebuild now (even if a cached build exists)
    python -m taplab_tf.ops.build --variant=address    # AddressSanitizer build (for testing)
    python -m taplab_tf.ops.build --variant=baseline   # no AVX2 code paths (tests the SSE2 ones)

The library is compiled on first use of an op (taplab_tf.ops._loader) into a cache directory:

    $TAPLAB_TF_CACHE/ops/<tag>/_taplab_ops.so     ($TAPLAB_TF_CACHE defaults to ~/.cache/taplab_tf)

where <tag> = tf<version>-<sha256 of the sources, the compiler command and the TF compile/link
flags>[-<variant>]. A variant is selected at run time with TAPLAB_TF_OPS_VARIANT=address|baseline.
Concurrent builders (pytest-xdist workers, several apps) serialise on an fcntl lock next to that
directory; the .so is written to a temporary name and atomically renamed, so a reader
never sees a partial file, and whoever takes the lock second finds the build done (the builder
is third_party.native_build, shared with taplab_tf.ops.cuda and the reader's residual kernel).
Compiler: $CXX or g++ (C++17, -O3, -ffp-contract=off so results match TF's arithmetic exactly).
Failures raise BuildError with a one-line message naming what failed; the full compiler log is
kept next to the library.

AddressSanitizer run of the op tests (what was run for this library; clean):

    python -m taplab_tf.ops.build --variant=address
    LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)" \
    ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:log_path=/tmp/asan \
    TAPLAB_TF_OPS_VARIANT=address TAPLAB_TF_OPS_BACKEND=cpp python -m pytest -q tests/test_ops.py

(libstdc++ must be preloaded too, or ASan's __cxa_throw interceptor aborts on TF's first C++
exception; log_path because pytest captures stderr; leaks off because CPython/TF "leak" by design.)
"""
import os
import pathlib
import shlex
import sys

from third_party import native_build

LIBRARY_NAME = "_taplab_ops.so"
SOURCE_DIR = pathlib.Path(__file__).resolve().parent / "cc"
_VARIANT_FLAGS = {
    None: [],
    # AddressSanitizer (see above).
    "address": ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"],
    # Only the portable (SSE2 on x86-64) code paths, so tests can cover them on an AVX2 machine.
    "baseline": ["-DTAPLAB_BASELINE_ONLY"],
}


class BuildError(native_build.BuildError):
    """The op library could not be built (no compiler, compile or link error)."""


def sources():
    """The C++ translation units and headers, sorted (headers are hashed, not compiled). The CUDA
    sources (*.cu.cc, built by nvcc only: build_cuda_capi) are not part of the CPU library."""
    files = sorted(p for p in SOURCE_DIR.rglob("*")
                   if p.suffix in (".cc", ".h") and not p.name.endswith(".cu.cc"))
    if not files:
        raise BuildError(f"no C++ sources found under {SOURCE_DIR}")
    return files


def cache_root():
    return native_build.cache_dir("TAPLAB_TF_CACHE", "taplab_tf", "ops")


def compiler():
    return native_build.find_tool(os.environ.get("CXX", "g++"), BuildError,
                                  "install g++ or set $CXX")


def _tf_flags():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    return tf.__version__, list(tf.sysconfig.get_compile_flags()), list(tf.sysconfig.get_link_flags())


def _commands(cxx, tf_cflags, tf_lflags, variant):
    cflags = ["-std=c++17", "-O3", "-fPIC", "-ffp-contract=off", "-Wall", "-Wno-sign-compare",
              "-Wno-unused-function", *tf_cflags, *_VARIANT_FLAGS[variant]]
    # TF's flags include --std=c++17 already; ours come first so theirs win if they ever differ.
    lflags = ["-shared", *_VARIANT_FLAGS[variant], *tf_lflags]
    return cflags, lflags


def library_path(variant=None):
    """Where the library for these sources, this TF and this compiler lives (may not exist yet)."""
    if variant not in _VARIANT_FLAGS:
        raise ValueError(f"variant must be one of {sorted(k for k in _VARIANT_FLAGS if k)} or None, "
                         f"got {variant!r}")
    version, tf_cflags, tf_lflags = _tf_flags()
    cxx = os.environ.get("CXX", "g++")
    cflags, lflags = _commands(cxx, tf_cflags, tf_lflags, variant)
    parts = []
    for path in sources():
        parts += [str(path.relative_to(SOURCE_DIR)), path.read_bytes()]
    parts.append(shlex.join([cxx, *cflags, "|", *lflags]))
    tag = native_build.tag(parts, prefix=f"tf{version}-", variant=variant)
    return cache_root() / tag / LIBRARY_NAME


def _compile(target, variant):
    cxx = compiler()
    _, tf_cflags, tf_lflags = _tf_flags()
    cflags, lflags = _commands(cxx, tf_cflags, tf_lflags, variant)
    units = [p for p in sources() if p.suffix == ".cc"]
    include = ["-I", str(SOURCE_DIR / "kernels")]
    with native_build.staged(target) as partial:
        tmp = os.path.dirname(partial)
        objects = [os.path.join(tmp, unit.stem + ".o") for unit in units]
        # All translation units at once (headers dominate compile time; cores are the limit).
        native_build.run([(f"compiling {unit.relative_to(SOURCE_DIR.parent)} with {cxx}",
                           [cxx, *cflags, *include, "-c", str(unit), "-o", obj])
                          for unit, obj in zip(units, objects)], target.parent, BuildError)
        native_build.run([(f"linking {LIBRARY_NAME} with {cxx}",
                           [cxx, *objects, "-o", partial, *lflags])], target.parent, BuildError)


def ensure_built(force=False, variant=None):
    """Returns the path of the built library, compiling it first if needed (or if force)."""
    return native_build.ensure_built(library_path(variant), lambda t: _compile(t, variant),
                                     force=force, error=BuildError, what="op cache directory")


def main(argv=None):
    import argparse  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(prog="python -m taplab_tf.ops.build", description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=["address", "baseline"], default=None,
                        help="build a test variant: 'address' (AddressSanitizer; load with "
                             "LD_PRELOAD=libasan.so) or 'baseline' (no AVX2 paths); selected at "
                             "run time with TAPLAB_TF_OPS_VARIANT")
    parser.add_argument("--print-path", action="store_true", help="only print the library path")
    args = parser.parse_args(argv)
    if args.print_path:
        print(library_path(args.variant))
        return 0
    try:
        path = ensure_built(force=True, variant=args.variant)
    except BuildError as e:
        print(f"taplab_tf.ops.build: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
