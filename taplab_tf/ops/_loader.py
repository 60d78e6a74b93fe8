"""Lazy loading of the compiled op library and backend selection (nothing happens at import).

Backend choice, per call (so tests can switch):
  * TAPLAB_TF_OPS_BACKEND=tf   -> the pure-TF fallback ('tf-fallback'), logged once.
  * TAPLAB_TF_OPS_BACKEND=cpp  -> the compiled library; a build/load failure is raised (CI).
  * unset / 'auto'             -> the compiled library, built on first use (taplab_tf.ops.build);
                                  if that fails, the fallback, with one warning saying why.
TAPLAB_TF_OPS_VARIANT=address|baseline selects a test build of the library (see
taplab_tf.ops.build: AddressSanitizer, or no AVX2 code paths).
"""
import contextlib
import os
import threading

from absl import logging

from taplab_tf.ops import build

CPP = "cpp"
FALLBACK = "tf-fallback"
_ENV_BACKEND = "TAPLAB_TF_OPS_BACKEND"
_ENV_VARIANT = "TAPLAB_TF_OPS_VARIANT"

_lock = threading.Lock()
_library = None       # the loaded module (tf.load_op_library)
_failure = None       # one-line reason the library is unavailable
_logged = set()


class OpsUnavailableError(RuntimeError, OSError):
    """The compiled library was required (TAPLAB_TF_OPS_BACKEND=cpp or backend='cpp') but failed.

    Also an OSError (the library is a file that could not be built, cached or loaded), so the
    apps' one-line error handler (experiments.common.run_or_exit) reports it without a
    traceback."""


def _log_once(key, level, message, *args):
    if key not in _logged:
        _logged.add(key)
        level(message, *args)


def _requested():
    value = os.environ.get(_ENV_BACKEND, "auto").strip().lower() or "auto"
    if value not in ("auto", "cpp", "tf"):
        raise ValueError(f"{_ENV_BACKEND} must be 'auto', 'cpp' or 'tf', got {value!r}")
    return value


def _try_load():
    """Builds (if needed) and loads the library once per process; returns it or None."""
    global _library, _failure
    if _library is not None:  # (every eager op call asks: no lock once loaded)
        return _library
    with _lock:
        if _library is not None or _failure is not None:
            return _library
        variant = os.environ.get(_ENV_VARIANT) or None
        try:
            path = build.ensure_built(variant=variant)
        except (build.BuildError, ValueError) as e:
            _failure = f"building the op library failed: {e}"
            return None
        try:
            import tensorflow as tf  # pylint: disable=import-outside-toplevel

            _library = tf.load_op_library(str(path))
        except Exception as e:  # pylint: disable=broad-except  (NotFoundError, OSError, ...)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            _failure = f"loading {path} failed: {first}"
            return None
        return _library


def library(required=False):
    """The compiled op module, or None when unavailable (raises if required)."""
    lib = _try_load()
    if lib is None and required:
        hint = ""
        if os.environ.get(_ENV_BACKEND, "").strip().lower() == CPP:
            hint = (f" ({_ENV_BACKEND}=cpp requires the compiled library: point TAPLAB_TF_CACHE "
                    f"at a writable folder, or unset {_ENV_BACKEND} to fall back to the TF "
                    f"kernels)")
        raise OpsUnavailableError(f"taplab_tf.ops: {_failure}{hint}")
    return lib


def direct(backend, *typed) -> bool:
    """True where an eager call may go straight to the compiled op's generated wrapper: the
    compiled library is in use (resolve(backend)) and each (value, dtype) given is already a
    tensor of that dtype, so a wrapper's name scope, conversions and casts would change nothing.
    Those layers cost 0.11-0.19 ms a call (0.05-0.11 without them) in the engine's all-three loop
    (BL2 at 1024x2048 on 2 cores of an AMD EPYC Zen 5: bound ratio 1.0451 -> 1.0427 in an A/B),
    where they run right after phi, with the interpreter's and TF's Python code out of the
    caches. Graph mode (tf.function, the SavedModel) keeps the general path."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel  (loaded by then)

    if not tf.executing_eagerly():
        return False
    for value, dtype in typed:
        if not (isinstance(value, tf.Tensor) and value.dtype == dtype):
            return False
    return resolve(backend) == CPP


def scope(name: str, direct_call: bool):
    """tf.name_scope(name), or nothing on a direct call (see direct; eagerly a scope names
    nothing)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    return contextlib.nullcontext() if direct_call else tf.name_scope(name)


def resolve(override=None):
    """Backend for one call: CPP or FALLBACK. override: None, 'cpp' or 'tf' (beats the env var)."""
    want = override if override is not None else _requested()
    if want not in ("auto", "cpp", "tf"):
        raise ValueError(f"backend must be None, 'cpp' or 'tf', got {want!r}")
    if want == "tf":
        if override is None:
            _log_once("forced", logging.info,
                      "taplab_tf.ops: %s=tf, using the pure-TF fallback kernels", _ENV_BACKEND)
        return FALLBACK
    if library(required=(want == "cpp")) is not None:
        return CPP
    _log_once("failed", logging.warning,
              "taplab_tf.ops: %s; using the pure-TF fallback kernels (slower). "
              "Rebuild with: python -m taplab_tf.ops.build", _failure)
    return FALLBACK


def backend():
    """'cpp' when the compiled kernels are used, 'tf-fallback' otherwise."""
    return resolve()
