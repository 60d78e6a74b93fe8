"""The TapLab settings: one dataclass holding every knob of Algorithm 1.

Names follow the paper (Feng et al., "TapLab", TPAMI) so that a reader can find them:

  gop            keyframe interval g of the encoded stream (Sec. 3.1, Eq. 2).
  modules        which of FFW (Eq. 1), RGC (Eq. 3, 6) and RGFS (Eq. 4) run; () is per-frame phi.
  region_shape   RGC region (height, width), 512x512 at 1024x2048 (Sec. 3.3, Table 4).
  region_stride  step of the overlapping RGC region grid, 256 at 1024x2048.
  thr_rgc        a pixel counts for RGC where |Res| > thr_rgc (30).
  thr_rgfs       a P-frame goes to phi where sum |Res| > thr_rgfs (3.6e7 at 1024x2048).
  rgfs_fraction  0 (default): Eq. 4 with thr_rgfs. In (0, 1): RGFS sends this fraction of
                 P-frames to phi, its threshold chosen online from the stream's own residual
                 sums (pipeline.decisions.OnlineRGFSTrigger; thr_rgfs is unused), so that it
                 carries across encoders' quantisers, contents and frame sizes.
  alpha          RGC blending weight, F[R] = (1 - alpha) F_warped[R] + alpha phi(I[R]) (Eq. 6).
  propagation    how features reach the frames between keyframes (pipeline.propagation): 'mv',
                 FFW by the stream's motion vectors (Eq. 1, the paper), or a baseline of Table 3
                 on equal footing: optical flow from the decoded frames ('flow_dis',
                 'flow_farneback'), or 'itp', linear interpolation between the neighbouring
                 I-frames (its results come a GOP late; RGC and RGFS do not apply to it).
  warp_interpolation  FFW's lookup of the previous logits: 'nearest' (the paper's gather) or
                 'bilinear'.
  scale_to_frame True (default): region_shape, region_stride and thr_rgfs, stated at 1024x2048,
                 are scaled to the video's frame size; False takes them literally.

Two variants of the original code, off by default (the paper's Eq. 3 and Eq. 4 as written):
  rgc_accumulate   region scores add up across the GOP; the chosen region's score is reset.
  rgfs_accumulate  RGFS compares the residual summed since the last keyframe with thr_rgfs, so
                   that drift building up over several P-frames triggers phi (calibrate the
                   threshold with `calibrate_rgfs --rgfs_accumulate`: it differs from Eq. 4's).

region_shape, region_stride and thr_rgfs are stated at the paper's 1024x2048. At other frame sizes
the engine uses `scaled_to` (the region grid scaled with the frame, on the 16-pixel block grid) and
`scaled_thr_rgfs` (the threshold scaled with the frame area: sum |Res| grows with the number of
pixels); scale_to_frame=False takes them literally instead.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Iterable, Sequence, Tuple

# Module names, in the order the paper adds them (Table 5).
FFW = "ffw"
RGC = "rgc"
RGFS = "rgfs"
ALL_MODULES = (FFW, RGC, RGFS)
MODEL_NAMES = ("bl1", "bl2", "bl3")  # the one list (tests/test_constants.py: = networks.NETWORKS)
# Propagations (TapLabConfig.propagation): the names of pipeline.propagation.PROPAGATORS, listed
# here so that a config is checked without TensorFlow (tests/test_propagation.py: the same names).
PROPAGATIONS = ("mv", "flow_dis", "flow_farneback", "flow_dis_blocks", "itp")
WARP_INTERPOLATIONS = ("nearest", "bilinear")
_SWITCHES = ("rgc_accumulate", "rgfs_accumulate", "scale_to_frame")  # TapLabConfig's bool fields

# The frame size at which the paper states thr_rgfs and the region grid.
REFERENCE_SIZE = (1024, 2048)


class ConfigError(ValueError):
    """A TapLab setting is out of range or inconsistent; the message names it."""


def parse_modules(modules: str | Iterable[str]) -> Tuple[str, ...]:
    """Turns 'ffw,rgc,rgfs' (or 'none', '', a list) into a canonical tuple in paper order."""
    if isinstance(modules, str):
        items = [m.strip().lower() for m in modules.replace("+", ",").split(",")]
    else:
        items = [str(m).strip().lower() for m in modules]
    items = [m for m in items if m and m not in ("none", "perframe", "per-frame")]
    unknown = sorted(set(items) - set(ALL_MODULES))
    if unknown:
        raise ConfigError(
            f"modules: unknown module(s) {unknown}; choose from {list(ALL_MODULES)} or 'none'")
    if items and FFW not in items:
        raise ConfigError(
            f"modules: {sorted(items)} need 'ffw': RGC corrects warped features and RGFS chooses "
            "between phi and warping, so both sit on top of FFW (use 'none' for per-frame phi)")
    return tuple(m for m in ALL_MODULES if m in items)


@dataclasses.dataclass(frozen=True)
class TapLabConfig:
    """Settings of the TapLab engine, with the paper's defaults (Cityscapes, 1024x2048, BL2)."""

    model: str = "bl2"
    gop: int = 12
    modules: Tuple[str, ...] = (FFW, RGC, RGFS)
    region_shape: Tuple[int, int] = (512, 512)
    region_stride: int = 256
    thr_rgc: float = 30.0
    thr_rgfs: float = 3.6e7
    alpha: float = 1.0  # Eq. 6: 1.0 lets phi's crop replace the warped region; Fig. 11 sweeps it.
    rgc_accumulate: bool = False
    rgfs_accumulate: bool = False
    rgfs_fraction: float = 0.0  # 0: Eq. 4 with thr_rgfs; (0, 1): the online target fraction
    # phi sees the frame resized by input_scale (e.g. 0.5: a 720x1280 video at CamVid's 360x640);
    # FFW, RGC and the output then work at stride output_stride / input_scale of the video, which
    # must be an integer (TapLabEngine snaps to the nearest one). 1.0: the paper (no resize).
    input_scale: float = 1.0
    propagation: str = "mv"  # FFW (Eq. 1); or a baseline of Table 3 (PROPAGATIONS)
    warp_interpolation: str = "nearest"  # FFW's lookup: the paper's gather, or 'bilinear'
    scale_to_frame: bool = True  # region grid and thr_rgfs scaled from 1024x2048 to the video
    # FFW's motion field repaired before the warp (pipeline.motion_field): 'none' (the paper's
    # FFW, the default) or a '+' list of fill, model, median, confidence.
    mv_refinement: str = "none"
    # FFW's vectors per 16x16 macroblock (the paper) or per 8x8 block (8): the reader then keeps
    # the 8x8 vectors of 4MV macroblocks, the warp and the refinement work on the 8x8 grid, and
    # wherever the pipeline encodes a video for this config (evaluation clips, the re-encode of
    # other codecs, benchmark clips) it allows 4MV (encoder flag +mv4, still Simple Profile).
    mv_block_size: int = 16

    @property
    def vector_block_size(self) -> int:
        """The grid the reader gives vectors and compensates residuals on for this config:
        mv_block_size where FFW warps with the stream's vectors, else the macroblocks (16)."""
        return self.mv_block_size if self.propagation == "mv" else 16

    @property
    def encoder_mv4(self) -> bool:
        """Whether videos encoded for this config should allow 8x8 (4MV) prediction."""
        return self.vector_block_size == 8

    def __post_init__(self):
        object.__setattr__(self, "modules", parse_modules(self.modules))
        from taplab_tf.pipeline import motion_field  # numpy only: the config stays TF-free
        try:
            methods = motion_field.parse_refinement(self.mv_refinement)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        object.__setattr__(self, "mv_refinement", "+".join(methods) or "none")
        object.__setattr__(self, "region_shape", tuple(int(v) for v in self.region_shape))
        self.validate()
        object.__setattr__(self, "rgfs_fraction", float(self.rgfs_fraction))  # np.float32 -> JSON
        for name in _SWITCHES:
            object.__setattr__(self, name, bool(getattr(self, name)))  # np.bool_ -> JSON

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> "TapLabConfig":
        if self.model not in MODEL_NAMES:
            raise ConfigError(f"model: {self.model!r} is not one of {list(MODEL_NAMES)}")
        if int(self.gop) != self.gop or self.gop < 1:
            raise ConfigError(f"gop: must be an integer >= 1, got {self.gop}")
        if len(self.region_shape) != 2 or min(self.region_shape) <= 0:
            raise ConfigError(
                f"region_shape: must be two positive integers (height, width), got {self.region_shape}")
        if int(self.region_stride) != self.region_stride or self.region_stride <= 0:
            raise ConfigError(f"region_stride: must be a positive integer, got {self.region_stride}")
        if self.thr_rgc < 0:
            raise ConfigError(f"thr_rgc: must be >= 0 (a residual magnitude), got {self.thr_rgc}")
        if self.thr_rgfs < 0:
            raise ConfigError(f"thr_rgfs: must be >= 0 (a sum of |Res|), got {self.thr_rgfs}")
        if not valid_input_scale(self.input_scale):
            raise ConfigError(f"input_scale: must be a number in (0, 4], got {self.input_scale}")
        if (isinstance(self.rgfs_fraction, bool)
                or not isinstance(self.rgfs_fraction, numbers.Real)
                or not 0.0 <= self.rgfs_fraction < 1.0):  # also refuses nan
            raise ConfigError(f"rgfs_fraction: must be a number in [0, 1) (0 = Eq. 4 with "
                              f"thr_rgfs), got {self.rgfs_fraction!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha: must lie in [0, 1], got {self.alpha}")
        if self.propagation not in PROPAGATIONS:
            raise ConfigError(f"propagation: {self.propagation!r} is not one of "
                              f"{list(PROPAGATIONS)}")
        if isinstance(self.mv_block_size, bool) or self.mv_block_size not in (8, 16):
            raise ConfigError(f"mv_block_size: must be 16 (one vector per macroblock, the paper) "
                              f"or 8 (4MV blocks), got {self.mv_block_size!r}")
        if self.warp_interpolation not in WARP_INTERPOLATIONS:
            raise ConfigError(f"warp_interpolation: {self.warp_interpolation!r} is not one of "
                              f"{list(WARP_INTERPOLATIONS)}")
        for name in _SWITCHES:
            v = getattr(self, name)
            if not (isinstance(v, bool) or getattr(getattr(v, "dtype", None), "kind", "") == "b"):
                raise ConfigError(f"{name}: must be True or False, got {v!r}")
        return self

    def check_frame(self, height: int, width: int, min_size: int = 1) -> None:
        """Raises ConfigError where the frame is smaller than min_size (the model's minimum: its
        output stride at the video's scale; the engine passes it) in either dimension, or the
        RGC region does not fit a frame of this size."""
        if height < min_size or width < min_size:
            raise ConfigError(
                f"frame: {height}x{width} is smaller than the model's minimum of "
                f"{min_size}x{min_size} pixels (one cell of its output stride {min_size})")
        if RGC in self.modules:
            rh, rw = self.region_shape
            if rh > height or rw > width:
                raise ConfigError(
                    f"region_shape: {rh}x{rw} does not fit inside the {height}x{width} frame; "
                    f"use a smaller --region_shape or config.scaled_to(height, width)")

    # -- derived ---------------------------------------------------------------------------
    @property
    def use_ffw(self) -> bool:
        return FFW in self.modules

    @property
    def use_rgc(self) -> bool:
        return RGC in self.modules

    @property
    def use_rgfs(self) -> bool:
        return RGFS in self.modules

    @property
    def modules_name(self) -> str:
        """'none', 'ffw', 'ffw_rgc', 'ffw_rgfs' or 'ffw_rgc_rgfs' (benchmark config names)."""
        return "_".join(self.modules) if self.modules else "none"

    def scaled_thr_rgfs(self, height: int, width: int) -> float:
        """thr_rgfs at a frame size other than 1024x2048: scaled by the frame area (Eq. 4)."""
        ref = REFERENCE_SIZE[0] * REFERENCE_SIZE[1]
        return float(self.thr_rgfs) * (height * width) / ref

    def scaled_to(self, height: int, width: int) -> "TapLabConfig":
        """The paper's region grid scaled to another frame size, kept on the 16-pixel block grid.

        512x512 regions with stride 256 at 1024x2048 become 256x256 with stride 128 at 512x1024.
        thr_rgfs is left as stated at 1024x2048 (scaled_thr_rgfs applies the area factor).
        """
        s = min(height / REFERENCE_SIZE[0], width / REFERENCE_SIZE[1])

        def block(v):
            return max(16, int(round(v * s / 16.0)) * 16)

        rh, rw = (min(block(v), dim // 16 * 16 or dim)
                  for v, dim in zip(self.region_shape, (height, width)))
        return dataclasses.replace(self, region_shape=(rh, rw),
                                   region_stride=block(self.region_stride))

    def replace(self, **changes) -> "TapLabConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["modules"] = list(self.modules)
        d["region_shape"] = list(self.region_shape)
        return d


def valid_input_scale(value) -> bool:
    """True for an input scale phi may run at: a real number in (0, 4] (not a bool, not NaN).
    The one range for TapLabConfig.input_scale, the trainer's eval_input_scale and model.json's
    input_scale; each caller words its own error."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value) and 0.0 < value <= 4.0)


def applied_input_scale(output_stride: int, input_scale: float) -> float:
    """input_scale as it is applied: output_stride / frame_stride (the stride on the frame is
    snapped to an integer), e.g. 4/3 for 1.3 at stride 4."""
    return output_stride / frame_stride(output_stride, input_scale)


def frame_stride(output_stride: int, input_scale: float) -> int:
    """The stride of phi's logits on the video's pixels when phi sees the frame resized by
    input_scale: output_stride / input_scale, snapped to the nearest integer (>= 1)."""
    return max(1, int(round(output_stride / input_scale)))


def phi_input_size(height: int, width: int, output_stride: int,
                   frame_stride_: int) -> Tuple[int, int]:
    """(height, width) of the frame as phi sees it, so that each logit cell covers exactly
    frame_stride_ video pixels (ceil: the logits cover the whole frame)."""
    s, e = int(output_stride), int(frame_stride_)
    return max(1, -(-height * s // e)), max(1, -(-width * s // e))


def auto_input_scale(phi_frame_height: float | None, frame_height: int,
                     output_stride: int) -> float:
    """phi's input scale for a video: the model sees objects at about the size it was evaluated
    at (phi_frame_height / video height; data.labels.phi_frame_height: the training frame
    height times the model's evaluation input_scale), kept to [1/8, 2], snapped so that
    output_stride / scale is an integer (the stride of the logits on the video). 1.0 where the
    training size is unknown."""
    if not phi_frame_height or frame_height <= 0:
        return 1.0
    raw = min(2.0, max(0.125, float(phi_frame_height) / float(frame_height)))
    return applied_input_scale(output_stride, raw)


def region_grid(height: int, width: int, region_shape: Sequence[int],
                region_stride: int, align: int = 1) -> list:
    """Top-left corners (y, x) of the overlapping RGC regions covering a frame (Sec. 3.3).

    Regions step by region_stride; a last row/column is added flush with the frame edge so that
    every pixel is covered. With align > 1 (the engine passes phi's output stride, so that a
    region maps onto whole logit cells) that last start is rounded down to a multiple of align,
    which may leave fewer than `align` pixels at the far edge outside every region.
    """
    rh, rw = region_shape
    if rh > height or rw > width:
        raise ConfigError(f"region_shape: {rh}x{rw} does not fit inside the {height}x{width} frame")

    def starts(extent, size):
        out = list(range(0, extent - size + 1, region_stride))
        last = (extent - size) // align * align
        if out[-1] != last:
            out.append(last)
        return out

    return [(y, x) for y in starts(height, rh) for x in starts(width, rw)]
