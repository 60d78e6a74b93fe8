"""Streaming reader of MPEG-4 Part 2 compressed video: frames, motion vectors and residuals in ONE
sequential decoding pass (PyAV with ``flags2=+export_mvs``), no GOP re-decoding.

    with open_compressed("clip.avi", rgb=True, residual="summary") as video:
        print(video)                   # <CompressedVideo 'clip.avi' mpeg4 2048x1024 17 fps 600 frames ...>
        for frame in video:            # CompressedFrame, in decode (= display) order
            frame.index, frame.gop_index, frame.gop_position, frame.pict_type   # PictureType.I | .P
            frame.image                # uint8 [H, W, 3] RGB, or None when rgb=False
            frame.motion_vectors       # float32 [ceil(H/B), ceil(W/B), 2] (dx, dy) = dst - src; None on I
            frame.intra_blocks         # bool grid: blocks coded intra (their vector is (0, 0)); None on I
            frame.residual             # int16 [H, W, 3] RGB (residual='full'), else None
            frame.residual_sum         # float, sum over pixels and channels of |Res|; 0.0 on I-frames
            frame.residual_block_counts(thr)   # int32 [ceil(H/16), ceil(W/16)]
            frame.dense_motion()       # float32 [H, W, 2] per-pixel expansion of motion_vectors

open_compressed(path, rgb=True|False|'lazy', residual='full'|'summary'|None, mv_block_size=16,
                accumulate=False, color='swscale'|'cv2', threads=None, prefetch=0)
                -> CompressedVideo
  The option values have names (enums.py, all StrEnums, so the strings above work the same):
  rgb=RGBMode.EAGER|LAZY|OFF, residual=ResidualMode.FULL|SUMMARY|None,
  color=ColorConversion.SWSCALE|CV2; any other value is a one-line ValueError naming the allowed
  ones. ``frame.pict_type`` is a PictureType, equal to 'I' or 'P'.
  CompressedVideo: context manager and iterable (each ``for`` is a fresh single pass from frame 0);
  ``.height .width .fps .codec .num_frames .num_gops .path``; ``.iter_frames(start_gop=0)`` starts at
  an I-frame (seek, then sequential); ``.gop_starts`` (frame index of every I-frame, from packet
  flags, no decoding).

Definitions (see motion.py for the block-vector conventions):
  * Res_t = frame_t - MC(frame_{t-1}, Mv_t) in RGB, int16, where frame_{t-1} is the previous
    *decoded* frame (after RGB conversion) and MC is motion.motion_compensate with the vectors at
    ``mv_block_size`` (so ``motion_compensate(prev.image, f.motion_vectors) + f.residual ==
    f.image`` exactly). This is coviar's definition (frame minus motion-compensated previous
    frame, RGB); it is computed here (block copy with bilinear
    sub-pixel interpolation, clamped at borders), not taken from the codec's DCT residual, which
    lives in YUV. Intra blocks have vector (0, 0), so their residual is the temporal difference.
    With 4MV macroblocks and mv_block_size=16 the compensation uses the macroblock's mean vector;
    use mv_block_size=8 to compensate with every 8x8 vector.
  * Backends (native.backend()): 'native' (default when a C++ compiler is available: the kernel
    in native/residual.cc, compiled on first use and cached) computes, for integer and half-pel
    vectors (all of MPEG-4 Part 2), the prediction, Res, the per-pixel channel sum of |Res|
    (uint16) and residual_sum in ONE pass over the frame, multi-threaded, without the GIL;
    'numpy' (COMPRESSED_VIDEO_NATIVE=0, no compiler, or finer vectors such as H.264's
    quarter-pel) uses motion.MotionCompensator and OpenCV. Both give identical frames (tested).
  * The residual of a P-frame is a residual.Residual (computed by residual.ResidualComputer, which
    picks the backend); the frame's residual attributes and methods delegate to it.
  * residual='full' computes the int16 map and the summaries; residual='summary' computes
    residual_sum (exact) and the channel-sum map (native; numpy keeps the prediction instead)
    for residual_block_counts, never the int16 map; residual=None computes nothing
    (residual_sum is then None on P-frames, and residual_block_counts raises).
  * frame.abs_residual(): uint8 [H, W, 3] |Res| (on demand, from the int16 map or, in summary
    mode, by compensating the kept previous frame again; None on I-frames).
  * residual_block_counts(thr): per 16x16 block (clipped at the border), the number of pixels whose
    mean over the 3 channels of |Res| exceeds thr. RGC sums these over a region, RGFS uses
    residual_sum.
  * accumulate=True adds ``frame.accumulated_motion`` float32 [H, W, 2]: per-pixel motion back to the
    GOP's I-frame (coviar's accumulate mode; motion.accumulate_motion), None on I-frames.
  * rgb=False skips colour conversion unless a residual is requested (which needs RGB internally).
    rgb='lazy' converts a frame only when its ``image`` is read (in the reader's thread or the
    caller's), so a consumer that needs the pixels of a few frames only (FFW propagates P-frames
    with their motion vectors alone) does not pay for the rest; with a residual it is rgb=True.
  * color: 'swscale' (default) converts YUV 4:2:0 to RGB with FFmpeg's swscale (BT.601, limited
    range; the faster here), 'cv2' with OpenCV's COLOR_YUV2RGB_I420 (odd sizes use swscale).
  * threads: decoder thread count (None: FFmpeg's automatic choice); frame threading is on.
  * prefetch=N (default 0): a background thread decodes and computes up to N frames ahead of the
    consumer, overlapping the reader's work with the caller's (FFmpeg, OpenCV and numpy release
    the GIL); same frames, errors and warnings, in order.

Frame sizes need not be multiples of 16: the codec pads to whole macroblocks and crops when
decoding; grids have ceil(H/B) x ceil(W/B) cells, images exactly H x W.

Errors: ReaderError with one line naming the file: missing, empty, not a video, no video stream,
a codec without usable motion vectors (names it and the re-encode command), B-frames (names the
re-encode command), frame size changing mid-stream. A stream cut or damaged mid-way yields the
frames decoded before the damage and then a ReaderWarning (stop at the first damaged packet:
later P-frames would depend on it); a stream that ends before the frame count (or duration) its
container announces also warns (Matroska silently drops a cut last block).
H.264 is read with a ReaderWarning: FFmpeg exports its vectors, but they may point to older
reference frames, so the residual against the previous frame is not the codec's.
"""
from __future__ import annotations

import os
import warnings
from typing import Iterator, List, Optional, Union

import cv2
import numpy as np

from .encoder import encode_command
from .enums import ColorConversion, PictureType, ResidualMode, RGBMode
from .errors import ReaderError, ReaderWarning
from .prefetch import background
from .motion import accumulate_motion, block_motion, expand_motion, grid_shape
from .residual import NO_RESIDUAL, Residual, ResidualComputer

NATIVE_CODECS = ("mpeg4",)
# Codecs whose decoders export motion vectors that follow the same block-prediction model; read with
# a warning.
SIMILAR_CODECS = ("h263", "h263p", "flv1", "mpeg1video", "mpeg2video", "msmpeg4v2", "msmpeg4v3")
H264_CODECS = ("h264",)
RESIDUAL_MODES = (ResidualMode.FULL, ResidualMode.SUMMARY, None)
_DECODER_OPTIONS = {"flags2": "+export_mvs", "err_detect": "crccheck+bitstream+buffer+explode"}


try:
    from av.sidedata.sidedata import SideDataContainer as _SideDataContainer
except ImportError:  # pragma: no cover - other PyAV layouts
    _SideDataContainer = None


def _side_data(frame):
    """The frame's side data without ``frame.side_data``: in PyAV 18 that property caches a
    container that points back to the frame, a reference cycle that only the cyclic GC frees, so
    every decoded frame (3 MB at 1024x2048) stayed in memory until a full collection (measured:
    +300 MB over 100 frames). A container built here references the frame one way only."""
    if _SideDataContainer is not None:
        return _SideDataContainer(frame)
    return frame.side_data


def _short(e: BaseException) -> str:
    """One line from an FFmpeg/PyAV exception, without errno and the repeated file name."""
    msg = getattr(e, "strerror", None) or str(e)
    s = str(msg).strip().splitlines()
    return f"FFmpeg: {s[0]}" if s else type(e).__name__


class CompressedFrame:
    """One decoded frame with its compressed-domain data (see the module docstring). Its residual
    lives in a residual.Residual (None on I-frames and with residual=None), which the residual
    properties and methods delegate to."""

    __slots__ = ("index", "gop_index", "gop_position", "pict_type", "pts", "time", "height",
                 "width", "motion_vectors", "intra_blocks", "accumulated_motion", "_image",
                 "_decoded", "_convert", "_res")

    def __init__(self, index, gop_index, gop_position, pict_type, height, width, pts=None,
                 time=None):
        self.index = index
        self.gop_index = gop_index
        self.gop_position = gop_position
        self.pict_type = PictureType(pict_type)
        self.height, self.width = height, width
        self.pts, self.time = pts, time
        self._image: Optional[np.ndarray] = None
        self._decoded = None   # rgb='lazy': the decoded PyAV frame, converted on first access
        self._convert = None
        self.motion_vectors: Optional[np.ndarray] = None
        self.intra_blocks: Optional[np.ndarray] = None
        self.accumulated_motion: Optional[np.ndarray] = None
        self._res: Optional[Residual] = None

    @property
    def image(self) -> Optional[np.ndarray]:
        """uint8 [H, W, 3] RGB (None with rgb=False). With rgb='lazy' the colour conversion runs
        on first access, in the caller's thread, and is kept."""
        if self._image is None and self._decoded is not None:
            self._image = self._convert(self._decoded)
            self._decoded = self._convert = None
        return self._image

    @image.setter
    def image(self, value: Optional[np.ndarray]) -> None:
        self._image, self._decoded, self._convert = value, None, None

    @property
    def is_iframe(self) -> bool:
        return self.pict_type == PictureType.I

    @property
    def residual(self) -> Optional[np.ndarray]:
        """int16 [H, W, 3] Res (residual='full'), else None."""
        return None if self._res is None else self._res.map

    @property
    def residual_sum(self) -> Optional[float]:
        """Sum over pixels and channels of |Res|; 0.0 on I-frames, None without a residual."""
        if self._res is not None:
            return self._res.total
        return 0.0 if self.pict_type == PictureType.I else None

    @residual_sum.setter
    def residual_sum(self, value: Optional[float]) -> None:
        if self._res is None:
            self._res = Residual(value)
        else:
            self._res.total = value

    def dense_motion(self) -> Optional[np.ndarray]:
        """Per-pixel float32 [H, W, 2] expansion of motion_vectors (None on I-frames)."""
        if self.motion_vectors is None:
            return None
        return expand_motion(self.motion_vectors, self.height, self.width)

    def abs_residual(self) -> Optional[np.ndarray]:
        """uint8 [H, W, 3] |Res| (computed on first use; None on I-frames). In summary mode it
        is recomputed from this frame's and the previous frame's images: do not modify those in
        place before calling it."""
        if self.pict_type == PictureType.I:
            return None
        if self._res is None:
            raise ReaderError(NO_RESIDUAL)
        return self._res.abs()

    def residual_block_counts(self, thr: float, block_size: int = 16) -> np.ndarray:
        """int32 [ceil(H/B), ceil(W/B)]: pixels per block whose mean-over-channels |Res| > thr.
        Zeros on I-frames."""
        if self.pict_type == PictureType.I:
            return np.zeros(grid_shape(self.height, self.width, block_size), np.int32)
        if self._res is None:
            raise ReaderError(NO_RESIDUAL)
        return self._res.block_counts(thr, block_size)

    def __repr__(self) -> str:
        parts = [f"#{self.index}", f"{self.pict_type}", f"gop={self.gop_index}:{self.gop_position}",
                 f"{self.width}x{self.height}"]
        if self._image is not None or self._decoded is not None:
            parts.append("rgb")
        if self.motion_vectors is not None:
            mv = self.motion_vectors
            mag = float(np.hypot(mv[..., 0], mv[..., 1]).mean()) if mv.size else 0.0
            parts.append(f"mv={mv.shape[0]}x{mv.shape[1]} mean|mv|={mag:.2f}")
            if self.intra_blocks is not None and self.intra_blocks.any():
                parts.append(f"intra={int(self.intra_blocks.sum())}")
        if self.residual_sum is not None and self.pict_type != PictureType.I:
            parts.append(f"sum|res|={self.residual_sum:.0f}")
        return f"<CompressedFrame {' '.join(parts)}>"


class CompressedVideo:
    """An opened compressed video; iterate it for CompressedFrames (see module docstring)."""

    def __init__(self, path, rgb: Union[bool, str, RGBMode] = True,
                 residual: Union[str, ResidualMode, None] = ResidualMode.FULL,
                 mv_block_size: int = 16, accumulate: bool = False,
                 color: Union[str, ColorConversion] = ColorConversion.SWSCALE,
                 threads: Optional[int] = None, prefetch: int = 0):
        self.path = os.fspath(path)
        residual = ResidualMode.parse(residual)
        if mv_block_size not in (8, 16):
            raise ValueError(f"mv_block_size must be 8 or 16, got {mv_block_size}")
        self.color = ColorConversion.parse(color)
        self.rgb_mode = RGBMode.parse(rgb)
        # 'lazy' needs RGB eagerly all the same where a residual is computed from it.
        self.lazy_rgb = self.rgb_mode == RGBMode.LAZY and residual is None
        self.rgb = self.rgb_mode != RGBMode.OFF
        self.residual_mode, self.mv_block_size = residual, mv_block_size
        self.accumulate, self.threads = bool(accumulate), threads
        if int(prefetch) != prefetch or prefetch < 0:
            raise ValueError(f"prefetch must be a non-negative integer, got {prefetch!r}")
        self.prefetch = int(prefetch)
        p = self.path
        if not os.path.exists(p):
            raise ReaderError(f"{p}: no such file")
        if os.path.isdir(p):
            raise ReaderError(f"{p}: is a directory, not a video (encode it: {encode_command(p)})")
        if os.path.getsize(p) == 0:
            raise ReaderError(f"{p}: empty file")
        self._container = self._open_container()
        stream = self._container.streams.video[0]
        cc = stream.codec_context
        self.codec = cc.name
        self.width, self.height = cc.width, cc.height
        if not self.width or not self.height:
            self.close()
            raise ReaderError(f"{p}: video stream has no frame size (not a decodable video)")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else None
        self._header_frames = int(stream.frames or 0)
        # what the container announces (frame count, else duration x rate; e.g. Matroska), to
        # notice a stream that was cut without a damaged packet
        self._expected_frames = self._header_frames
        if not self._expected_frames and self._container.duration and self.fps:
            self._expected_frames = int(self._container.duration / 1e6 * self.fps + 0.5)
        self._gop_starts: Optional[List[int]] = None
        self._num_frames: Optional[int] = None
        if self.codec in NATIVE_CODECS:
            pass
        elif self.codec in H264_CODECS:
            warnings.warn(f"{p}: H.264 stream: FFmpeg exports its motion vectors, but they may "
                          f"reference frames other than the previous one, so residuals here "
                          f"(against the previous frame) differ from the codec's; for TapLab "
                          f"semantics re-encode: {encode_command(p)}", ReaderWarning, stacklevel=3)
        elif self.codec in SIMILAR_CODECS:
            warnings.warn(f"{p}: {self.codec} is not MPEG-4 Part 2; its motion vectors are read "
                          f"the same way", ReaderWarning, stacklevel=3)
        else:
            self.close()
            raise ReaderError(f"{p}: codec '{self.codec}' has no motion vectors this reader can "
                              f"use (needs MPEG-4 Part 2); re-encode: {encode_command(p)}")
        if cc.has_b_frames or (cc.max_b_frames or 0) > 0:
            self.close()
            raise ReaderError(f"{p}: stream has B-frames (decoder delay); re-encode without "
                              f"them: {encode_command(p)}")
        self._used = False

    # -- container handling -------------------------------------------------------------------
    def _open_container(self):
        import av
        p = self.path
        try:
            container = av.open(p, "r", options={"probesize": "5000000"})
        except Exception as e:  # noqa: BLE001 -- FFmpeg raises many types
            raise ReaderError(f"{p}: not a readable video, or its header is truncated "
                              f"({_short(e)})") from None
        if not container.streams.video:
            container.close()
            raise ReaderError(f"{p}: no video stream (not a video file)")
        stream = container.streams.video[0]
        try:
            stream.codec_context.options = dict(_DECODER_OPTIONS)
            # frame threading: about 1.6x the throughput of slice threading for MPEG-4 here;
            # exported motion vectors travel with their frame.
            stream.thread_type = "AUTO"
            if self.threads is not None:
                stream.codec_context.thread_count = int(self.threads)
        except Exception as e:  # noqa: BLE001
            container.close()
            raise ReaderError(f"{p}: cannot set up the decoder ({_short(e)})") from None
        return container

    def close(self):
        c = getattr(self, "_container", None)
        if c is not None:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
            self._container = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        self.close()

    # -- metadata -------------------------------------------------------------------------------
    def _index_packets(self):
        """gop starts and frame count from packet key flags (demux only, no decoding)."""
        import av
        starts, n = [], 0
        try:
            with av.open(self.path) as c:
                for packet in c.demux(c.streams.video[0]):
                    if packet.size == 0:
                        continue
                    if packet.is_keyframe:
                        starts.append(n)
                    n += 1
        except Exception:  # noqa: BLE001 -- damaged tail: keep what was indexed
            pass
        self._gop_starts, self._num_frames = starts, n

    @property
    def num_frames(self) -> int:
        """Number of frames (container header; counted from packets if the header has none)."""
        if self._header_frames:
            return self._header_frames
        if self._num_frames is None:
            self._index_packets()
        return self._num_frames

    @property
    def gop_starts(self) -> List[int]:
        """Frame index of every I-frame (from packet flags)."""
        if self._gop_starts is None:
            self._index_packets()
        return list(self._gop_starts)

    @property
    def num_gops(self) -> int:
        return len(self.gop_starts)

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        fps = f"{self.fps:g} fps" if self.fps else "? fps"
        res = self.residual_mode or "no"
        return (f"<CompressedVideo {os.path.basename(self.path)!r} {self.codec} "
                f"{self.width}x{self.height} {fps} {self.num_frames} frames rgb={self.rgb} "
                f"residual={res} mv_block_size={self.mv_block_size}"
                f"{' accumulate' if self.accumulate else ''}>")

    # -- decoding -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[CompressedFrame]:
        return self.iter_frames()

    def iter_frames(self, start_gop: int = 0) -> Iterator[CompressedFrame]:
        """Single sequential pass from the I-frame of GOP ``start_gop`` to the end."""
        if self._used or self._container is None:
            container = self._open_container()
        else:
            container = self._container
            self._container = None
        self._used = True
        first_index, first_gop = 0, 0
        if start_gop:
            starts = self.gop_starts
            if not 0 <= start_gop < len(starts):
                container.close()
                raise ReaderError(f"{self.path}: GOP {start_gop} out of range "
                                  f"(video has {len(starts)} GOPs)")
            first_index, first_gop = starts[start_gop], start_gop
        if self.prefetch:
            return _prefetched(lambda warn: self._decode(container, first_index, first_gop, warn),
                               self.prefetch, self.path)
        return self._decode(container, first_index, first_gop)

    def _seek_to_frame(self, container, frame_index):
        """Seek so that demuxing starts at the keyframe packet of frame ``frame_index``."""
        stream = container.streams.video[0]
        k = 0
        # Find that packet's pts by demuxing (cheap: no decoding), then seek to it.
        target_pts = None
        with __import__("av").open(self.path) as c:
            for packet in c.demux(c.streams.video[0]):
                if packet.size == 0:
                    continue
                if k == frame_index:
                    target_pts = packet.pts if packet.pts is not None else packet.dts
                    break
                k += 1
        if target_pts is None:
            raise ReaderError(f"{self.path}: cannot find frame {frame_index}")
        container.seek(target_pts, stream=stream, backward=True, any_frame=False)
        return target_pts

    def _decode(self, container, first_index, first_gop, warn=None) -> Iterator[CompressedFrame]:
        import av
        p = self.path
        stream = container.streams.video[0]
        codec = stream.codec_context
        need_rgb = (self.rgb and not self.lazy_rgb) or self.residual_mode is not None
        residuals = None if self.residual_mode is None else ResidualComputer(
            self.height, self.width, self.mv_block_size, self.residual_mode)
        state = dict(index=first_index - 1, gop_index=first_gop - 1, gop_pos=0, prev_rgb=None,
                     acc=None, started=False, skipped=0, damaged=None, need_rgb=need_rgb,
                     residuals=residuals)
        damaged = None
        try:
            skip_until_pts = None
            if first_index:
                skip_until_pts = self._seek_to_frame(container, first_index)
            packets = container.demux(stream)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except (av.error.FFmpegError, OSError, ValueError) as e:
                    damaged = f"demuxing failed ({_short(e)})"
                    break
                if skip_until_pts is not None and packet.size and packet.pts is not None \
                        and packet.pts < skip_until_pts:
                    continue
                skip_until_pts = None
                if packet.size and packet.is_corrupt:
                    damaged = "corrupt packet"
                    break
                try:
                    frames = codec.decode(packet if packet.size else None)
                except (av.error.FFmpegError, ValueError) as e:
                    damaged = f"decoding failed ({_short(e)})"
                    break
                for f in frames:
                    ok = yield from self._emit(f, state)
                    if not ok:
                        damaged = state["damaged"]
                        break
                if damaged:
                    break
            if damaged and not state["damaged"]:
                # damage found at packet level: frames still inside the (frame-threaded)
                # decoder precede the damage: drain them
                try:
                    tail = codec.decode(None)
                except (av.error.FFmpegError, ValueError):
                    tail = []
                for f in tail:
                    ok = yield from self._emit(f, state)
                    if not ok:
                        break
        finally:
            container.close()
        index = state["index"]
        if warn is None:
            def warn(msg):
                warnings.warn(msg, ReaderWarning, stacklevel=3)
        skipped = state["skipped"]
        if skipped:
            warn(f"{p}: skipped the {skipped} leading frame{'s' if skipped > 1 else ''} before "
                 f"the first I-frame (P-frames without their reference); frame 0 is that I-frame")
        if damaged:
            warn(f"{p}: truncated or damaged stream: {damaged}; yielded the "
                 f"{index + 1 - first_index} frames decoded before it")
        elif first_index == 0 and self._expected_frames and \
                index + 1 + skipped < self._expected_frames:
            warn(f"{p}: stream ended after {index + 1 + skipped} of {self._expected_frames} "
                 f"frames the container announces (truncated?)")

    def _emit(self, f, st):
        """Turn one decoded PyAV frame into a CompressedFrame (yielded). Returns False (and sets
        st['damaged']) when the frame is corrupt; raises ReaderError on unsupported content."""
        p = self.path
        pict = PictureType.from_ffmpeg(f.pict_type)
        if pict not in (PictureType.I, PictureType.P):
            if pict in (PictureType.B, PictureType.BI):
                raise ReaderError(f"{p}: stream has B-frames (frame {st['index'] + 1}); "
                                  f"re-encode without them: {encode_command(p)}")
            if pict == PictureType.S:
                raise ReaderError(f"{p}: GMC sprite frames (MPEG-4 ASP) are not supported; "
                                  f"re-encode: {encode_command(p)}")
            pict = PictureType.I if f.key_frame else PictureType.P
        if not st["started"] and pict != PictureType.I:
            st["skipped"] += 1
            return True  # cannot compensate before the first I-frame
        st["started"] = True
        if f.is_corrupt:
            st["damaged"] = f"corrupt frame after frame {st['index']}"
            return False
        if (f.width, f.height) != (self.width, self.height):
            raise ReaderError(f"{p}: frame size changes mid-stream ({self.width}x{self.height} "
                              f"-> {f.width}x{f.height}); re-encode: {encode_command(p)}")
        st["index"] += 1
        if pict == PictureType.I:
            st["gop_index"] += 1
            st["gop_pos"] = 0
        else:
            st["gop_pos"] += 1
        out = CompressedFrame(st["index"], st["gop_index"], st["gop_pos"], pict, self.height,
                              self.width, f.pts, f.time)
        rgb = self._to_rgb(f) if st["need_rgb"] else None
        if pict == PictureType.P:
            sd = _side_data(f).get("MOTION_VECTORS")
            vec = sd.to_ndarray() if sd is not None else None
            mv, intra = block_motion(vec, self.height, self.width, self.mv_block_size)
            out.motion_vectors, out.intra_blocks = mv, intra
            if st["residuals"] is not None:
                out._res = st["residuals"](rgb, st["prev_rgb"], mv)
            if self.accumulate:
                st["acc"] = accumulate_motion(st["acc"], expand_motion(
                    mv, self.height, self.width, self.mv_block_size))
                out.accumulated_motion = st["acc"]
        else:
            st["acc"] = None
        if self.lazy_rgb:
            out._decoded, out._convert = f, self._to_rgb
        elif self.rgb:
            out.image = rgb
        st["prev_rgb"] = rgb
        yield out
        return True

    def _to_rgb(self, f) -> np.ndarray:
        if self.color == ColorConversion.CV2 and f.format.name == "yuv420p" and not (self.width | self.height) & 1:
            yuv = f.to_ndarray()
            return cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
        return f.to_ndarray(format="rgb24")


def _prefetched(make_frames, depth: int, path: str) -> Iterator[CompressedFrame]:
    """The decoding generator run `depth` frames ahead of the consumer (prefetch.background):
    exceptions and ReaderWarnings reach the consumer in order; leaving the loop early stops the
    thread and closes the file."""
    for frame, _ in background(make_frames, depth,
                               name=f"compressed-video-prefetch:{os.path.basename(path)}",
                               category=ReaderWarning):
        yield frame


def open_compressed(path, rgb: Union[bool, str, RGBMode] = True,
                    residual: Union[str, ResidualMode, None] = ResidualMode.FULL,
                    mv_block_size: int = 16, accumulate: bool = False,
                    color: Union[str, ColorConversion] = ColorConversion.SWSCALE,
                    threads: Optional[int] = None, prefetch: int = 0) -> CompressedVideo:
    """Open an MPEG-4 Part 2 video for one-pass compressed-domain reading (module docstring)."""
    return CompressedVideo(path, rgb=rgb, residual=residual, mv_block_size=mv_block_size,
                           accumulate=accumulate, color=color, threads=threads,
                           prefetch=prefetch)
