"""Re-encode frames or videos to MPEG-4 Part 2 (Simple Profile) with a fixed GOP and no B-frames.

This is the stream layout TapLab (and coviar) read: an I-frame every ``gop`` frames, P-frames in
between, each P-frame predicted from the previous frame only.

    encode_video(frames_or_path, output_path, gop=12, fps=17, qscale=None, bitrate=None,
                 start=0, num_frames=None, mv4=False, threads=0) -> output_path

Input (``frames_or_path``):
  * a numpy array uint8 [T, H, W, 3] RGB (or [T, H, W] grey), or any iterable of such [H, W, 3]
    frames (list, generator);
  * a directory of images (all *.png/*.jpg/*.jpeg/*.ppm/*.bmp in it, sorted by name);
  * a glob pattern (contains ``*``, ``?`` or ``[``), files sorted by name;
  * any video FFmpeg can decode (it is decoded and re-encoded).
  ``start`` / ``num_frames`` select a range of the input frames.

Rate control: ``qscale=Q`` (1..31, smaller is better) gives a constant quantiser (implemented as
qmin = qmax = Q, which is what ``ffmpeg -q:v Q`` achieves for this encoder); ``bitrate=B`` (bits/s)
uses FFmpeg's rate control; with neither, qscale=3 (visually near-lossless, what TapLab needs so
that the I-frame CNN sees clean images). Giving both is an error.

GOP: ``gop_size = gop``, ``max_b_frames = 0`` and ``sc_threshold = 1e9`` so FFmpeg's scene-cut
detection never inserts an extra I-frame: frame k is an I-frame iff k % gop == 0.
``mv4=True`` allows 8x8 (4MV) prediction (still Simple Profile); the default uses one vector per
16x16 macroblock.

Frame sizes: any size works (odd ones too). MPEG-4 codes whole 16x16 macroblocks; the encoder
pads internally (edge extension) and the decoder crops back to the stored size, so the reader
returns frames of exactly the size written, and block grids have ceil(H/16) x ceil(W/16) cells.

Container: chosen by the output extension (.avi recommended, as coviar uses; .mp4/.mkv/.m4v work);
AVI when FFmpeg knows no container for the extension.

Equivalent command line, with plain FFmpeg (``encode_command``; an application built on this
package may offer its own):
    ffmpeg -i IN -c:v mpeg4 -q:v 3 -g 12 -bf 0 -sc_threshold 1000000000 -pix_fmt yuv420p X.avi
"""
from __future__ import annotations

import contextlib
import glob as _glob
import os
import tempfile
import warnings
from typing import Iterator, Optional, Tuple

import numpy as np

from .errors import EncoderError, ReaderWarning

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff")
DEFAULT_QSCALE = 3
# FFmpeg's mpegvideo encoders insert an I-frame when the scene-change score exceeds this; a value
# this large disables it (ffmpeg's documented way to get a strictly fixed GOP).
_NO_SCENECUT = "1000000000"


def encode_command(input_path: str = "IN", output_path: str = "OUT.avi", gop: int = 12,
                   fps: Optional[float] = None) -> str:
    """An FFmpeg command line that re-encodes ``input_path`` into the layout this package reads
    (what encode_video does). Applications may add their own equivalent to their messages."""
    rate = f" -r {fps:g}" if fps else ""
    return (f"ffmpeg -i {input_path} -c:v mpeg4 -q:v {DEFAULT_QSCALE} -g {gop} -bf 0 "
            f"-sc_threshold {_NO_SCENECUT} -pix_fmt yuv420p{rate} {output_path}")


def _as_rgb(frame, where: str) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise EncoderError(f"{where}: expected an HxWx3 RGB frame, got shape {a.shape}")
    if a.shape[2] == 4:
        a = a[:, :, :3]
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer):
            a = np.clip(np.rint(a) if np.issubdtype(a.dtype, np.floating) else a, 0, 255)
            a = a.astype(np.uint8)
        else:
            raise EncoderError(f"{where}: unsupported frame dtype {a.dtype}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise EncoderError(f"{where}: frame too small ({a.shape[1]}x{a.shape[0]})")
    return np.ascontiguousarray(a)


def _read_image(path: str) -> np.ndarray:
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise EncoderError(f"{path}: cannot read image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _vol_frame_size(path: str) -> Optional[Tuple[int, int]]:
    """(width, height) that the first MPEG-4 Part 2 VOL header in the file's first 1 MB claims
    (ISO/IEC 14496-2, 6.2.3), or None where there is none or it is not a rectangular VOL."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return None
    i = 0
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 4 >= len(data):
            return None
        if 0x20 <= data[i + 3] <= 0x2F:
            break
        i += 3
    bits = "".join(f"{b:08b}" for b in data[i + 4:i + 4 + 64])
    pos = 0

    def take(n):
        nonlocal pos
        pos += n
        if pos > len(bits):
            raise IndexError
        return int(bits[pos - n:pos], 2)
    try:
        take(9)                               # random_accessible_vol, video_object_type
        if take(1):                           # is_object_layer_identifier
            take(7)
        if take(4) == 15:                     # aspect_ratio_info: extended PAR
            take(16)
        if take(1):                           # vol_control_parameters
            take(3)
            if take(1):                       # vbv_parameters
                take(79)
        if take(2) != 0:                      # video_object_layer_shape: rectangular only
            return None
        take(1)
        res = take(16)                        # vop_time_increment_resolution
        take(1)
        if take(1):                           # fixed_vop_rate
            take(max(1, (res - 1).bit_length()))
        take(1)
        width = take(13)
        take(1)
        return width, take(13)
    except IndexError:
        return None


def _no_frame_error(path: str, detail: str) -> EncoderError:
    size = _vol_frame_size(path)
    if size and (size[0] < 1 or size[1] < 1 or size[0] * size[1] > 4096 * 2304):
        return EncoderError(f"{path}: its MPEG-4 VOL header claims a {size[0]}x{size[1]} frame, "
                            f"which cannot be decoded (damaged header?); no frame could be read "
                            f"({detail})")
    return EncoderError(f"{path}: no frame could be decoded from this video ({detail})")


def _expected_frames(container, stream) -> int:
    """Frames the container announces (header count, else duration x rate; 0 if unknown)."""
    n = int(stream.frames or 0)
    rate = stream.average_rate
    if not n and container.duration and rate:
        n = int(container.duration / 1e6 * float(rate) + 0.5)
    return n


def _iter_video(path: str) -> Iterator[np.ndarray]:
    """Decoded RGB frames of a video; a truncated or damaged one yields the frames before the
    damage and warns (ReaderWarning, like the reader) how many and where it stopped."""
    import av
    try:
        container = av.open(path)
    except Exception as e:  # noqa: BLE001 -- FFmpeg raises many types; report in one line
        msg = str(getattr(e, "strerror", None) or e).strip().splitlines()
        raise EncoderError(f"{path}: not a readable video or image directory "
                           f"(FFmpeg: {msg[0] if msg else type(e).__name__})") from None
    with container:
        if not container.streams.video:
            raise EncoderError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        expected = _expected_frames(container, stream)
        n = 0
        try:
            for frame in container.decode(stream):
                n += 1
                yield frame.to_ndarray(format="rgb24")
        except (av.error.FFmpegError, ValueError) as e:
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if n == 0:
                raise _no_frame_error(path, f"decoding failed: {detail}") from None
            warnings.warn(f"{path}: truncated or damaged input: decoding failed after frame "
                          f"{n - 1} ({detail}); encoding the {n} frames decoded before it",
                          ReaderWarning, stacklevel=2)
            return
        if n == 0:
            raise _no_frame_error(path, "the stream holds no decodable frame")
        if expected and n < expected:
            warnings.warn(f"{path}: input ended after {n} of {expected} frames the container "
                          f"announces (truncated?); encoding the {n} frames read",
                          ReaderWarning, stacklevel=2)


def _input_fps(path: str) -> Optional[float]:
    import av
    try:
        with av.open(path) as c:
            r = c.streams.video[0].average_rate
            return float(r) if r else None
    except Exception:  # noqa: BLE001
        return None


def iter_input_frames(frames_or_path) -> Iterator[np.ndarray]:
    """Frames (uint8 HxWx3 RGB) of any input accepted by encode_video, lazily."""
    src = frames_or_path
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if os.path.isdir(path):
            files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS))
            if not files:
                raise EncoderError(f"{path}: directory holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            return (_read_image(os.path.join(path, f)) for f in files)
        if any(ch in path for ch in "*?["):
            files = sorted(_glob.glob(path))
            if not files:
                raise EncoderError(f"{path}: glob matches no file")
            return (_read_image(f) for f in files)
        if not os.path.exists(path):
            raise EncoderError(f"{path}: no such file or directory")
        if path.lower().endswith(IMAGE_EXTENSIONS):
            return iter([_read_image(path)])
        return _iter_video(path)
    if isinstance(src, np.ndarray):
        if src.ndim == 3 and src.shape[-1] not in (3, 4):  # [T, H, W] grey
            return iter(src)
        if src.ndim == 3:
            return iter([src])
        if src.ndim != 4:
            raise EncoderError(f"frames array: expected [T,H,W,3], got shape {src.shape}")
        return iter(src)
    try:
        return iter(src)
    except TypeError:
        raise EncoderError(f"cannot encode a {type(src).__name__}: give frames or a path") from None


def encode_video(frames_or_path, output_path, gop: int = 12, fps: Optional[float] = 17,
                 qscale: Optional[float] = None, bitrate: Optional[int] = None, start: int = 0,
                 num_frames: Optional[int] = None, mv4: bool = False, threads: int = 0) -> str:
    """Encode to MPEG-4 Part 2 Simple Profile, fixed GOP, no B-frames. Returns ``output_path``.

    ``fps=None`` keeps a video input's frame rate (17 for frames). See the module docstring.
    """
    import av

    output_path = os.fspath(output_path)
    if int(gop) != gop or gop < 1:
        raise EncoderError(f"{output_path}: gop must be a positive integer, got {gop!r}")
    gop = int(gop)
    if qscale is not None and bitrate is not None:
        raise EncoderError(f"{output_path}: give qscale or bitrate, not both")
    if qscale is not None and not (1 <= qscale <= 31):
        raise EncoderError(f"{output_path}: qscale must be in 1..31, got {qscale}")
    if bitrate is not None and bitrate <= 0:
        raise EncoderError(f"{output_path}: bitrate must be positive, got {bitrate}")
    if start < 0 or (num_frames is not None and num_frames < 0):
        raise EncoderError(f"{output_path}: start and num_frames must be >= 0")
    if fps is None and isinstance(frames_or_path, (str, os.PathLike)) and os.path.isfile(
            os.fspath(frames_or_path)):
        fps = _input_fps(os.fspath(frames_or_path))
    fps = fps or 17
    if not fps > 0 or fps == float("inf"):
        raise EncoderError(f"{output_path}: fps must be a positive finite number, got {fps}")
    if qscale is None and bitrate is None:
        qscale = DEFAULT_QSCALE

    if isinstance(frames_or_path, (str, os.PathLike)) and os.path.exists(output_path) and \
            os.path.exists(os.fspath(frames_or_path)) and \
            os.path.samefile(os.fspath(frames_or_path), output_path):
        raise EncoderError(f"{output_path}: is the input itself; encoding over it would destroy "
                           f"it (write to another output)")
    frames = iter_input_frames(frames_or_path)
    out_dir = os.path.dirname(os.path.abspath(output_path))
    if not os.path.isdir(out_dir):
        raise EncoderError(f"{output_path}: output directory {out_dir} does not exist")

    from fractions import Fraction
    rate = Fraction(fps).limit_denominator(1001)
    # Written under a unique temporary name in the output folder (same extension, so the same
    # container), renamed onto output_path only when complete: a kill or an error never leaves
    # a truncated video there, nor removes what was there before.
    tmp = _temporary_name(output_path)
    try:
        container = av.open(tmp, "w")
    except ValueError:
        # no container format known for this extension (e.g. "x.partial"): write AVI
        try:
            container = av.open(tmp, "w", format="avi")
        except Exception as e:  # noqa: BLE001
            _remove(tmp)
            raise EncoderError(f"{output_path}: cannot create output ({e})") from None
    except Exception as e:  # noqa: BLE001
        _remove(tmp)
        raise EncoderError(f"{output_path}: cannot create output ({e})") from None
    written = 0
    stream = None
    ok = False
    try:
        for k, frame in enumerate(frames):
            if k < start:
                continue
            if num_frames is not None and written >= num_frames:
                break
            rgb = _as_rgb(frame, f"frame {k}")
            if stream is None:
                h, w = rgb.shape[:2]
                stream = container.add_stream("mpeg4", rate=rate)
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                cc = stream.codec_context
                cc.gop_size = gop
                cc.max_b_frames = 0
                cc.thread_count = threads
                if qscale is not None:
                    q = int(round(qscale))
                    cc.qmin = q
                    cc.qmax = q
                else:
                    cc.bit_rate = int(bitrate)
                opts = {"sc_threshold": _NO_SCENECUT, "g": str(gop), "bf": "0"}
                if mv4:
                    opts["flags"] = "+mv4"
                cc.options = opts
            elif rgb.shape[:2] != (stream.height, stream.width):
                raise EncoderError(f"{output_path}: frame {k} is {rgb.shape[1]}x{rgb.shape[0]}, "
                                   f"earlier frames {stream.width}x{stream.height}")
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts = written
            vf.pict_type = av.video.frame.PictureType.I if written % gop == 0 else \
                av.video.frame.PictureType.NONE
            for packet in stream.encode(vf):
                container.mux(packet)
            written += 1
        if stream is None:
            raise EncoderError(f"{output_path}: no frames to encode (input empty or start={start} "
                               f"past its end)")
        for packet in stream.encode():
            container.mux(packet)
        ok = True
    except EncoderError:
        raise
    except av.error.FFmpegError as e:
        raise EncoderError(f"{output_path}: encoding failed ({e})") from None
    finally:
        try:
            container.close()
        except Exception:  # noqa: BLE001
            ok = False
        if ok:
            os.replace(tmp, output_path)
        else:
            _remove(tmp)
    return output_path


def _temporary_name(path: str) -> str:
    """A new, unique file beside path that keeps its extension (this package stands alone, so it
    keeps its own helper rather than an application's)."""
    folder = os.path.dirname(os.path.abspath(path))
    stem, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".partial{ext}", dir=folder)
    os.close(fd)
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    return tmp


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
