"""Glue shared by the experiment apps: argument checks, checkpoint and engine set-up, and turning
library errors into one clear line. No TapLab logic lives here (that is taplab_tf.pipeline)."""
from __future__ import annotations

import os
from typing import Callable, Optional, Tuple

# The embedded default's model (synthetic streets) and the real-data model (CamVid) that
# `segment --video=X` uses when no --checkpoint is given: their one home is taplab_tf.api.
from taplab_tf import config as config_lib
from taplab_tf.api import ASSETS  # noqa: F401
from taplab_tf.api import REAL_DATA_MODEL as REAL_DATA_CHECKPOINT  # noqa: F401
from taplab_tf.api import SYNTHETIC_MODEL as DEFAULT_CHECKPOINT  # noqa: F401


def quiet_tensorflow(verbosity: int = 0) -> None:
    """Silences TensorFlow's start-up lines (oneDNN, CUDA factory registrations, TensorRT,
    grappler) before TF is imported, unless absl's --verbosity asks for them (>= 1) or the user
    set TF_CPP_MIN_LOG_LEVEL."""
    if verbosity >= 1 or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import logging
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def terminate_as_interrupt() -> None:
    """SIGTERM ends the app as Ctrl-C does, so that temporary files are removed the same way."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. under a test runner's thread)
        pass


def reject_extra_args(argv) -> None:
    if len(argv) > 1:
        raise SystemExit(f"error: unexpected arguments {argv[1:]}; all options are --flags "
                         "(see --help)")


def _known_errors() -> Tuple[type, ...]:
    from taplab_tf.config import ConfigError
    from third_party.compressed_video.errors import CompressedVideoError
    return (CompressedVideoError, ConfigError, ValueError, FileNotFoundError, OSError)


def run_or_exit(fn: Callable):
    """Runs fn(); a known library error or an interrupt ends the app with one line."""
    try:
        return fn()
    except KeyboardInterrupt:
        raise SystemExit("interrupted: no output was left half-written") from None
    except _known_errors() as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SystemExit(f"error: {msg}{reencode_hint(msg)}") from None


def run_record(app: str, experiment=None, settings=None) -> dict:
    """The app's resolved configuration: the command line, the flags given, the git commit, and
    the resolved experiment (taplab_tf.experiment) or settings (e.g. TapLabConfig.to_dict())."""
    import sys

    from absl import flags

    from taplab_tf import provenance
    given = {name: flags.FLAGS[name].value for name in flags.FLAGS
             if not flags.FLAGS[name].using_default_value and name != "flagfile"}
    record = {"app": app, "command": " ".join(sys.argv), "given_flags": given,
              "git": provenance.git_commit()}
    if experiment is not None:
        record["experiment"] = experiment.to_dict()
    if settings is not None:
        record["settings"] = settings
    return record


def write_run_config(path: str, app: str, experiment=None, settings=None) -> str:
    """Writes run_record(...) to path as JSON, whole or not at all (the run folder's record)."""
    from taplab_tf import io_utils
    return io_utils.write_json(path, run_record(app, experiment, settings), sort_keys=True,
                               default=str)


def input_scale(value: str):
    """--input_scale: None for 'auto', else the number in (0, 4] (one error line otherwise)."""
    if value.strip().lower() == "auto":
        return None
    try:
        scale = float(value)
    except ValueError:
        scale = float("nan")
    if not config_lib.valid_input_scale(scale):
        raise SystemExit(f"error: --input_scale must be 'auto' or a number in (0, 4], got "
                         f"{value!r}")
    return scale


def reencode_hint(message: str) -> str:
    """The project's own re-encode command beside the reader's FFmpeg one (the reader, in
    third_party, names no application)."""
    if "ffmpeg -i " not in message:
        return ""
    return (" (or: python -m experiments.encode --input=IN --output=OUT.avi --gop=12; "
            "experiments.segment re-encodes by itself)")


def load_checkpoint(path: Optional[str], model_name: Optional[str] = None):
    """(model, metadata) from a model directory; the shipped BL2 when path is None.
    model_name (an explicit --model) must match the checkpoint."""
    from taplab_tf import models
    from taplab_tf.api import resolve_model_path
    directory = resolve_model_path(path) if path else DEFAULT_CHECKPOINT
    shipped = path is None or os.path.abspath(os.path.dirname(directory)) == \
        os.path.abspath(ASSETS)
    if not os.path.isdir(directory):
        if shipped:
            raise SystemExit(f"error: the shipped model {directory} is missing; reinstall "
                             "the package or pass --checkpoint")
        raise SystemExit(f"error: --checkpoint {directory} is not a directory written by "
                         "experiments.train or experiments.export")
    from taplab_tf.models import export
    if export.is_saved_model(directory):  # a SavedModel from experiments.export
        phi = run_or_exit(lambda: export.load_saved_model(directory))
        meta = dict(phi.metadata)
        meta.setdefault("model", "savedmodel")
        return phi, meta
    model, meta = run_or_exit(lambda: models.load_model(directory))
    if model_name and meta["model"] != model_name:
        raise SystemExit(f"error: --model={model_name} but {directory} holds a {meta['model']} "
                         "checkpoint")
    return model, meta


def check_video(path: str) -> None:
    if not os.path.isfile(path):
        raise SystemExit(f"error: --video {path}: no such file")
    if os.path.getsize(path) == 0:
        raise SystemExit(f"error: --video {path}: the file is empty")


def make_default_video(path: str, height: int, width: int, num_frames: int, seed: int,
                       gop: int) -> str:
    """The embedded default input: a synthetic street clip, encoded as TapLab expects."""
    from taplab_tf.data import synthetic
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    print(f"generating a {num_frames}-frame {height}x{width} synthetic street clip (seed {seed}) "
          f"and encoding it to MPEG-4 Part 2, GOP {gop}: {path}", flush=True)
    run_or_exit(lambda: synthetic.encode_clip(path, height, width, num_frames, seed, gop=gop))
    return path


def make_engine(model, cfg, **kwargs):
    from taplab_tf.pipeline.engine import TapLabEngine
    return run_or_exit(lambda: TapLabEngine(model, cfg, **kwargs))


def ops_backend() -> str:
    from taplab_tf import ops
    return ops.backend()
