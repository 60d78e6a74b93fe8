"""The TapLab engine: Algorithm 1 of the paper over a compressed video.

For each frame, in decode order, fed by third_party.compressed_video:

  I-frame                       F = phi(I)
  P-frame, RGFS fires (Eq. 4)   F = phi(I)
  P-frame otherwise             F = FFW(Mv, F_prev)                         (Eq. 1, mv_warp)
      with RGC (Eq. 3, 6)       F[R] = (1 - alpha) F[R] + alpha phi(I[R]), R the region with
                                the most pixels where |Res| > thr_rgc
  every frame                   labels = argmax(bilinear_upsample(F))     (one output path)

F are the logits of phi at its output stride. They stay TF tensors between frames (FFW with the
nearest warp holds them as a gather of the keyframe's logits and of RGC's crops at alpha = 1,
whose index map is what it warps: pipeline.propagation.IndexedLogits; the labels are the same).
phi (and the warp and blend of logits held as tensors) run in tf.function steps traced once per
input shape (the full frame and the RGC crop); the output step and FFW's steps on the index map
are single custom ops called eagerly, where a function's call would cost more than the op. The
warp is a custom op and is kept out of XLA. Decoding runs in a reader thread with a bounded queue
so that it overlaps inference; that thread also counts and scores RGC's regions (Eq. 3) ahead of
the loop, which then takes their argmax.

phi runs as a frozen inference graph (freeze=True, the default; taplab_tf.models.frozen_forward):
the model's weights are folded into constants once, when the engine is built (and each
depthwise convolution's BatchNorm into its filter), which makes BL2 faster on the CPU, most on
the small RGC crops (the measured figures are in README.md, from experiments.model_info); the
outputs agree to float rounding. The engine therefore serves the weights it was built with:
build a new engine after changing them. Where a model cannot be frozen the engine says so once
and runs phi on the live variables (`engine.phi_graph` tells which).

Region grid and thr_rgfs are stated at the paper's 1024x2048 (TapLabConfig); with
`TapLabConfig.scale_to_frame` (the default) they are scaled to the video's frame size: regions by
TapLabConfig.scaled_to, thr_rgfs by the frame area (TapLabConfig.scaled_thr_rgfs).

The parts around the loop have their own homes: the config (taplab_tf.config.TapLabConfig, the
one source of every setting), propagation (pipeline.propagation: FFW and the baselines of Table 3
behind one interface), and the RGC and RGFS decisions with the state they carry across a stream
(pipeline.decisions).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Dict, Iterable, Iterator, Optional, Tuple

import numpy as np
import tensorflow as tf

from taplab_tf import config as config_lib
from taplab_tf import ops
from taplab_tf.pipeline import decisions
from taplab_tf.pipeline import propagation as propagation_lib
from third_party.compressed_video import prefetch


# How much lower the reader thread's scheduling priority is than inference's (Linux nice).
# Measured on 2 cores (paper-size BL2, 1024x2048, all three modules): the warp of a propagated
# frame 3.8 -> 1.4-1.9 ms, FPS +2-7%, the time inference waits on the reader unchanged.
READER_NICE = 10
# While phi is not running, the reader starts a frame only if fewer than this many decoded frames
# wait for the loop (prefetch.Gate): its ~25 MB of memory traffic a frame at 1024x2048 (decode,
# colour conversion, residual pass) then runs beside phi, which streams memory anyway, not beside
# the small steps of a propagated frame, whose caches it evicted. Measured on 2 cores (paper-size
# BL2, 1024x2048, all three modules): the warp's mean 1.9 -> 0.85 ms (its 3-4 ms calls gone),
# the bound ratio 1.072 -> 1.063, decode_wait unchanged. With FFW alone (phi on I-frames only)
# the queue stays low, and the reader runs as before.
READER_LOW_WATER = 2


class EngineError(ValueError):
    """The engine cannot run on this input; the message names the problem."""


@dataclasses.dataclass
class FrameResult:
    """What the engine did for one frame, and its labels."""
    index: int
    pict_type: str                 # 'I' or 'P'
    gop_position: int              # frames since the last I-frame
    action: str                    # 'phi' (I-frame or per-frame), 'rgfs' (phi on a P-frame),
    #                                'ffw' (propagated), 'itp' (interpolated, propagation='itp')
    # uint8 HxW trainIds (None with output='none'): a read-only view of the output step's
    # tensor (not a copy; np.array(labels) gives a writable one)
    labels: Optional[np.ndarray]
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


_pixels = propagation_lib.frame_pixels  # the RGB image, or one line where the reader gave none


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
      config: TapLabConfig, every setting of the algorithm: modules, thresholds, region grid,
        the original code's variants (rgc_accumulate, rgfs_accumulate), propagation ('mv', FFW,
        or a baseline of Table 3: pipeline.propagation), warp_interpolation, scale_to_frame,
        input_scale. gop is a property of the encoded stream; the engine follows the picture
        types the stream carries. Change a setting with config.replace(...) and a new engine.
      output_stride: stride of the logits; defaults to `model.output_stride`.
      queue_size: decoded frames held ahead of inference (the one decode-ahead thread; 0: none).
      freeze: run phi as a frozen inference graph (see the module docstring).
      indexed_ffw: FFW's nearest warp moves an index map into the keyframe's logits (and RGC
        at alpha = 1 adds its crop as a source) instead of warping and blending the logits
        (propagation.IndexedLogits; the same labels); False warps and blends the logits
        themselves every frame (the benchmark's *_materialized configs, for comparison).
    """

    def __init__(self, model: tf.keras.Model, config: config_lib.TapLabConfig, *,
                 output_stride: Optional[int] = None, queue_size: int = 4, freeze: bool = True,
                 indexed_ffw: bool = True):
        self.model = model
        try:
            self.config = config.validate()
        except AttributeError:
            raise EngineError(f"config: expected a TapLabConfig, got {type(config).__name__}"
                              ) from None
        self.output_stride = int(output_stride or getattr(model, "output_stride", 0) or 0)
        if self.output_stride <= 0:
            raise EngineError("output_stride: the model has no output_stride attribute; pass "
                              "output_stride= explicitly")
        # phi's input scale (TapLabConfig.input_scale): logits then sit at an integer stride of
        # the VIDEO's pixels, frame_stride = output_stride / input_scale, snapped to the nearest
        # integer; FFW (the block-to-cell lookup), the RGC grid and the output use it.
        self.frame_stride = config_lib.frame_stride(self.output_stride, self.config.input_scale)
        self.input_scale = self.output_stride / self.frame_stride
        self.num_classes = int(model.outputs[0].shape[-1]) if model.outputs else None
        self.queue_size = queue_size
        self.trace_counts: Dict[str, int] = {"phi": 0, "warp": 0, "blend": 0}
        self.propagator = propagation_lib.build(self.config, self.frame_stride,
                                                self.trace_counts)
        if not indexed_ffw and getattr(self.propagator, "indexed", False):
            self.propagator.indexed = False
        # What the loop runs: a propagation that is not causal (ITP) interpolates between the
        # I-frames alone; RGC and RGFS, which correct or replace a frame's propagation, do not
        # apply to it.
        self._algorithm = (self.config if self.propagator.causal
                           else self.config.replace(modules=(config_lib.FFW,)))
        self.phi_graph = "variables"  # or "frozen", set by _build_steps
        self._scorers: Dict[Tuple[int, int], decisions.RegionScorer] = {}  # _region_scorer
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
        s, e = self.output_stride, self.frame_stride
        h, w = config_lib.phi_input_size(*image.shape[:2], s, e)
        interp = cv2.INTER_AREA if e > s else cv2.INTER_LINEAR
        return cv2.resize(image, (w, h), interpolation=interp)  # cv2 takes (width, height)

    def _build_steps(self, freeze: bool):
        counts = self.trace_counts
        model = self.model
        frozen = self._frozen_model() if freeze else None
        self.phi_graph = "frozen" if frozen is not None else "variables"
        forward = frozen or (lambda x: model(x, training=False))

        def phi(image):
            counts["phi"] += 1  # runs at trace time only
            x = tf.cast(image, tf.float32)[tf.newaxis]
            return forward(x)

        def blend(logits, crop_logits, top, left, alpha):
            # Eq. 6 on the region [top, top+h) x [left, left+w) of the logits: one pass of the
            # compiled kernel (ops.region_blend; its TF fallback concats around the region).
            counts["blend"] += 1
            return ops.region_blend(logits, crop_logits, top, left, alpha)

        spec = tf.TensorSpec
        self._phi = tf.function(phi, reduce_retracing=False)
        self._blend = tf.function(blend, input_signature=[
            spec([1, None, None, None], tf.float32), spec([1, None, None, None], tf.float32),
            spec([], tf.int32), spec([], tf.int32), spec([], tf.float32)])
        self._no_key_labels = tf.zeros([1, 0, 0], tf.uint8)

    def _output(self, logits, height: int, width: int, with_stats: bool = False):
        """The output step of logits held as a tensor: uint8 labels [1, height, width] straight
        from the fused kernel (no int32 map, no cast pass), one op run eagerly
        (ops.logits_to_labels with static sizes; a tf.function's call cost ~1 ms more at a
        keyframe, right after phi). with_stats: also the argmax statistics that FFW's chain from
        these logits reads, from the same pass: (labels, stats)."""
        return ops.logits_to_labels(logits, height, width, self.frame_stride,
                                    output_dtype=tf.uint8, with_stats=with_stats)

    def _output_indexed(self, logits, height: int, width: int, prev_labels=None) -> tf.Tensor:
        """The output step (the same rule) for FFW's logits held as a gather
        (propagation.IndexedLogits): one op, run eagerly (a tf.function's call costs more than
        the op's dispatch here, and the number of sources varies). prev_labels: the labels
        [1, height, width] of the frame whose map logits.prev_index is, where the engine has
        them (the op then copies the cells the warp carried over whole). Returns the labels
        [1, height, width]."""
        prev = None
        if prev_labels is not None and logits.prev_index is not None:
            prev = ops.PrevFrame(logits.prev_index, prev_labels, logits.motion,
                                 self.frame_stride, logits.motion_block_size)
        return ops.indexed_logits_to_labels(
            logits.sources, logits.index, height, width, self.frame_stride, stats=logits.stats,
            key_labels=(self._no_key_labels if logits.key_labels is None
                        else logits.key_labels), output_dtype=tf.uint8, prev=prev)

    # -- helpers ---------------------------------------------------------------------------
    def _frames_source(self, frames: Iterable, gate: prefetch.Gate
                       ) -> Iterator[Tuple[Tuple[object, Optional[np.ndarray]], float]]:
        """((frame, RGC's region scores or None), reader seconds), through the reader thread
        unless queue_size is 0 or the reader decodes ahead itself (open_compressed(prefetch=N)):
        one such thread, not two. The thread starts a frame when `gate` lets it
        (READER_LOW_WATER), and scores its regions (_prepared)."""
        if self.queue_size > 0 and not getattr(frames, "prefetch", 0):
            # Decoding overlaps inference; at most queue_size frames are decoded ahead. The
            # reader thread runs at a lower priority (READER_NICE): phi's and the ops' threads
            # take a core from it at once instead of waiting out its time slice, and it
            # decodes in the time they leave. It also counts RGC's residual blocks (Eq. 3)
            # ahead of the loop, which then reads them.
            return prefetch.background(lambda warn: self._prepared(frames), self.queue_size,
                                       name="taplab-reader", join_timeout=5.0,
                                       nice=READER_NICE, gate=gate)
        return (((f, None), 0.0) for f in frames)

    def _prepared(self, frames: Iterable) -> Iterator[Tuple[object, Optional[np.ndarray]]]:
        """(frame, region scores) with what the loop will ask of the frame computed first, on
        the thread that iterates them: RGC's block counts at thr_rgc (kept by the frame's
        residual) and each region's score (Eq. 3) for a P-frame, else None. Scored here, the
        loop's choice of region is an argmax: measured in the all-three loop (BL2, 1024x2048,
        AMD EPYC Zen 5), 0.18 -> 0.04 ms a frame on the inference thread, where the scores'
        matrix product ran with its code out of the caches."""
        items = iter(frames)
        try:
            for frame in items:
                scores = None
                if self._algorithm.use_rgc and frame.pict_type == "P":
                    try:
                        scores = self._region_scorer(*_frame_size(frame)).scores(
                            self._rgc_counts(frame))
                    except Exception:  # noqa: BLE001 - the loop asks again and reports it
                        pass
                yield frame, scores
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _rgc_counts(self, frame) -> np.ndarray:
        """Eq. 3's input: the frame's residual pixels above thr_rgc per block. One call for the
        reader thread that counts ahead and the loop that reads the counts, so that both ask
        for the same ones (the residual keeps them per threshold and block size)."""
        return frame.residual_block_counts(self._algorithm.thr_rgc)

    def _region_scorer(self, height: int, width: int) -> decisions.RegionScorer:
        """RGC's region scorer for frames of this size (settings_for's grid), built once; the
        reader thread (_prepared) and the loop use the same one."""
        scorer = self._scorers.get((height, width))
        if scorer is None:
            cfg, _ = self.settings_for(height, width)
            scorer = self._scorers.setdefault((height, width), decisions.RegionScorer(
                height, width, cfg.region_shape, cfg.region_stride, align=self.frame_stride))
        return scorer

    def settings_for(self, height: int, width: int) -> Tuple[config_lib.TapLabConfig, float]:
        """The config and RGFS threshold in force for a frame of this size."""
        cfg = self._algorithm
        if cfg.scale_to_frame and (height, width) != config_lib.REFERENCE_SIZE:
            cfg = cfg.scaled_to(height, width)
        thr_rgfs = (cfg.scaled_thr_rgfs(height, width) if cfg.scale_to_frame
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

    # -- the loop --------------------------------------------------------------------------
    def segment(self, frames: Iterable, *, output: str = "labels",
                keep_logits: bool = False, keep_images: bool = False) -> Iterator[FrameResult]:
        """Runs Algorithm 1 over frames from the reader (an iterable of CompressedFrame, e.g.
        `open_compressed(path, residual='summary')`, or a path). Yields one FrameResult a frame,
        in decode order (with propagation='itp' a frame's result waits for the next keyframe).

        output='labels' computes the label map of every frame (the same upsample-argmax path for
        phi and propagated frames); 'none' skips it (timing the propagation alone).
        keep_images=True puts each frame's RGB image into its result (what an overlay writer
        needs; the reader must then give RGB for every frame: rgb=True).
        """
        if isinstance(frames, (str, bytes)) or hasattr(frames, "__fspath__"):
            yield from self.segment_video(frames, output=output, keep_logits=keep_logits,
                                          keep_images=keep_images)
            return

        # The last logits computed in full and their labels, for FFW's copy; and the index map
        # and labels of the last frame FFW propagated as an index map, for the next one's.
        key = [None, None]
        last_indexed = [None, None]

        def result(frame, t, reader_s, size, logits, action, rgfs_score=0.0, region=None):
            labels = None
            if output != "none":
                t0 = time.perf_counter()
                if isinstance(logits, propagation_lib.IndexedLogits):
                    prev_labels = (last_indexed[1] if logits.prev_index is not None
                                   and logits.prev_index is last_indexed[0] else None)
                    out = self._output_indexed(logits, *size, prev_labels)
                    labels = np.asarray(out)[0]  # a read-only view, no copy
                    last_indexed[:] = [logits.index, out]
                else:
                    last_indexed[:] = [None, None]
                    if propagator.wants_key_stats():
                        out, stats = self._output(logits, *size, with_stats=True)
                        propagator.key_stats(logits, stats)  # the chain from here reads them
                    else:
                        out = self._output(logits, *size)
                    labels = np.asarray(out)[0]  # a read-only view, no copy
                    key[:] = [logits, out]  # FFW's chain from these logits may copy these
                t["output"] = time.perf_counter() - t0
            return FrameResult(
                index=frame.index, pict_type=frame.pict_type, gop_position=frame.gop_position,
                action=action, labels=labels, rgfs_score=rgfs_score, rgc_region=region,
                timings=t, reader_seconds=reader_s, logits=logits.numpy() if keep_logits else None,
                image=_pixels(frame) if keep_images else None)

        propagator = self.propagator.start()  # this stream's propagation state
        cfg = None
        rgc = rgfs = None  # the decisions' state over this stream (built for the frame size)
        logits = None
        held = []  # (frame, timings, reader seconds, size) whose logits wait for a keyframe
        # open while phi runs: the reader decodes ahead then (READER_LOW_WATER)
        gate = prefetch.Gate(READER_LOW_WATER)
        gate.close()
        source = self._frames_source(frames, gate)
        while True:
            t0 = time.perf_counter()
            try:
                (frame, region_scores), reader_s = next(source)
            except StopIteration:
                break
            # decode_wait: time inference waited on the reader (decode not hidden by overlap);
            # reader: what decoding + MV/residual extraction of this frame cost the reader thread.
            t = {"decode_wait": time.perf_counter() - t0}
            # The pixels are read only where phi or flow needs them: a reader opened with
            # rgb='lazy' then skips the colour conversion of every frame FFW propagates.
            size = _frame_size(frame)
            if cfg is None:
                cfg, thr_rgfs = self.settings_for(*size)
                if cfg.use_rgc:
                    rgc = decisions.RGCChoice(self._region_scorer(*size), cfg.rgc_accumulate)
                if cfg.use_rgfs:
                    # rgfs_fraction > 0: the threshold follows this stream's own scores;
                    # thr_rgfs is then unused.
                    rgfs = decisions.RGFSTrigger(thr_rgfs, cfg.rgfs_accumulate, cfg.rgfs_fraction)
            region = None
            rgfs_score = float(getattr(frame, "residual_sum", 0.0) or 0.0)
            is_key = frame.pict_type == "I" or not cfg.use_ffw or logits is None
            action = "phi"
            if not is_key and rgfs is not None:  # Eq. 4
                if rgfs.fires(rgfs_score):
                    is_key, action = True, "rgfs"
                rgfs_score = rgfs.score
            if is_key:
                with gate.opened():  # (outside phi's timer, as below)
                    t0 = time.perf_counter()
                    logits = self._phi(self._phi_input(_pixels(frame)))
                    t["phi"] = time.perf_counter() - t0
                if rgfs is not None:
                    rgfs.keyframe()
                if rgc is not None and frame.pict_type == "I":
                    rgc.start_gop()
                caught_up = propagator.keyframe(frame, logits)  # the held frames' logits
                for (f, ft, fr, fsize), f_logits in zip(held, caught_up):
                    yield result(f, ft, fr, fsize, f_logits, propagator.name)
                held.clear()
            else:
                action = "ffw"
                s = self.frame_stride
                if rgc is not None:  # Eq. 3 chooses the region from the residual alone
                    t0 = time.perf_counter()
                    region = (rgc.choose(self._rgc_counts(frame)) if region_scores is None
                              else rgc.choose(scores=region_scores))
                    y, x, rh, rw = region
                    # (FFW's index map: warped and taken over in one pass)
                    propagator.region_ahead(y // s, x // s, rh // s, rw // s)
                    t["correct"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                propagated = propagator.propagate(frame, logits, t)  # Eq. 1 with 'mv'
                if propagated is None:
                    held.append((frame, t, reader_s, size))
                    continue
                if (isinstance(propagated, propagation_lib.IndexedLogits)
                        and propagated.key_labels is None and propagated.source is key[0]):
                    propagated.key_labels = key[1]  # [1, H, W], once per chain
                logits = propagated
                t["warp"] = (time.perf_counter() - t0 - t.get("flow", 0.0)
                             - t.get("mv_refinement", 0.0))
                if rgc is not None:  # Eq. 6 blends phi's crop into the region
                    t0 = time.perf_counter()
                    # what Eq. 6 does to FFW's index map needs only the region: done now (or
                    # with the warp)
                    propagator.prepare_region(logits, y // s, x // s, rh // s, rw // s)
                    crop = self._phi_input(_pixels(frame)[y:y + rh, x:x + rw])
                    with gate.opened():
                        t1 = time.perf_counter()
                        crop_logits = self._phi(crop)
                        t["phi_crop"] = time.perf_counter() - t1  # Eq. 2's crop term, alone
                    # alpha = 1 on FFW's index map: the region reads the crop's logits.
                    taken = propagator.take_region(logits, crop_logits, y // s, x // s)
                    if taken is not None:
                        logits = taken
                    else:
                        logits = self._blend(propagation_lib.materialize(logits), crop_logits,
                                             tf.constant(y // s), tf.constant(x // s),
                                             tf.constant(cfg.alpha, tf.float32))
                    t["correct"] += time.perf_counter() - t0 - t["phi_crop"]
            yield result(frame, t, reader_s, size, logits, action, rgfs_score, region)
        closing = propagator.close()
        if closing is not None:  # no closing keyframe came: phi on the last frame held
            frame, t, reader_s, size = held.pop()
            with gate.opened():
                t0 = time.perf_counter()
                logits = self._phi(self._phi_input(_pixels(closing)))
                t["phi"] = time.perf_counter() - t0
            caught_up = propagator.keyframe(closing, logits)
            for (f, ft, fr, fsize), f_logits in zip(held, caught_up):
                yield result(f, ft, fr, fsize, f_logits, propagator.name)
            yield result(frame, t, reader_s, size, logits, "phi")

    # -- the reader ------------------------------------------------------------------------
    def reader_options(self, keep_images: bool = False) -> Dict[str, object]:
        """The open_compressed options this config needs: the one place they are chosen.
        FFW alone reads the pixels of keyframes only, so the reader converts just those
        (rgb='lazy'), unless every frame's image is wanted (keep_images, e.g. an overlay). The
        reader does not decode ahead itself: the engine's queue (queue_size) does."""
        cfg = self._algorithm
        need_residual = cfg.use_rgc or cfg.use_rgfs or (
            "confidence" in cfg.mv_refinement and cfg.propagation == "mv")
        lazy = not need_residual and cfg.use_ffw and not self.propagator.reads_all_pixels
        return {"rgb": "lazy" if lazy and not keep_images else True,
                "residual": "summary" if need_residual else None, "prefetch": 0,
                "mv_block_size": cfg.vector_block_size}

    def open_video(self, path, *, keep_images: bool = False):
        """The compressed video at `path`, opened with reader_options (a context manager)."""
        from third_party.compressed_video import open_compressed
        return open_compressed(path, **self.reader_options(keep_images))

    def segment_video(self, path, *, output: str = "labels", keep_logits: bool = False,
                      keep_images: bool = False) -> Iterator[FrameResult]:
        """Reader -> Algorithm 1 in one pass: opens the video at `path` with what this config
        needs (reader_options) and yields `segment`'s FrameResults; with keep_images each
        carries its frame's RGB for a writer."""
        with self.open_video(path, keep_images=keep_images) as video:
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
