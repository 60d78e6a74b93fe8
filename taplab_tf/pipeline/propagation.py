"""Propagation: how phi's logits reach the frames between keyframes, behind one interface.

The engine (Algorithm 1) decides which frames go to phi (I-frames, RGFS) and corrects a region
(RGC); a Propagator gives the logits of every other frame. Chosen by name, from
TapLabConfig.propagation:

  mv              FFW (Eq. 1): F_t[p] = F_{t-1}[p - Mv_t[p]], the stream's motion vectors warping
                  the previous frame's logits (ops.mv_warp; TapLabConfig.warp_interpolation:
                  'nearest', the paper's gather, or 'bilinear'). The paper's method. With
                  TapLabConfig.mv_refinement the block vectors are repaired first
                  (pipeline.motion_field: fill, model, median, confidence).
  flow_dis        Table 3's optical-flow baselines on equal footing: flow computed from the decoded
  flow_farneback  frames by OpenCV (DIS, medium preset; Farneback), warped with tfa's
                  dense_image_warp.
  flow_dis_blocks a diagnostic: DIS flow averaged over each mv_block_size block and warped as FFW
                  warps the stream's vectors (ops.mv_warp, warp_interpolation). It separates the
                  vectors' quality from their granularity: where the stream's vectors score as
                  well as this, only finer blocks bring FFW closer to dense flow.
  itp             Table 3's interpolation baseline: F_t = (1 - w) F_key0 + w F_key1, w = t's
                  position between the neighbouring I-frames. Not causal: a frame's logits wait for
                  the next I-frame (at the end of the stream the last frame serves as the closing
                  keyframe), and RGC and RGFS, which correct or replace a frame's propagation, do
                  not apply to it.

Adding one: subclass Propagator (propagate; keyframe and close where it keeps state), add it to
PROPAGATORS, and its name to config.PROPAGATIONS (the config is checked without TensorFlow);
settings of its own go into TapLabConfig, which the constructor receives.

A Propagator is built once per engine (its tf.function steps are traced once); `start()` gives the
copy that carries one stream's state.
"""
from __future__ import annotations

import copy
import time
from typing import ClassVar, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from taplab_tf import config as config_lib
from taplab_tf import ops
from taplab_tf.pipeline import motion_field
from taplab_tf.ops.upsample_argmax import MAX_SOURCES, SOURCE_SHIFT


class PropagationError(ValueError):
    """A frame lacks what the propagation needs (motion vectors, pixels); the message says so."""


def frame_pixels(frame) -> np.ndarray:
    """The frame's RGB image; a clear error where the reader was opened without it."""
    image = frame.image
    if image is None:
        raise PropagationError("the reader gave no RGB image: open the video with rgb=True or "
                               "'lazy'")
    return image


class Propagator:
    """Gives the logits of the frames that phi does not see.

    Class attributes say what the engine must provide: `reads_all_pixels` (the reader converts
    every frame to RGB, not only those phi sees) and `causal` (False: a frame's logits wait for
    the next keyframe; RGC and RGFS then do not apply).
    """
    name: ClassVar[str] = ""
    reads_all_pixels: ClassVar[bool] = False
    causal: ClassVar[bool] = True

    def __init__(self, config: config_lib.TapLabConfig, frame_stride: int,
                 trace_counts: Optional[Dict[str, int]] = None):
        self.config = config
        self.frame_stride = int(frame_stride)  # video pixels per logit cell
        self.trace_counts = trace_counts if trace_counts is not None else {}
        self.reset()

    def start(self) -> "Propagator":
        """A copy for one stream: it shares the traced steps and starts with no stream state."""
        stream = copy.copy(self)
        stream.reset()
        return stream

    def reset(self) -> None:
        """Forgets the stream (the state a subclass carries from frame to frame)."""

    def keyframe(self, frame, logits: tf.Tensor) -> List[tf.Tensor]:
        """phi ran on the whole of `frame`, giving `logits`. Returns the logits of the frames
        held back since the previous keyframe, in order (none for a causal propagator)."""
        return []

    def propagate(self, frame, logits: tf.Tensor, timings: Dict[str, float]
                  ) -> Optional[tf.Tensor]:
        """The logits of `frame` (not a keyframe) from `logits`, the previous frame's; None where
        they wait for the next keyframe (`keyframe` returns them). Stage seconds other than the
        warp itself (e.g. 'flow') go into `timings`."""
        raise NotImplementedError

    def close(self):
        """At the end of the stream: the frame held back last, withdrawn (the engine runs phi on
        it as the closing keyframe, then calls `keyframe`), or None where none is held."""
        return None

    def take_region(self, logits, crop_logits, top: int, left: int):
        """RGC's blend (Eq. 6) done by the propagation's own representation of the logits, or
        None where it has none (the engine then blends the logits themselves)."""
        return None

    def prepare_region(self, logits, top: int, left: int, height: int, width: int) -> None:
        """Announces take_region(logits, crop, top, left) with a crop of height x width logit
        cells, before phi computes the crop: the part that does not need the crop's logits can
        run now (beside the steps before phi rather than after it, when the caches are cold)."""

    def region_ahead(self, top: int, left: int, height: int, width: int) -> None:
        """Announces, before `propagate`, the region that prepare_region will be given for the
        frame propagate is about to give (RGC chose it from the frame's residual, Eq. 3, which
        needs no logits): a propagation may prepare it together with the warp."""

    def wants_key_stats(self) -> bool:
        """True where the propagation reads the argmax statistics (ops.argmax_stats) of the
        logits it starts from: the engine's output step then computes them with the keyframe's
        labels in one pass (ops.logits_to_labels(with_stats=True)) and hands them over
        (key_stats)."""
        return False

    def key_stats(self, logits: tf.Tensor, stats) -> None:
        """ops.argmax_stats(logits) of the keyframe logits `logits`, computed by the output
        step (see wants_key_stats)."""


def block_warp_step(config: config_lib.TapLabConfig, frame_stride: int,
                    trace_counts: Dict[str, int]):
    """The traced warp of logits [1, h, w, C] by a block field [gh, gw, 2] (ops.mv_warp at
    config.mv_block_size: 16, or 8 with the 8x8 vectors of 4MV macroblocks, and
    config.warp_interpolation), used by FFW and by the block-averaged DIS diagnostic."""
    block, interpolation = config.mv_block_size, config.warp_interpolation

    def warp(logits, mv):
        trace_counts["warp"] = trace_counts.get("warp", 0) + 1  # runs at trace time only
        return ops.mv_warp(logits, mv[tf.newaxis], feature_stride=frame_stride, block_size=block,
                           interpolation=interpolation, border="clamp")

    # The warp is a custom op: kept out of XLA.
    return tf.function(warp, jit_compile=False, input_signature=[
        tf.TensorSpec([1, None, None, None], tf.float32),
        tf.TensorSpec([None, None, 2], tf.float32)])


class IndexedLogits:
    """Logits held as a gather: pixel p is sources[i][q] for index[p] = i << SOURCE_SHIFT | q.

    FFW's nearest warp (Eq. 1) copies whole logits vectors, so a chain of them from a keyframe
    is one gather of the keyframe's logits, and the chain's index map is the previous map warped
    by the frame's vectors the same way (ops.mv_warp on the int32 map; exact). RGC's blend at
    alpha = 1 (Eq. 6) replaces a region by phi's crop: the crop's logits become one more source
    and the region's positions point into it (MvWarp.take_region). Warping a [1, h, w, 1] map
    instead of the [1, h, w, C] logits, and taking the output step's shortcut from the sources'
    per-pixel statistics gathered by the index, copying the keyframe's labels where a cell moved
    whole (ops.upsample_argmax_indexed), leaves a propagated frame without a pass over the
    logits. The labels and logits are the same as those of the materialised chain;
    `materialize()` gives the logits themselves where they are needed (a blend at another
    alpha, keep_logits).
    """

    def __init__(self, sources: List[tf.Tensor], stats: List, index: Optional[tf.Tensor],
                 key_labels=None, prev_index: Optional[tf.Tensor] = None,
                 motion: Optional[tf.Tensor] = None, motion_block_size: int = 0,
                 warp_of: Optional[Tuple[tf.Tensor, tf.Tensor, int, int]] = None):
        # [1, h, w, C] float32, a keyframe's (or a blended frame's), then the logits of RGC's
        # crops (alpha = 1) whose region the map took over
        self.sources = sources
        self.stats = stats          # ops.argmax_stats of each source
        # int32 [1, h, w, 1]: source << SOURCE_SHIFT | flat position; what the warp moves and
        # the output step reads. None with warp_of = (map, motion, feature_stride, block_size):
        # the index is that map's nearest warp, computed when first read (MvWarp.region_ahead:
        # a frame whose region RGC takes over reads only the map warped and taken over in one
        # pass).
        self._index = index
        self._warp_of = warp_of
        if index is None and warp_of is None:
            raise ValueError("IndexedLogits: an index map or the warp that gives it")
        # sources[0]'s own labels [1, H, W] (the keyframe's output), where the engine has them:
        # the output step copies the cells the index keeps whole (ops.upsample_argmax_indexed).
        self.key_labels = key_labels
        # A frame warped from a frame of the same chain: that frame's index map and the block
        # vectors [1, gh, gw, 2] that moved it here. With that frame's labels (the engine has
        # them) the output step copies the cells the warp carried over whole (ops.PrevFrame).
        self.prev_index = prev_index
        self.motion = motion
        self.motion_block_size = motion_block_size  # the warp's block_size for `motion`

    @property
    def index(self) -> tf.Tensor:
        if self._index is None:
            index, motion, stride, block = self._warp_of
            self._index = ops.mv_warp(index, motion, feature_stride=stride, block_size=block,
                                      interpolation="nearest", border="clamp")
            self._warp_of = None
        return self._index

    @property
    def source(self) -> tf.Tensor:
        return self.sources[0]

    @property
    def shape(self):
        return self.source.shape

    def materialize(self) -> tf.Tensor:
        return ops.gather_indexed(self.sources, self.index)

    def numpy(self) -> np.ndarray:
        return self.materialize().numpy()


def materialize(logits):
    """The logits as a tensor, whether held as one or as IndexedLogits."""
    return logits.materialize() if isinstance(logits, IndexedLogits) else logits


class MvWarp(Propagator):
    """FFW (Eq. 1): the previous logits warped by the frame's motion vectors (ops.mv_warp).

    With the nearest warp and the compiled ops, the frames are propagated as IndexedLogits: the
    warp moves an index map, not the logits (the same labels; see IndexedLogits). RGC's blend
    with alpha = 1 keeps them so (take_region); with another alpha it is not used. The map's
    steps are single ops called eagerly: a tf.function's call costs more than they do."""
    name = "mv"

    def __init__(self, config, frame_stride, trace_counts=None):
        super().__init__(config, frame_stride, trace_counts)
        self._refinement = motion_field.Refinement.from_spec(config.mv_refinement)
        self._warp = block_warp_step(config, self.frame_stride, self.trace_counts)
        # RGC's blend keeps the map a gather where it replaces the region (alpha = 1).
        self.indexed = (config.warp_interpolation == "nearest" and ops.backend() == "cpp"
                        and (not config.use_rgc or config.alpha == 1.0))
        # (h, w) -> the map of a chain's start, every pixel its own position (shared by the
        # streams: start() copies the propagator, not this dict)
        self._identity: Dict[Tuple[int, int], tf.Tensor] = {}

    def reset(self) -> None:
        self._key_stats = None  # (keyframe logits, their argmax_stats) from the output step
        self._region = None  # prepare_region's (logits, top, left, height, width, taken index)
        self._ahead = None  # region_ahead's (top, left, height, width), for the next propagate

    def wants_key_stats(self) -> bool:
        return self.indexed

    def key_stats(self, logits, stats) -> None:
        self._key_stats = (logits, stats)

    def _start_index(self, logits) -> "IndexedLogits":
        """A keyframe's logits as the start of a chain: each pixel reads its own position. The
        statistics are the output step's where it computed them for these logits (key_stats),
        else computed here."""
        h, w = int(logits.shape[1]), int(logits.shape[2])
        identity = self._identity.get((h, w))
        if identity is None:
            identity = tf.constant(np.arange(h * w, dtype=np.int32).reshape(1, h, w, 1))
            self._identity[(h, w)] = identity
        given = self._key_stats
        stats = given[1] if given is not None and given[0] is logits else ops.argmax_stats(logits)
        return IndexedLogits([logits], [stats], identity, None)

    def _takes_region(self, logits) -> bool:
        return (self.config.alpha == 1.0 and self.indexed and isinstance(logits, IndexedLogits)
                and len(logits.sources) < MAX_SOURCES)

    def _taken_index(self, index: tf.Tensor, sources: int, top: int, left: int, crop_h: int,
                     crop_w: int, motion: Optional[tf.Tensor] = None) -> tf.Tensor:
        """The map `index` (first warped by `motion`, where given) whose region [top, top +
        crop_h) x [left, left + crop_w) reads the next source: Eq. 6 with alpha = 1 (one pass of
        TapLab>IndexTakeRegion; the crop is source number `sources`, the map's count)."""
        h, w = int(index.shape[1]), int(index.shape[2])
        if not (0 <= top and top + crop_h <= h and 0 <= left and left + crop_w <= w):
            raise PropagationError(f"RGC's region {crop_h}x{crop_w} at ({top}, {left}) does not "
                                   f"fit the {h}x{w} logits")
        if motion is None:
            return ops.index_take_region(index, top, left, crop_h, crop_w, sources)
        return ops.index_take_region(index, top, left, crop_h, crop_w, sources, motion=motion,
                                     feature_stride=self.frame_stride,
                                     block_size=self.config.mv_block_size)

    def region_ahead(self, top, left, height, width) -> None:
        """The next propagate warps the map and takes this region over in one pass
        (ops.index_take_region with the frame's vectors), and prepare_region finds it done."""
        self._ahead = (top, left, height, width)

    def prepare_region(self, logits, top, left, height, width) -> None:
        """The map's take-over (it needs only the region, not the crop's logits) computed now;
        take_region with the same arguments and a crop of this size uses it."""
        done = self._region
        if done is not None and done[0] is logits and done[1:5] == (top, left, height, width):
            return  # with the warp (region_ahead)
        self._region = None
        if self._takes_region(logits):
            self._region = (logits, top, left, height, width,
                            self._taken_index(logits.index, len(logits.sources), top, left,
                                              height, width))

    def take_region(self, logits, crop_logits, top: int, left: int) -> Optional["IndexedLogits"]:
        """RGC's blend with alpha = 1 (Eq. 6) on a map held as IndexedLogits: the region
        [top, top + crop h) x [left, left + crop w) of the map reads crop_logits, a new source.
        None where it cannot (another alpha, not indexed, or the map holds MAX_SOURCES sources
        already): the caller then blends the materialised logits."""
        prepared, self._region = self._region, None
        if not self._takes_region(logits):
            return None
        crop_h, crop_w = int(crop_logits.shape[1]), int(crop_logits.shape[2])
        if prepared is not None and prepared[0] is logits and prepared[1:5] == (
                top, left, crop_h, crop_w):
            index = prepared[5]
        else:
            index = self._taken_index(logits.index, len(logits.sources), top, left, crop_h,
                                      crop_w)
        # (the region's values are the new source's: no cell there matches the previous map)
        return IndexedLogits(logits.sources + [crop_logits],
                             logits.stats + [ops.argmax_stats(crop_logits)],
                             index, logits.key_labels, logits.prev_index, logits.motion,
                             logits.motion_block_size)

    def propagate(self, frame, logits, timings):
        mv = frame.motion_vectors
        if mv is None:
            raise PropagationError(f"frame {frame.index}: a P-frame without motion vectors")
        if self._refinement.methods:
            t0 = time.perf_counter()
            residual = None
            if "confidence" in self._refinement.methods:
                residual = frame.residual_block_counts(self.config.thr_rgc,
                                                       self.config.mv_block_size)
            mv, _ = motion_field.refine(mv, frame.intra_blocks, self._refinement, residual)
            timings["mv_refinement"] = time.perf_counter() - t0
        if not self.indexed:
            return self._warp(materialize(logits), tf.convert_to_tensor(mv, tf.float32))
        chained = isinstance(logits, IndexedLogits)
        if not chained:  # a keyframe's: the chain starts here
            if int(logits.shape[1]) * int(logits.shape[2]) > 1 << SOURCE_SHIFT:
                # more pixels than an index addresses
                return self._warp(logits, tf.convert_to_tensor(mv, tf.float32))
            logits = self._start_index(logits)
        # one tensor for the warp and for the output step's previous frame
        motion = tf.constant(np.asarray(mv, np.float32)[np.newaxis])
        ahead, self._ahead = self._ahead, None
        block = self.config.mv_block_size
        warp_of = (logits.index, motion, self.frame_stride, block)
        if chained:
            warped = IndexedLogits(logits.sources, logits.stats, None, logits.key_labels,
                                   logits.index, motion, block, warp_of=warp_of)
        else:  # from the keyframe itself: its labels are the key labels
            warped = IndexedLogits(logits.sources, logits.stats, None, logits.key_labels,
                                   warp_of=warp_of)
        if ahead is not None and self._takes_region(warped):
            # Eq. 1 and Eq. 6's take-over on the map in one pass; the warped map alone is
            # computed only if something reads it
            taken = self._taken_index(logits.index, len(logits.sources), *ahead, motion=motion)
            self._region = (warped, *ahead, taken)
        else:
            _ = warped.index  # the warp now, in the warp's time
        return warped


class FlowWarp(Propagator):
    """Optical flow from the decoded frames (OpenCV), warped with tfa's dense_image_warp."""
    reads_all_pixels = True
    method: ClassVar[str] = ""

    def reset(self) -> None:
        self._previous = None  # the previous frame's RGB

    def keyframe(self, frame, logits):
        self._previous = frame_pixels(frame)
        return []

    def _flow(self, previous_gray: np.ndarray, gray: np.ndarray) -> np.ndarray:
        """Backward flow [H, W, 2] (x, y): where each pixel of `gray` was in `previous_gray`."""
        raise NotImplementedError

    def _backward_flow(self, rgb: np.ndarray) -> np.ndarray:
        """_flow from the previous frame to this one (RGB); this frame becomes the previous."""
        import cv2
        flow = self._flow(cv2.cvtColor(self._previous, cv2.COLOR_RGB2GRAY),
                          cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        self._previous = rgb
        return flow

    def propagate(self, frame, logits, timings):
        import warnings

        import cv2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tfa's end-of-life banner
            import tensorflow_addons as tfa
        rgb = frame_pixels(frame)
        t0 = time.perf_counter()
        flow = self._backward_flow(rgb)
        h, w = int(logits.shape[1]), int(logits.shape[2])
        small = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) / self.frame_stride
        # dense_image_warp reads image[y - flow_y, x - flow_x]; backward flow points cur -> prev.
        dense = -np.stack([small[..., 1], small[..., 0]], axis=-1)[np.newaxis]
        timings["flow"] = time.perf_counter() - t0
        return tfa.image.dense_image_warp(logits, tf.constant(dense, tf.float32))


class DISFlowWarp(FlowWarp):
    name = "flow_dis"

    def __init__(self, config, frame_stride, trace_counts=None):
        import cv2
        super().__init__(config, frame_stride, trace_counts)
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def _flow(self, previous_gray, gray):
        return self._dis.calc(gray, previous_gray, None)


class BlockDISFlowWarp(DISFlowWarp):
    """DIS flow averaged per motion block, warped by ops.mv_warp like the stream's vectors."""
    name = "flow_dis_blocks"

    def __init__(self, config, frame_stride, trace_counts=None):
        super().__init__(config, frame_stride, trace_counts)
        self._warp = block_warp_step(config, self.frame_stride, self.trace_counts)

    def propagate(self, frame, logits, timings):
        rgb = frame_pixels(frame)
        t0 = time.perf_counter()
        # backward flow: where each pixel was in the previous frame = -(dst - src)
        mv = -motion_field.block_flow(self._backward_flow(rgb), self.config.mv_block_size)
        timings["flow"] = time.perf_counter() - t0
        return self._warp(logits, tf.convert_to_tensor(mv, tf.float32))


class FarnebackFlowWarp(FlowWarp):
    name = "flow_farneback"

    def _flow(self, previous_gray, gray):
        import cv2
        return cv2.calcOpticalFlowFarneback(gray, previous_gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)


class Interpolation(Propagator):
    """ITP: the logits of the two neighbouring keyframes, linearly interpolated."""
    name = "itp"
    causal = False
    # Every frame's RGB, as the baseline always had: the last frame it holds becomes a keyframe
    # only when the stream ends.
    reads_all_pixels = True

    def reset(self) -> None:
        self._key: Optional[Tuple[tf.Tensor, int]] = None  # (logits, index) of the last keyframe
        self._held: List[Tuple[object, Dict[str, float]]] = []  # (frame, timings) since then

    def propagate(self, frame, logits, timings):
        self._held.append((frame, timings))
        return None

    def keyframe(self, frame, logits):
        out = []
        if self._key is not None:
            key_logits, key_index = self._key
            span = max(frame.index - key_index, 1)
            for held, timings in self._held:
                w = (held.index - key_index) / span
                t0 = time.perf_counter()
                out.append((1.0 - w) * key_logits + w * logits)
                timings["warp"] = time.perf_counter() - t0
        self._held.clear()
        self._key = (logits, frame.index)
        return out

    def close(self):
        return self._held.pop()[0] if self._held else None


PROPAGATORS: Dict[str, type] = {p.name: p for p in (MvWarp, DISFlowWarp, FarnebackFlowWarp,
                                                     BlockDISFlowWarp, Interpolation)}


def build(config: config_lib.TapLabConfig, frame_stride: int,
          trace_counts: Optional[Dict[str, int]] = None) -> Propagator:
    """The propagator config.propagation names."""
    if config.propagation not in PROPAGATORS:
        raise config_lib.ConfigError(f"propagation: {config.propagation!r} is not one of "
                                     f"{list(PROPAGATORS)}")
    return PROPAGATORS[config.propagation](config, frame_stride, trace_counts)
