"""Any video in: probe a file, tell whether this package can read it as it is, and re-encode it to
the layout the reader needs (MPEG-4 Part 2 Simple Profile, fixed GOP, no B-frames) when not.

    info = probe(path)                  # fast: opens the header, demuxes no more than it must
    reason = transcode_reason(info)     # None where the stream is MPEG-4 Part 2 without B-frames
    transcode(path, out_path, gop=12)   # streams frame by frame, bounded memory

probe() fails in well under a second on a missing, empty, truncated or non-video file, with one
TranscodeError line naming the file, before anything heavy (a model) is loaded.

transcode() decodes with FFmpeg (H.264, HEVC, VP9, MPEG-2, MJPEG, ... in any container PyAV
reads; B-frames are reordered by the decoder) and hands each decoded picture straight to the
MPEG-4 encoder: no RGB round trip, one frame in flight, so memory does not grow with the video.
The output is written under a unique temporary name in its folder and renamed when complete.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from fractions import Fraction
from typing import Callable, Optional

from .encoder import _temporary_name
from .errors import CompressedVideoError

NATIVE_CODEC = "mpeg4"
DEFAULT_QSCALE = 3
_NO_SCENECUT = "1000000000"  # FFmpeg never inserts a scene-cut I-frame (fixed GOP)
TRANSCODE_MODES = ("auto", "never", "always")


class TranscodeError(CompressedVideoError):
    """The input cannot be probed or re-encoded; the message names the file."""


@dataclasses.dataclass(frozen=True)
class StreamInfo:
    """What probe() learned from a video file's header (and its first packets)."""
    path: str
    container: str
    codec: str
    width: int
    height: int
    fps: Optional[float]
    has_b_frames: bool
    num_frames: int            # from the header; 0 where the container does not say
    gop: Optional[int]         # distance between the first two keyframes; None if < 2 seen

    def describe(self) -> str:
        b = "with B-frames" if self.has_b_frames else "no B-frames"
        fps = f", {self.fps:g} fps" if self.fps else ""
        gop = f", GOP {self.gop}" if self.gop else ""
        return f"{self.codec} {self.width}x{self.height}{fps}, {b}{gop} ({self.container})"


def _short(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def probe(path, gop_packets: int = 400) -> StreamInfo:
    """Reads the header of `path` and up to `gop_packets` packets (demuxed, not decoded) to
    find the codec, size, frame rate, B-frames and the keyframe spacing."""
    import av
    p = os.fspath(path)
    if not os.path.exists(p):
        raise TranscodeError(f"{p}: no such file")
    if os.path.isdir(p):
        raise TranscodeError(f"{p}: is a directory, not a video")
    if os.path.getsize(p) == 0:
        raise TranscodeError(f"{p}: empty file")
    try:
        container = av.open(p, "r")
    except Exception as e:  # noqa: BLE001 -- FFmpeg raises many types
        raise TranscodeError(f"{p}: not a readable video, or its header is truncated "
                             f"({_short(e)})") from None
    try:
        if not container.streams.video:
            raise TranscodeError(f"{p}: no video stream (not a video file)")
        stream = container.streams.video[0]
        cc = stream.codec_context
        if not cc.width or not cc.height:
            raise TranscodeError(f"{p}: video stream has no frame size (not a decodable video)")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        has_b = bool(cc.has_b_frames or (getattr(cc, "max_b_frames", 0) or 0) > 0)
        keys = []
        try:
            for i, packet in enumerate(container.demux(stream)):
                if i >= gop_packets or len(keys) >= 2:
                    break
                if packet.size and packet.is_keyframe:
                    keys.append(i)
        except Exception:  # noqa: BLE001 -- a damaged tail shows up when reading; not here
            pass
        return StreamInfo(path=p, container=container.format.name, codec=cc.name,
                          width=int(cc.width), height=int(cc.height),
                          fps=float(rate) if rate else None, has_b_frames=has_b,
                          num_frames=int(stream.frames or 0),
                          gop=keys[1] - keys[0] if len(keys) == 2 else None)
    finally:
        container.close()


def transcode_reason(info: StreamInfo) -> Optional[str]:
    """Why the reader cannot take this stream as it is (None: it can)."""
    if info.codec != NATIVE_CODEC:
        return f"{info.codec} is not MPEG-4 Part 2"
    if info.has_b_frames:
        return "the stream has B-frames"
    return None


def transcode(path, output_path, gop: int = 12, qscale: float = DEFAULT_QSCALE,
              threads: int = 0, progress: Optional[Callable[[int], None]] = None,
              mv4: bool = False) -> int:
    """Re-encodes `path` to MPEG-4 Part 2, an I-frame every `gop` frames, no B-frames, constant
    quantiser `qscale`, keeping the frame size and rate. Returns the number of frames written.
    mv4=True allows 8x8 (4MV) prediction blocks (still Simple Profile).

    Frames the decoder cannot decode end the stream: what was decoded is kept, and the count
    says how far it got (the reader warns the same way). The output appears only when complete.
    """
    import av
    p, out = os.fspath(path), os.fspath(output_path)
    if int(gop) != gop or gop < 1:
        raise TranscodeError(f"{out}: gop must be a positive integer, got {gop!r}")
    if not 1 <= float(qscale) <= 31:
        raise TranscodeError(f"{out}: qscale must be in 1..31, got {qscale}")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise TranscodeError(f"{out}: output directory {folder} does not exist")
    if os.path.exists(out) and os.path.samefile(p, out):
        raise TranscodeError(f"{out}: is the input itself; choose another output")
    try:
        source = av.open(p, "r")
    except Exception as e:  # noqa: BLE001
        raise TranscodeError(f"{p}: not a readable video ({_short(e)})") from None
    tmp = _temporary_name(out)
    written, ok = 0, False
    sink = None
    try:
        if not source.streams.video:
            raise TranscodeError(f"{p}: no video stream (not a video file)")
        src = source.streams.video[0]
        src.thread_type = "AUTO"
        rate = src.average_rate or src.guessed_rate or Fraction(25)
        sink = av.open(tmp, "w", format="avi")
        dst = sink.add_stream(NATIVE_CODEC, rate=Fraction(rate).limit_denominator(1001))
        dst.width, dst.height, dst.pix_fmt = src.codec_context.width, \
            src.codec_context.height, "yuv420p"
        cc = dst.codec_context
        cc.gop_size, cc.max_b_frames, cc.thread_count = int(gop), 0, int(threads)
        cc.qmin = cc.qmax = int(round(qscale))
        cc.options = {"sc_threshold": _NO_SCENECUT, "g": str(int(gop)), "bf": "0",
                      **({"flags": "+mv4"} if mv4 else {})}
        key = av.video.frame.PictureType.I
        other = av.video.frame.PictureType.NONE
        try:
            for frame in source.decode(src):
                if (frame.width, frame.height) != (dst.width, dst.height):
                    frame = frame.reformat(width=dst.width, height=dst.height, format="yuv420p")
                elif frame.format.name != "yuv420p":
                    frame = frame.reformat(format="yuv420p")
                frame.pts = written
                frame.time_base = dst.codec_context.time_base or frame.time_base
                frame.pict_type = key if written % gop == 0 else other
                for packet in dst.encode(frame):
                    sink.mux(packet)
                written += 1
                if progress is not None:
                    progress(written)
        except av.error.FFmpegError:
            if written == 0:
                raise
            # a damaged or truncated tail: keep what was decoded (the caller reports the count)
        if written == 0:
            raise TranscodeError(f"{p}: no decodable frames")
        for packet in dst.encode():
            sink.mux(packet)
        sink.close()
        sink = None
        os.replace(tmp, out)
        ok = True
    except TranscodeError:
        raise
    except av.error.FFmpegError as e:
        raise TranscodeError(f"{p}: cannot re-encode ({_short(e)})") from None
    finally:
        if sink is not None:
            try:
                sink.close()
            except Exception:  # noqa: BLE001
                pass
        source.close()
        if not ok and os.path.exists(tmp):
            os.remove(tmp)
    return written


class TemporaryTranscode:
    """Context manager: a re-encoded copy of `path` in a private temporary folder, removed on
    exit (success, error, KeyboardInterrupt, or SystemExit from a SIGTERM handler).

        with TemporaryTranscode(path, gop=12) as tc:
            read(tc.path)         # tc.frames, tc.seconds
    """

    def __init__(self, path, gop: int = 12, qscale: float = DEFAULT_QSCALE,
                 tmp_dir: Optional[str] = None, threads: int = 0, mv4: bool = False):
        self.source, self.gop, self.qscale, self.threads = os.fspath(path), gop, qscale, threads
        self.mv4 = bool(mv4)
        self.tmp_dir = tmp_dir
        self.folder: Optional[str] = None
        self.path: Optional[str] = None
        self.frames = 0
        self.seconds = 0.0

    def __enter__(self) -> "TemporaryTranscode":
        self.folder = tempfile.mkdtemp(prefix="taplab-transcode-", dir=self.tmp_dir)
        self.path = os.path.join(self.folder, "mpeg4.avi")
        t0 = time.perf_counter()
        try:
            self.frames = transcode(self.source, self.path, gop=self.gop, qscale=self.qscale,
                                    threads=self.threads, mv4=self.mv4)
        except BaseException:
            self.cleanup()
            raise
        self.seconds = time.perf_counter() - t0
        return self

    def cleanup(self) -> None:
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def __exit__(self, *exc) -> None:
        self.cleanup()


def encode_h264(frames, output_path, fps: float = 30.0, gop: int = 30, b_frames: int = 3,
                crf: int = 23, preset: str = "fast") -> int:
    """Encodes RGB uint8 frames [H, W, 3] as a phone or dash-cam would: H.264 (libx264) with
    B-frames and a long GOP, in the container of the output's extension. Test and benchmark
    inputs for the re-encode path; returns the number of frames written (whole or nothing)."""
    import av
    import numpy as np
    out = os.fspath(output_path)
    tmp = _temporary_name(out)
    written = 0
    try:
        container = av.open(tmp, "w")
        try:
            stream = None
            for img in frames:
                img = np.ascontiguousarray(img, dtype=np.uint8)
                if stream is None:
                    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                    stream.height, stream.width = img.shape[:2]
                    stream.pix_fmt = "yuv420p"
                    stream.codec_context.options = {"bf": str(b_frames), "g": str(gop),
                                                    "crf": str(crf), "preset": preset}
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                vf.pts = written
                for packet in stream.encode(vf):
                    container.mux(packet)
                written += 1
            if stream is None:
                raise TranscodeError(f"{out}: no frames to encode")
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return written
