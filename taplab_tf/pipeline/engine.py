"""The TapLab engine: Algorithm 1 of the paper over a compressed video.

For each frame, in decode order, fed by third_party.compressed_video:

  I-frame                       F = phi(I)
  P-frame, RGFS fires (Eq. 4)   F = phi(I)
  P-frame otherwise             F = FFW(Mv, F_prev)                         (Eq. 1, mv_warp)
      with RGC (Eq. 3, 6)       F[R] = (1 - alpha) F[R] + alpha phi(I[R]), R the region with
                                the most pixels where |Res| > thr_rgc
  every frame                   labels = argmax(bilinear_upsample(F))     (one output path)

F are the logits of phi at its output stride. They stay TF tensors between frames; the per-frame
work runs in tf.function steps traced once per input shape (the full frame and the RGC crop). The
warp is a custom op and is kept out of XLA. Decoding runs in a reader thread with a bounded queue
so that it overlaps inference.

phi runs as a frozen inference graph (freeze=True, the default; taplab_tf.models.frozen_forward):
the model's weights are folded into constants once, when the engine is built (and each
depthwise convolution's BatchNorm into its filter), which makes BL2 faster on the CPU, most on
the small RGC crops (the measured figures are in README.md, from experiments.model_info); the
outputs agree to float rounding. The engine therefore serves the weights it was built with:
build a new engine after changing them. Where a model cannot be frozen the engine says so once
and runs phi on the live variables (`engine.phi_graph` tells which).

Region grid and thr_rgfs are stated at the paper's 1024x2048 (TapLabConfig); with
`scale_to_frame=True` (the default) they are scaled to the video's frame size: regions by
TapLabConfig.scaled_to, thr_rgfs by the frame area (TapLabConfig.scaled_thr_rgfs).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Dict, Iterable, Iterator, Optional, Tuple

import numpy as np
import tensorflow as tf

from taplab_tf import config as config_lib
from taplab_tf import ops
from taplab_tf.pipeline import modules
from third_party.compressed_video import prefetch

PROPAGATIONS = ("mv", "flow_dis", "flow_farneback", "itp")


class EngineError(ValueError):
    """The engine cannot run on this input; the message names the problem."""


@dataclasses.dataclass
class FrameResult:
    """What the engine did for one frame, and its labels."""
    index: int
    pict_type: str                 # 'I' or 'P'
    gop_position: int              # frames since the last I-frame
    action: str                    # 'phi' (I-frame or per-frame), 'rgfs' (phi on a P-frame), 'ffw'
    labels: Optional[np.ndarray]   # uint8 HxW trainIds (None with output='none')
    rgfs_score: float = 0.0        # sum |Res| of this frame (or accumulated, see rgfs_accumulate)
    rgc_region: Optional[Tuple[int, int, int, int]] = None  # (y, x, h, w) corrected by RGC
    # Seconds per stage on the inference thread: decode_wait, phi, warp, correct, output.
    timings: Dict[str, float] = dataclasses.field(default_factory=dict)
    reader_seconds: float = 0.0    # decode + MV/residual extraction, on the reader thread
    logits: Optional[np.ndarray] = None  # with keep_logits=True
    image: Optional[np.ndarray] = None   # the frame's RGB, with keep_images=True (for a writer)

    @property
    def keyframe(self) -> bool:
        """phi ran on the whole frame."""
        return self.action in ("phi", "rgfs")


def _pixels(frame) -> np.ndarray:
    """The frame's RGB image; a clear error where the reader was opened without it."""
    image = frame.image
    if image is None:
        raise EngineError("the reader gave no RGB image: open the video with rgb=True or 'lazy'")
    return image


def _frame_size(frame) -> Tuple[int, int]:
    """(height, width) without reading the pixels where the frame says its size."""
    h, w = getattr(frame, "height", None), getattr(frame, "width", None)
    if h is None or w is None:
        return tuple(_pixels(frame).shape[:2])
    return int(h), int(w)


class TapLabEngine:
    """Runs TapLab (Algorithm 1) with a segmentation model phi over compressed videos.

    Args:
      model: a Keras model mapping float32 RGB [0, 255] [N,H,W,3] to logits at `output_stride`
        (taplab_tf.models.build_model / load_model); fully convolutional.
      config: TapLabConfig (gop is a property of the encoded stream; the engine follows the
        picture types the stream carries).
      output_stride: stride of the logits; defaults to `model.output_stride`.
      scale_to_frame: scale region grid and thr_rgfs from 1024x2048 to the video's size.
      warp_interpolation: 'nearest' (the paper's gather) or 'bilinear'.
      rgc_accumulate, rgfs_accumulate: override the config's variants of the original code
        (TapLabConfig.rgc_accumulate: region scores accumulated across the GOP, the chosen one
        reset; TapLabConfig.rgfs_accumulate: RGFS on the residual summed since the last
        keyframe). None keeps the config's setting.
      propagation: 'mv' (FFW, the paper) or a baseline of Table 3 on equal footing: optical
        flow from the decoded frames ('flow_dis', 'flow_farneback'), warped with tfa
        dense_image_warp; or 'itp', linear interpolation of the logits of the two neighbouring
        I-frames (it waits for the next I-frame, so its results come a GOP late; at the end of
        the stream the last frame serves as the closing keyframe). RGC and RGFS apply to 'mv'
        and the flow baselines, not to 'itp'.
      queue_size: decoded frames held ahead of inference.
      freeze: run phi as a frozen inference graph (see the module docstring).
    """

    def __init__(self, model: tf.keras.Model, config: config_lib.TapLabConfig, *,
                 output_stride: Optional[int] = None, scale_to_frame: bool = True,
                 warp_interpolation: str = "nearest", rgc_accumulate: Optional[bool] = None,
                 rgfs_accumulate: Optional[bool] = None, propagation: str = "mv",
                 queue_size: int = 4, freeze: bool = True):
        self.model = model
        variants = {k: bool(v) for k, v in (("rgc_accumulate", rgc_accumulate),
                                             ("rgfs_accumulate", rgfs_accumulate))
                    if v is not None}
        self.config = config.replace(**variants).validate() if variants else config.validate()
        self.output_stride = int(output_stride or getattr(model, "output_stride", 0) or 0)
        if self.output_stride <= 0:
            raise EngineError("output_stride: the model has no output_stride attribute; pass "
                              "output_stride= explicitly")
        if propagation not in PROPAGATIONS:
            raise EngineError(f"propagation: {propagation!r} is not one of {list(PROPAGATIONS)}")
        if warp_interpolation not in ("nearest", "bilinear"):
            raise EngineError(f"warp_interpolation: {warp_interpolation!r} is not 'nearest' or "
                              "'bilinear'")
        # phi's input scale (TapLabConfig.input_scale): logits then sit at an integer stride of
        # the VIDEO's pixels, frame_stride = output_stride / input_scale, snapped to the nearest
        # integer; FFW (the block-to-cell lookup), the RGC grid and the output use it.
        self.frame_stride = max(1, int(round(self.output_stride / self.config.input_scale)))
        self.input_scale = self.output_stride / self.frame_stride
        self.num_classes = int(model.outputs[0].shape[-1]) if model.outputs else None
        self.scale_to_frame = scale_to_frame
        self.warp_interpolation = warp_interpolation
        self.propagation = propagation
        self.queue_size = queue_size
        self.trace_counts: Dict[str, int] = {"phi": 0, "warp": 0, "blend": 0, "output": 0}
        self.phi_graph = "variables"  # or "frozen", set by _build_steps
        self._build_steps(freeze)

    # -- the tf.function steps -----------------------------------------------------------
    def _frozen_model(self):
        """phi with its weights folded into constants, or None (said once) where that fails."""
        import logging
        from taplab_tf import models
        try:
            return models.frozen_forward(self.model)
        except models.FreezeError as e:
            logging.getLogger("taplab_tf").warning(
                "TapLabEngine: phi could not be frozen (%s); running it on the model's "
                "variables, which is slower", e)
            return None

    def _phi_input(self, image: np.ndarray) -> np.ndarray:
        """The frame (or RGC crop) as phi sees it: resized by input_scale so that each logit cell
        covers exactly frame_stride video pixels (ceil, so the logits cover the whole frame)."""
        if self.frame_stride == self.output_stride:
            return image
        import cv2
        h, w = image.shape[:2]
        s, e = self.output_stride, self.frame_stride
        size = (max(1, -(-w * s // e)), max(1, -(-h * s // e)))  # cv2 takes (width, height)
        interp = cv2.INTER_AREA if e > s else cv2.INTER_LINEAR
        return cv2.resize(image, size, interpolation=interp)

    def _build_steps(self, freeze: bool):
        counts = self.trace_counts
        model = self.model
        stride = self.frame_stride
        interpolation = self.warp_interpolation
        frozen = self._frozen_model() if freeze else None
        self.phi_graph = "frozen" if frozen is not None else "variables"
        forward = frozen or (lambda x: model(x, training=False))

        def phi(image):
            counts["phi"] += 1  # runs at trace time only
            x = tf.cast(image, tf.float32)[tf.newaxis]
            return forward(x)

        def warp(logits, mv):
            counts["warp"] += 1
            return ops.mv_warp(logits, mv[tf.newaxis], feature_stride=stride,
                               interpolation=interpolation, border="clamp")

        def blend(logits, crop_logits, top, left, alpha):
            # Eq. 6 on the region [top, top+h) x [left, left+w) of the logits. Only the region
            # is computed; two concats copy the rest (measured faster here than a masked blend
            # over the whole map or TensorStridedSliceUpdate).
            counts["blend"] += 1
            h, w = tf.shape(crop_logits)[1], tf.shape(crop_logits)[2]
            rows = logits[:, top:top + h]
            region = rows[:, :, left:left + w]
            region = region + alpha * (crop_logits - region)
            rows = tf.concat([rows[:, :, :left], region, rows[:, :, left + w:]], axis=2)
            return tf.concat([logits[:, :top], rows, logits[:, top + h:]], axis=1)

        def output(logits, height, width):
            counts["output"] += 1
            # uint8 labels straight from the fused kernel (no int32 map, no cast pass).
            return ops.logits_to_labels(logits, height, width, stride, output_dtype=tf.uint8)[0]

        spec = tf.TensorSpec
        self._phi = tf.function(phi, reduce_retracing=False)
        self._warp = tf.function(warp, jit_compile=False, input_signature=[
            spec([1, None, None, None], tf.float32), spec([None, None, 2], tf.float32)])
        self._blend = tf.function(blend, input_signature=[
            spec([1, None, None, None], tf.float32), spec([1, None, None, None], tf.float32),
            spec([], tf.int32), spec([], tf.int32), spec([], tf.float32)])
        self._output = tf.function(output, input_signature=[
            spec([1, None, None, None], tf.float32), spec([], tf.int32), spec([], tf.int32)])

    # -- helpers ---------------------------------------------------------------------------
    def _frames_source(self, frames: Iterable) -> Iterator[Tuple[object, float]]:
        """(frame, reader seconds) pairs, through the reader thread unless queue_size is 0."""
        if self.queue_size > 0:
            # Decoding overlaps inference; at most queue_size frames are decoded ahead.
            return prefetch.background(lambda warn: iter(frames), self.queue_size,
                                       name="taplab-reader", join_timeout=5.0)
        return ((f, 0.0) for f in frames)

    def settings_for(self, height: int, width: int) -> Tuple[config_lib.TapLabConfig, float]:
        """The config and RGFS threshold in force for a frame of this size."""
        cfg = self.config
        if self.scale_to_frame and (height, width) != config_lib.REFERENCE_SIZE:
            cfg = cfg.scaled_to(height, width)
        thr_rgfs = (cfg.scaled_thr_rgfs(height, width) if self.scale_to_frame
                    else float(cfg.thr_rgfs))
        try:
            cfg.check_frame(height, width, min_size=self.frame_stride)
        except config_lib.ConfigError as e:
            raise EngineError(str(e)) from None
        s = self.frame_stride
        if cfg.use_rgc and s != self.output_stride:
            # phi at another scale: the region grid snaps to whole logit cells of the video.
            def snap(v, limit):
                return min(max(s, int(round(v / s)) * s), max(s, limit // s * s))
            cfg = cfg.replace(region_shape=(snap(cfg.region_shape[0], height),
                                            snap(cfg.region_shape[1], width)),
                              region_stride=snap(cfg.region_stride, max(height, width)))
        if cfg.use_rgc and (cfg.region_shape[0] % s or cfg.region_shape[1] % s
                            or cfg.region_stride % s):
            raise EngineError(
                f"region_shape {cfg.region_shape} / region_stride {cfg.region_stride} must be "
                f"multiples of the model's output stride {s}")
        return cfg, thr_rgfs

    def _flow_warp(self, logits, prev_rgb, rgb, t):
        import warnings

        import cv2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tfa's end-of-life banner
            import tensorflow_addons as tfa
        t0 = time.perf_counter()
        prev = cv2.cvtColor(prev_rgb, cv2.COLOR_RGB2GRAY)
        cur = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self.propagation == "flow_dis":
            if not hasattr(self, "_dis"):
                self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            flow = self._dis.calc(cur, prev, None)  # backward flow: cur pixel -> prev position
        else:
            flow = cv2.calcOpticalFlowFarneback(cur, prev, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        h, w = int(logits.shape[1]), int(logits.shape[2])
        s = self.frame_stride
        small = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) / s
        # dense_image_warp reads image[y - flow_y, x - flow_x]; backward flow points cur -> prev.
        dense = -np.stack([small[..., 1], small[..., 0]], axis=-1)[np.newaxis]
        t["flow"] = time.perf_counter() - t0
        return tfa.image.dense_image_warp(logits, tf.constant(dense, tf.float32))

    # -- the loop --------------------------------------------------------------------------
    def segment(self, frames: Iterable, *, output: str = "labels",
                keep_logits: bool = False, keep_images: bool = False) -> Iterator[FrameResult]:
        """Runs Algorithm 1 over frames from the reader (an iterable of CompressedFrame, e.g.
        `open_compressed(path, residual='summary')`, or a path). Yields one FrameResult a frame.

        output='labels' computes the label map of every frame (the same upsample-argmax path for
        phi and propagated frames); 'none' skips it (timing the propagation alone).
        keep_images=True puts each frame's RGB image into its result (what an overlay writer
        needs; the reader must then give RGB for every frame: rgb=True).
        """
        if isinstance(frames, (str, bytes)) or hasattr(frames, "__fspath__"):
            yield from self.segment_video(frames, output=output, keep_logits=keep_logits,
                                          keep_images=keep_images)
            return
        if self.propagation == "itp":
            for r in self._segment_itp(frames, output, keep_logits, keep_images):
                yield r
            return
        cfg = self.config
        logits = None
        prev_rgb = None
        scorer = None
        acc_scores = None
        acc_rgfs = 0.0
        thr_rgfs = None
        # rgfs_fraction > 0: the threshold follows this stream's own scores (a new trigger for
        # each stream); thr_rgfs is then unused.
        online_rgfs = (modules.OnlineRGFSTrigger(cfg.rgfs_fraction)
                       if cfg.use_rgfs and cfg.rgfs_fraction > 0 else None)
        source = self._frames_source(frames)
        while True:
            t0 = time.perf_counter()
            try:
                frame, reader_s = next(source)
            except StopIteration:
                break
            # decode_wait: time inference waited on the reader (decode not hidden by overlap);
            # reader: what decoding + MV/residual extraction of this frame cost the reader thread.
            t = {"decode_wait": time.perf_counter() - t0}
            # The pixels are read only where phi or flow needs them: a reader opened with
            # rgb='lazy' then skips the colour conversion of every frame FFW propagates.
            height, width = _frame_size(frame)
            if thr_rgfs is None:
                cfg, thr_rgfs = self.settings_for(height, width)
                if cfg.use_rgc:
                    scorer = modules.RegionScorer(height, width, cfg.region_shape,
                                                  cfg.region_stride, align=self.frame_stride)
                    acc_scores = np.zeros(len(scorer.regions)) if cfg.rgc_accumulate else None
            region = None
            rgfs_score = float(getattr(frame, "residual_sum", 0.0) or 0.0)
            is_key = frame.pict_type == "I" or not cfg.use_ffw or logits is None
            action = "phi"
            if not is_key and cfg.use_rgfs:
                acc_rgfs = acc_rgfs + rgfs_score if cfg.rgfs_accumulate else rgfs_score
                if (online_rgfs.fires(acc_rgfs) if online_rgfs is not None
                        else modules.rgfs_fires(acc_rgfs, thr_rgfs)):
                    is_key, action = True, "rgfs"
                rgfs_score = acc_rgfs
            if is_key:
                t0 = time.perf_counter()
                logits = self._phi(self._phi_input(_pixels(frame)))
                t["phi"] = time.perf_counter() - t0
                acc_rgfs = 0.0
                if acc_scores is not None and frame.pict_type == "I":
                    acc_scores[:] = 0.0
            else:
                action = "ffw"
                t0 = time.perf_counter()
                if self.propagation == "mv":
                    mv = frame.motion_vectors
                    if mv is None:
                        raise EngineError(f"frame {frame.index}: a P-frame without motion vectors")
                    logits = self._warp(logits, tf.convert_to_tensor(mv, tf.float32))
                else:
                    logits = self._flow_warp(logits, prev_rgb, _pixels(frame), t)
                t["warp"] = time.perf_counter() - t0 - t.get("flow", 0.0)
                if cfg.use_rgc:
                    t0 = time.perf_counter()
                    counts = frame.residual_block_counts(cfg.thr_rgc)
                    best, _ = scorer.select(counts, acc_scores)
                    region = scorer.regions[best]
                    y, x, rh, rw = region
                    crop_logits = self._phi(self._phi_input(_pixels(frame)[y:y + rh, x:x + rw]))
                    s = self.frame_stride
                    logits = self._blend(logits, crop_logits, tf.constant(y // s),
                                         tf.constant(x // s), tf.constant(cfg.alpha, tf.float32))
                    t["correct"] = time.perf_counter() - t0
            labels = None
            if output != "none":
                t0 = time.perf_counter()
                labels = self._output(logits, tf.constant(height), tf.constant(width)).numpy()
                t["output"] = time.perf_counter() - t0
            if self.propagation != "mv":
                prev_rgb = _pixels(frame)
            yield FrameResult(
                index=frame.index, pict_type=frame.pict_type, gop_position=frame.gop_position,
                action=action, labels=labels, rgfs_score=rgfs_score, rgc_region=region,
                timings=t, reader_seconds=reader_s, logits=logits.numpy() if keep_logits else None,
                image=_pixels(frame) if keep_images else None)

    def _segment_itp(self, frames: Iterable, output: str, keep_logits: bool,
                     keep_images: bool = False) -> Iterator[FrameResult]:
        """The ITP baseline: F_t = (1 - w) F_key0 + w F_key1, w = t's position between them."""
        pending = []  # (frame, timings, reader seconds) since the last keyframe
        key_logits, key_index = None, None

        def emit(frame, t, reader_s, logits, height, width, action):
            labels = None
            if output != "none":
                t0 = time.perf_counter()
                labels = self._output(logits, tf.constant(height), tf.constant(width)).numpy()
                t["output"] = time.perf_counter() - t0
            return FrameResult(index=frame.index, pict_type=frame.pict_type,
                               gop_position=frame.gop_position, action=action, labels=labels,
                               timings=t, reader_seconds=reader_s,
                               logits=logits.numpy() if keep_logits else None,
                               image=_pixels(frame) if keep_images else None)

        def flush(next_logits, next_index):
            for frame, t, reader_s, height, width in pending:
                w = (frame.index - key_index) / max(next_index - key_index, 1)
                t0 = time.perf_counter()
                logits = (1.0 - w) * key_logits + w * next_logits
                t["warp"] = time.perf_counter() - t0
                yield emit(frame, t, reader_s, logits, height, width, "itp")
            pending.clear()

        source = self._frames_source(frames)
        last = None
        for frame, reader_s in source:
            t = {}
            height, width = _frame_size(frame)
            if frame.pict_type == "I" or key_logits is None:
                t0 = time.perf_counter()
                logits = self._phi(self._phi_input(_pixels(frame)))
                t["phi"] = time.perf_counter() - t0
                if key_logits is not None:
                    yield from flush(logits, frame.index)
                key_logits, key_index = logits, frame.index
                yield emit(frame, t, reader_s, logits, height, width, "phi")
                last = None
            else:
                pending.append((frame, t, reader_s, height, width))
                last = frame
        if pending:  # no closing I-frame: phi on the last frame closes the interval
            frame, t, reader_s, height, width = pending.pop()
            t0 = time.perf_counter()
            logits = self._phi(self._phi_input(_pixels(last)))
            t["phi"] = time.perf_counter() - t0
            yield from flush(logits, last.index)
            yield emit(frame, t, reader_s, logits, height, width, "phi")

    def reader_options(self, keep_images: bool = False) -> Dict[str, object]:
        """The open_compressed options this config needs: the one place they are chosen.
        FFW alone reads the pixels of keyframes only, so the reader converts just those
        (rgb='lazy'), unless every frame's image is wanted (keep_images, e.g. an overlay)."""
        cfg = self.config
        need_residual = (cfg.use_rgc or cfg.use_rgfs) and self.propagation != "itp"
        lazy = not need_residual and self.propagation == "mv" and cfg.use_ffw
        return {"rgb": "lazy" if lazy and not keep_images else True,
                "residual": "summary" if need_residual else None}

    def segment_video(self, path, *, output: str = "labels", keep_logits: bool = False,
                      keep_images: bool = False) -> Iterator[FrameResult]:
        """Opens a compressed video with what this config needs and runs `segment` over it."""
        from third_party.compressed_video import open_compressed
        with open_compressed(path, **self.reader_options(keep_images)) as video:
            yield from self.segment(video, output=output, keep_logits=keep_logits,
                                    keep_images=keep_images)


def summarize(results: Iterable[FrameResult], wall_seconds: Optional[float] = None) -> dict:
    """Frames, keyframes (I and RGFS), RGC corrections, mean FPS and the time split."""
    results = list(results)
    n = len(results)
    split: Dict[str, float] = {}
    for r in results:
        for k, v in r.timings.items():
            split[k] = split.get(k, 0.0) + v
    busy = sum(split.values())
    p_frames = [r for r in results if r.pict_type == "P"]
    out = {
        "frames": n,
        "i_frames": sum(r.pict_type == "I" for r in results),
        "rgfs_keyframes": sum(r.action == "rgfs" for r in results),
        "rgfs_fraction": (sum(r.action == "rgfs" for r in p_frames) / len(p_frames)
                          if p_frames else 0.0),
        "rgc_corrections": sum(r.rgc_region is not None for r in results),
        # the P-frames' RGFS scores (sum |Res|, Eq. 4), to see where a threshold falls
        "rgfs_score_range": ([min(r.rgfs_score for r in p_frames),
                              max(r.rgfs_score for r in p_frames)] if p_frames else None),
        "time_split_ms": {k: 1000.0 * v / max(n, 1) for k, v in sorted(split.items())},
    }
    out["reader_ms"] = 1000.0 * sum(r.reader_seconds for r in results) / max(n, 1)
    seconds = wall_seconds if wall_seconds is not None else busy
    out["seconds"] = seconds
    out["fps"] = n / seconds if seconds > 0 else float("nan")
    return out
