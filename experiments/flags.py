"""Command-line flags shared by every experiment, defined once.

They carry the field names of taplab_tf.experiment.ExperimentConfig (model, data, taplab and train
sections); `experiment_from_flags()` is the one place that turns flags into a config: the named
experiment (--config, a factory in taplab_tf.experiment.FACTORIES) with every flag given on the
command line laid over it. Flag files under experiments/configs/ are thin wrappers over the
factories:

    python -m experiments.segment --flagfile=experiments/configs/cityscapes_bl2.flags
"""
from __future__ import annotations

import math
import os

from absl import flags

from taplab_tf import config as config_lib
from taplab_tf import experiment as experiment_lib

FLAGS = flags.FLAGS
CONFIG_DIR = os.path.join(os.path.dirname(__file__), "configs")

_DEFAULTS = config_lib.TapLabConfig()
_defined = False
# The flags define_taplab_flags defines for TapLabConfig's fields (the taplab section). Other apps'
# flags of the same name (segment --seed, --input_scale) are theirs, not the config's.
TAPLAB_FLAGS = ("model", "gop", "modules", "region_shape", "region_stride", "thr_rgc",
                "thr_rgfs", "alpha", "rgc_accumulate", "rgfs_accumulate", "rgfs_fraction",
                "warp_interpolation", "mv_refinement", "mv_block_size")


def define_taplab_flags() -> None:
    """Defines --model, --gop, --modules, --region_shape, --region_stride, --thr_rgc, --thr_rgfs,
    --alpha, --rgc_accumulate, --rgfs_accumulate, --rgfs_fraction (idempotent, so several apps and
    tests may call it)."""
    global _defined
    if _defined:
        return
    _defined = True
    flags.DEFINE_enum("config", None, sorted(experiment_lib.FACTORIES),
                      "A named experiment (taplab_tf.experiment): its settings are the defaults, "
                      "and every flag given on the command line overrides its own.")
    flags.DEFINE_enum("model", _DEFAULTS.model, list(config_lib.MODEL_NAMES),
                      "Segmentation network phi: bl1 (ICNet-style), bl2 (MobileNet+FPN, default), "
                      "bl3 (PSPNet).")
    flags.DEFINE_integer("gop", _DEFAULTS.gop, "GOP length g: one I-frame every g frames.",
                         lower_bound=1)
    flags.DEFINE_string("modules", ",".join(_DEFAULTS.modules),
                        "Comma-separated TapLab modules among ffw, rgc, rgfs; 'none' runs phi on "
                        "every frame.")
    flags.DEFINE_list("region_shape", [str(v) for v in _DEFAULTS.region_shape],
                      "RGC region height,width in pixels (512,512 at 1024x2048).")
    flags.DEFINE_integer("region_stride", _DEFAULTS.region_stride,
                         "Stride of the overlapping RGC region grid in pixels.", lower_bound=1)
    flags.DEFINE_float("thr_rgc", _DEFAULTS.thr_rgc,
                       "RGC counts pixels with |Res| above this.", lower_bound=0.0)
    flags.DEFINE_float("thr_rgfs", _DEFAULTS.thr_rgfs,
                       "RGFS sends a P-frame to phi when sum|Res| exceeds this (stated at "
                       "1024x2048, scaled by frame area at other sizes).", lower_bound=0.0)
    flags.DEFINE_float("alpha", _DEFAULTS.alpha,
                       "RGC blending weight in [0, 1] (Eq. 6).", lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_bool("rgc_accumulate", _DEFAULTS.rgc_accumulate,
                      "Original-code variant: RGC region scores add up across the GOP and the "
                      "chosen region's score is reset.")
    flags.DEFINE_bool("rgfs_accumulate", _DEFAULTS.rgfs_accumulate,
                      "Original-code variant: RGFS fires on the residual summed since the last "
                      "keyframe (calibrate --thr_rgfs with calibrate_rgfs --rgfs_accumulate).")
    flags.DEFINE_float("rgfs_fraction", _DEFAULTS.rgfs_fraction,
                       "0 (default): RGFS fires where sum|Res| > --thr_rgfs (Eq. 4). In (0, 1): "
                       "RGFS sends this fraction of P-frames to phi, its threshold chosen online "
                       "from the stream's own residual sums (--thr_rgfs unused), so that it "
                       "carries across encoders' quantisers and videos (e.g. 0.1).")
    flags.DEFINE_enum("warp_interpolation", _DEFAULTS.warp_interpolation,
                      list(config_lib.WARP_INTERPOLATIONS),
                      "FFW's lookup of the previous logits: nearest (the paper's gather) or "
                      "bilinear (sub-cell vectors kept instead of rounded to the logits' grid).")
    flags.DEFINE_string("mv_refinement", _DEFAULTS.mv_refinement,
                        "FFW's motion field repaired before the warp: 'none' (the paper's FFW) "
                        "or a '+' list of fill, model, median, confidence (e.g. model+median; "
                        "taplab_tf.pipeline.motion_field).")
    flags.DEFINE_integer("mv_block_size", _DEFAULTS.mv_block_size,
                      "FFW's vectors per 16x16 macroblock (the paper) or per 8x8 block: 8 keeps "
                      "the 8x8 vectors of 4MV macroblocks, and videos the app encodes (the "
                      "re-encode of other codecs, evaluation clips) allow 4MV (+mv4).")

    def _modules_ok(value):
        try:
            config_lib.parse_modules(value)
            return True
        except config_lib.ConfigError:
            return False

    def _region_ok(value):
        try:
            return len(value) == 2 and all(int(v) > 0 for v in value)
        except (TypeError, ValueError):
            return False

    flags.register_validator(
        "modules", _modules_ok,
        message="--modules must be 'none' or a comma list of ffw, rgc, rgfs that includes ffw "
                "(e.g. ffw,rgc,rgfs)")
    flags.register_validator(
        "region_shape", _region_ok,
        message="--region_shape must be two positive integers HEIGHT,WIDTH (e.g. 512,512)")
    require_finite("thr_rgc", "thr_rgfs", "alpha")
    flags.register_validator(
        "rgfs_fraction", lambda v: math.isfinite(v) and 0.0 <= v < 1.0,
        message="--rgfs_fraction must be a number in [0, 1) (0: the fixed --thr_rgfs)")


def define_segment_flags() -> None:
    """The main job's flags that segment and segment_beam share: the overlay's marks, phi's input
    scale and the re-encode (idempotent)."""
    if "draw_regions" in FLAGS:
        return
    flags.DEFINE_bool("draw_regions", True, "Draw the RGC region on corrected frames.")
    flags.DEFINE_bool("mark_keyframes", True, "Mark frames where phi ran on the whole frame.")
    flags.DEFINE_bool("legend", True, "Draw the class colours' legend on the overlay.")
    flags.DEFINE_string("input_scale", "auto", "phi's input scale: 'auto' (the frame height the "
                        "model was evaluated at, its training height times its model.json "
                        "input_scale, over the video's, snapped so that the logits' stride on "
                        "the video is an integer) or a number in (0, 4], e.g. 0.5.")
    flags.DEFINE_enum("transcode", "auto", ["auto", "never", "always"], "Re-encode inputs that "
                      "are not MPEG-4 Part 2 without B-frames (auto), refuse them (never), or "
                      "re-encode every input (always), at --gop.")
    flags.DEFINE_float("qscale", 3.0, "Quantiser of the re-encode (1..31, smaller is better).",
                       lower_bound=1.0, upper_bound=31.0)


def require_finite(*names: str) -> None:
    """Rejects inf and nan for these float flags at parsing, with one line naming the flag (absl's
    bounds let nan through, and inf only fails later as an OverflowError)."""
    for name in names:
        flags.register_validator(
            name, lambda v: v is None or math.isfinite(v),
            message=f"--{name} must be a finite number (not inf or nan)")


def define_workspace_flags(output_default: str | None = None) -> None:
    """Flags that move the workspace directories (see WORKSPACE.md)."""
    if "workspace" in FLAGS:
        return
    flags.DEFINE_string("workspace", os.environ.get("TAPLAB_WORKSPACE", "."),
                        "Root under which data/, runs/, checkpoints/ and results/ live by "
                        "default (env TAPLAB_WORKSPACE).")


def given_flags(names) -> dict:
    """{name: value} of the flags among `names` set on the command line (or assigned)."""
    return {name: FLAGS[name].value for name in names
            if name in FLAGS and not FLAGS[name].using_default_value}


def as_flag_message(message: str) -> str:
    """A library error that starts with a field's name ('depths: applies to ...') names the flag
    the user gave instead ('--depths applies to ...'), where such a flag exists."""
    name, sep, rest = message.partition(": ")
    if sep and name.isidentifier() and name in FLAGS:
        return f"--{name} {rest}"
    return message


def experiment_from_flags(sections=("taplab",)) -> experiment_lib.ExperimentConfig:
    """The named experiment (--config; the dataclass defaults without it), with every flag given
    on the command line that names a field of `sections` laid over it. The taplab section takes
    only define_taplab_flags' flags. A bad value exits with one line naming it."""
    names = set(TAPLAB_FLAGS) if "taplab" in sections else set()
    where = experiment_lib.field_names()
    names |= {n for n, held in where.items() if set(held) & (set(sections) - {"taplab"})}
    try:
        base = (experiment_lib.get(FLAGS.config) if "config" in FLAGS and FLAGS.config
                else experiment_lib.ExperimentConfig())
        return experiment_lib.override(base, given_flags(sorted(names)))
    except ValueError as e:
        raise SystemExit(f"error: {as_flag_message(str(e))}") from None


def config_from_flags() -> config_lib.TapLabConfig:
    """The TapLabConfig described by the parsed flags; a bad combination exits with one line."""
    return experiment_from_flags(("taplab",)).taplab


def workspace_path(*parts: str) -> str:
    """A path under --workspace (data, runs, checkpoints, results)."""
    root = FLAGS.workspace if "workspace" in FLAGS else os.environ.get("TAPLAB_WORKSPACE", ".")
    return os.path.join(root, *parts)
