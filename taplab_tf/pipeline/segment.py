"""The main job: segment videos to overlay videos, label PNGs and a summary.

    segment_file(engine, "street.mp4", "out/street.mp4", dataset="camvid")  -> summary dict
    segment_many(engine, ["a.mp4", "b.avi"], "out/", dataset="camvid")     -> (rows, failures)
    segment_one(engine, "a.mp4", "out/a.mp4")   -> (summary, None) or (None, failure)

segment_one is the per-video step of a batch, shared by segment_many (segment's directory mode) and
the Beam pipeline (taplab_tf.pipeline.beam).

One pass per video: reader -> engine (Algorithm 1) -> writer. The engine opens the reader with
the options its config needs (TapLabEngine.segment_video; its queue is the one decode-ahead
thread), each FrameResult carries what the writer needs (labels, the frame's image, the RGC
region, the keyframe), and a writer thread draws and encodes the overlay from those results while
the engine works on the next frames.

Any video in: a stream that is not MPEG-4 Part 2 without B-frames (H.264, HEVC, VP9, MPEG-2,
MJPEG, ...) is re-encoded first (third_party.compressed_video.transcode, into a private
temporary folder removed on success, error and interruption), unless transcode='never'.

Outputs are written whole or not at all: the overlay video under a unique temporary name in its
folder, renamed when complete; each label PNG likewise; an interrupted run leaves no partial
video, and the label PNGs present are whole.
"""
from __future__ import annotations

import dataclasses
import os
import queue
import sys
import threading
import time
import uuid
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from taplab_tf import io_utils
from taplab_tf.data import labels as labels_lib
from taplab_tf.pipeline import engine as engine_lib
from taplab_tf.pipeline.inputs import (VIDEO_EXTENSIONS, SegmentError,  # noqa: F401
                                       check_video, find_videos)


# --------------------------------------------------------------------------- drawing
def legend(dataset: str, width: int, scale: float = 1.0) -> np.ndarray:
    """An RGB strip naming each class beside its colour, wrapped to `width` pixels."""
    names = labels_lib.class_names(dataset)
    palette = labels_lib.colorize(np.arange(len(names), dtype=np.uint8)[None], dataset)[0]
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale
    thick = max(1, int(round(scale)))
    box, pad = max(8, int(12 * scale)), max(3, int(5 * scale))
    line = box + 2 * pad
    entries = []
    for name in names:
        (tw, _), _ = cv2.getTextSize(name, font, fs, thick)
        entries.append((name, box + pad + tw + 2 * pad))
    rows, x = [[]], pad
    for name, w in entries:
        if x + w > width and rows[-1]:
            rows.append([])
            x = pad
        rows[-1].append((name, x))
        x += w
    strip = np.zeros((line * len(rows), width, 3), np.uint8)
    k = 0
    for r, row in enumerate(rows):
        for name, x0 in row:
            y0 = r * line + pad
            colour = tuple(int(v) for v in palette[k])
            cv2.rectangle(strip, (x0, y0), (x0 + box - 1, y0 + box - 1), colour, -1)
            cv2.putText(strip, name, (x0 + box + pad, y0 + box - max(1, box // 6)), font, fs,
                        (255, 255, 255), thick, cv2.LINE_AA)
            k += 1
    return strip


def overlay(image: np.ndarray, labels: np.ndarray, dataset: str = "cityscapes",
            opacity: float = 0.5, region=None, keyframe: Optional[str] = None,
            legend_strip: Optional[np.ndarray] = None) -> np.ndarray:
    """The frame blended with its colourised labels; the RGC region as a white box; keyframes
    ('I' or 'RGFS') marked in the top-left corner; the class legend along the bottom."""
    colour = labels_lib.colorize(labels, dataset)
    out = cv2.addWeighted(image, 1.0 - opacity, colour, opacity, 0.0)
    if region is not None:
        y, x, h, w = region
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), (255, 255, 255), 2)
    if keyframe:
        scale = max(0.4, image.shape[0] / 600.0)
        cv2.putText(out, keyframe, (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 0), max(1, int(2 * scale)), cv2.LINE_AA)
    if legend_strip is not None and legend_strip.shape[0] < out.shape[0]:
        h = legend_strip.shape[0]
        band = out[-h:, :legend_strip.shape[1]]
        band[:] = cv2.addWeighted(band, 0.25, legend_strip, 0.75, 0.0)
    return out


# --------------------------------------------------------------------------- progress
class _Progress:
    """One line, rewritten in place: frames, running FPS, keyframes."""

    def __init__(self, total: Optional[int], stream=sys.stderr, every: int = 1,
                 label: str = ""):
        self.total, self.stream, self.every, self.label = total, stream, every, label
        self.t0 = time.perf_counter()

    def update(self, n: int, keys: int):
        if n % self.every:
            return
        dt = time.perf_counter() - self.t0
        of = f"/{self.total}" if self.total else ""
        bar = ""
        if self.total:
            k = min(30, int(30 * n / self.total))
            bar = "[" + "#" * k + "." * (30 - k) + "] "
        self.stream.write(f"\r{self.label}{bar}{n}{of} frames  {n / max(dt, 1e-9):6.2f} fps  "
                          f"{keys} keyframes")
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


# --------------------------------------------------------------------------- writing
def _publish(tmp: str, path: str) -> None:
    """Renames a finished temporary file to its final name, with the permissions an ordinary
    new file gets (mkstemp makes it owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def _write_png_atomic(path: str, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise SegmentError(f"{path}: cannot encode the label PNG")
    with io_utils.atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())


def write_json_atomic(path: str, obj) -> None:
    """obj as JSON at path, whole or not at all (numpy scalars as numbers)."""
    io_utils.write_json(path, obj, default=_json_default)


def _json_default(v):
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (set, tuple)):
        return list(v)
    return str(v)


class _Aborted(Exception):
    """Raised inside the writer's frame generator to make the encoder discard its output."""


class _Overlay:
    """Draws one FrameResult (its image, labels, RGC region and keyframe) as an overlay frame."""

    def __init__(self, dataset: str, draw_regions: bool, mark_keyframes: bool,
                 show_legend: bool):
        self.dataset, self.draw_regions = dataset, draw_regions
        self.mark_keyframes, self.show_legend = mark_keyframes, show_legend
        self.strip: Optional[np.ndarray] = None  # the legend, drawn for the first frame's size

    def __call__(self, r: engine_lib.FrameResult) -> np.ndarray:
        if self.show_legend and self.strip is None:
            self.strip = legend(self.dataset, r.image.shape[1],
                                scale=max(0.6, r.image.shape[0] / 720.0))
        mark = None
        if self.mark_keyframes and r.keyframe:
            mark = "I" if r.pict_type == "I" else "RGFS"
        return overlay(r.image, r.labels, self.dataset,
                       region=r.rgc_region if self.draw_regions else None, keyframe=mark,
                       legend_strip=self.strip)


class _Writer:
    """Overlay video writer on its own thread (bounded queue): it takes the engine's
    FrameResults, and drawing (render) and encoding overlap the engine's work on the next frames.
    finish() completes the video; abort() makes the encoder discard it. Errors surface in the
    caller on put() / finish()."""

    _DONE, _ABORT = object(), object()

    def __init__(self, path: str, fps: float, gop: int,
                 render: Callable[[engine_lib.FrameResult], np.ndarray], depth: int = 8):
        self.path, self.fps, self.gop, self.render = path, fps, gop, render
        self.queue: "queue.Queue" = queue.Queue(maxsize=depth)
        self.error: Optional[BaseException] = None
        self.seconds = 0.0
        self._closing = threading.Event()
        self.thread = threading.Thread(target=self._run, name="taplab-writer", daemon=True)
        self.thread.start()

    def _frames(self):
        while True:
            item = self.queue.get()
            if item is self._DONE:
                return
            if item is self._ABORT:
                raise _Aborted()
            t0 = time.perf_counter()
            frame = self.render(item)
            self.seconds += time.perf_counter() - t0
            yield frame

    def _run(self):
        from third_party.compressed_video import encode_video
        try:
            encode_video(self._frames(), self.path, gop=self.gop, fps=self.fps)
        except _Aborted:
            return
        except BaseException as e:  # noqa: BLE001 -- handed to the caller
            self.error = e
        # The encoder stopped early: drain until the caller closes, so put() never blocks.
        while True:
            try:
                if self.queue.get(timeout=0.1) in (self._DONE, self._ABORT):
                    return
            except queue.Empty:
                if self._closing.is_set():
                    return

    def put(self, result: engine_lib.FrameResult) -> None:
        while self.error is None and self.thread.is_alive():
            try:
                self.queue.put(result, timeout=0.5)
                return
            except queue.Full:
                continue
        if self.error is not None:
            raise self.error

    def _send(self, sentinel) -> None:
        self._closing.set()
        while self.thread.is_alive():
            try:
                self.queue.put(sentinel, timeout=0.2)
                return
            except queue.Full:
                if sentinel is self._ABORT:
                    try:
                        self.queue.get_nowait()  # drop a pending frame to make room
                    except queue.Empty:
                        pass

    def finish(self) -> None:
        """Completes the video (all frames put so far) and waits for the encoder."""
        self._send(self._DONE)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self, timeout: float = 30.0) -> None:
        """Makes the encoder discard what it wrote; never raises."""
        self._send(self._ABORT)
        self.thread.join(timeout)


# --------------------------------------------------------------------------- one video
def segment_file(engine: engine_lib.TapLabEngine, video_path: str, output_path: Optional[str],
                 *, dataset: str = "cityscapes", labels_dir: Optional[str] = None,
                 draw_regions: bool = False, mark_keyframes: bool = False,
                 show_legend: bool = True, transcode: str = "auto", gop_given: bool = False,
                 qscale: float = 3, progress: bool = True, tmp_dir: Optional[str] = None,
                 log: Callable[[str], None] = print, info=None) -> dict:
    """Segments one video file with the engine: overlay video at `output_path` (None: none),
    label PNGs (trainIds) in `labels_dir`. Re-encodes an input the reader cannot take
    (transcode='auto'; 'always' re-encodes any input; 'never' refuses instead) at the engine's
    config.gop. gop_given: the user chose that GOP explicitly (an MPEG-4 input whose own GOP
    differs is then said in one line). Returns the summary (engine.summarize plus wall-clock
    seconds, the re-encode's seconds and whether the FPS counts it). info: the video's
    StreamInfo where the caller probed it already (check_video)."""
    from third_party.compressed_video import transcode as tc_lib
    if transcode not in tc_lib.TRANSCODE_MODES:
        raise SegmentError(f"transcode: {transcode!r} is not one of {list(tc_lib.TRANSCODE_MODES)}")
    t_start = time.perf_counter()
    info = info or check_video(video_path)
    if output_path:
        if os.path.exists(output_path) and os.path.samefile(output_path, video_path):
            raise SegmentError(f"{output_path}: the output would overwrite the input video")
        os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    if labels_dir:
        os.makedirs(labels_dir, exist_ok=True)
    gop = engine.config.gop
    reason = tc_lib.transcode_reason(info)
    if transcode == "always":
        reason = reason or "--transcode=always"
    if reason and transcode == "never":
        raise SegmentError(f"{video_path}: {reason}; TapLab reads MPEG-4 Part 2 without "
                           f"B-frames: allow the re-encode (transcode='auto') or re-encode it "
                           f"yourself at GOP {gop}")
    if not reason and gop_given and info.gop and info.gop != gop:
        log(f"note: {video_path} is MPEG-4 Part 2 with GOP {info.gop}; the stream's own "
            f"I-frames are used, not --gop={gop} (--transcode=always re-encodes at GOP {gop})")
    transcoder = None
    read_path = video_path
    if reason:
        log(f"re-encoding {video_path} ({info.describe()}: {reason}) to MPEG-4 Part 2 at GOP "
            f"{gop}, qscale {qscale:g}, in a temporary file")
        transcoder = tc_lib.TemporaryTranscode(video_path, gop=gop, qscale=qscale,
                                               tmp_dir=tmp_dir,
                                               mv4=engine.config.encoder_mv4)
    try:
        if transcoder is not None:
            try:
                transcoder.__enter__()
            except tc_lib.TranscodeError as e:
                raise SegmentError(str(e)) from None
            read_path = transcoder.path
        summary = _segment_stream(engine, read_path, output_path, dataset=dataset,
                                  labels_dir=labels_dir, draw_regions=draw_regions,
                                  mark_keyframes=mark_keyframes, show_legend=show_legend,
                                  progress=progress, fps=info.fps or 25.0, gop=gop,
                                  total=(transcoder.frames if transcoder is not None
                                         else info.num_frames) or None)
    finally:
        if transcoder is not None:
            transcoder.__exit__(None, None, None)
    wall = time.perf_counter() - t_start
    summary.update({
        "video": video_path, "output": output_path, "input": info.describe(),
        "transcoded": bool(reason), "transcode_reason": reason,
        "transcode_seconds": transcoder.seconds if transcoder is not None else 0.0,
        "wall_seconds": wall, "fps_wall": summary["frames"] / wall if wall > 0 else float("nan"),
        "fps_wall_includes_transcode": bool(reason),
        "input_scale": engine.input_scale, "frame_stride": engine.frame_stride,
    })
    return summary


def _segment_stream(engine, path, output_path, *, dataset, labels_dir, draw_regions,
                    mark_keyframes, show_legend, progress, fps, gop, total=None) -> dict:
    """reader -> engine -> writers, one pass: the label PNGs and the overlay video from the
    engine's FrameResults. total: the frame count for the progress line (None: unknown)."""
    results: List[engine_lib.FrameResult] = []  # what the summary needs of each frame
    writer, partial = None, None
    writer_seconds = 0.0
    t0 = time.perf_counter()
    try:
        bar = _Progress(total) if progress else None
        keyframes = 0
        for r in engine.segment_video(path, keep_images=bool(output_path)):
            if labels_dir:
                _write_png_atomic(os.path.join(labels_dir, f"{r.index:06d}_labelTrainIds.png"),
                                  r.labels)
            if output_path:
                if writer is None:
                    # A name no other run uses, in the output's folder; renamed when complete.
                    folder = os.path.dirname(os.path.abspath(output_path))
                    root, ext = os.path.splitext(os.path.basename(output_path))
                    partial = os.path.join(folder, f".{root}.{uuid.uuid4().hex[:12]}.partial"
                                                   f"{ext or '.mp4'}")
                    writer = _Writer(partial, fps=fps, gop=gop, render=_Overlay(
                        dataset, draw_regions, mark_keyframes, show_legend))
                writer.put(r)
            # The image and labels go to the writers only; the summary keeps the rest.
            results.append(dataclasses.replace(r, image=None, labels=None, logits=None))
            keyframes += r.keyframe
            if bar:
                bar.update(len(results), keyframes)
        if bar:
            bar.close()
        if writer is not None:
            writer.finish()
            writer_seconds = writer.seconds
            writer = None
            _publish(partial, output_path)
            partial = None
    finally:
        if writer is not None:
            writer.abort()
        if partial and os.path.exists(partial):
            os.remove(partial)
    if not results:
        raise SegmentError(f"{path}: no frames were decoded")
    summary = engine_lib.summarize(results)
    summary["writer_ms"] = 1000.0 * writer_seconds / len(results)
    summary["segment_seconds"] = time.perf_counter() - t0
    return summary


def format_summary(summary: dict) -> str:
    """Human-readable lines of a summary."""
    split = ", ".join(f"{k} {v:.1f}" for k, v in summary["time_split_ms"].items())
    lines = [
        f"frames {summary['frames']}  I-frames {summary['i_frames']}  RGFS keyframes "
        f"{summary['rgfs_keyframes']} ({100 * summary['rgfs_fraction']:.1f}% of P)  RGC "
        f"corrections {summary['rgc_corrections']}",
        f"mean FPS {summary['fps']:.2f} (segmentation, inference thread)",
    ]
    if "wall_seconds" in summary:
        tc = (f", including the {summary['transcode_seconds']:.1f} s re-encode"
              if summary.get("transcoded") else " (no re-encode)")
        lines.append(f"wall clock {summary['wall_seconds']:.1f} s = "
                     f"{summary['fps_wall']:.2f} FPS end to end{tc}")
    lines.append(f"time split ms/frame: {split}; reader thread {summary['reader_ms']:.1f}"
                 + (f"; writer thread {summary['writer_ms']:.1f}" if "writer_ms" in summary
                    else ""))
    return "\n".join(lines)


# --------------------------------------------------------------------------- many videos
def output_name(video_path: str, output_dir: str, taken: Dict[str, int]) -> str:
    """<output_dir>/<stem>.mp4, numbered where two inputs share a stem."""
    stem = os.path.splitext(os.path.basename(video_path))[0]
    n = taken.get(stem, 0)
    taken[stem] = n + 1
    return os.path.join(output_dir, f"{stem}.mp4" if n == 0 else f"{stem}_{n}.mp4")


def segment_one(engine_for, video: str, output_path: Optional[str], *,
                labels_dir: Optional[str] = None, log: Callable[[str], None] = print,
                **kwargs) -> Tuple[Optional[dict], Optional[dict]]:
    """One video of a batch, never raising for a bad video: segment_file after check_video, with
    the engine chosen for the video's StreamInfo. engine_for: a TapLabEngine, or a function
    StreamInfo -> TapLabEngine. Returns (summary, None) when done, or (None, {'video', 'error'})
    with the error's first line. The per-video step of segment_many (segment's directory mode)
    and of the Beam pipeline's DoFn (taplab_tf.pipeline.beam): one code path for both."""
    try:
        info = check_video(video)
        engine = engine_for(info) if callable(engine_for) else engine_for
        return segment_file(engine, video, output_path, labels_dir=labels_dir, log=log,
                            info=info, **kwargs), None
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 -- one bad file must not stop the batch
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log(f"error: {msg}" if video in msg else f"error: {video}: {msg}")
        return None, {"video": video, "error": msg}


def labels_dir_for(output_path: str) -> str:
    """<stem>_labels beside <stem>.mp4: where a batch writes a video's label PNGs."""
    return os.path.splitext(output_path)[0] + "_labels"


def segment_many(engine_for, videos: Sequence[str], output_dir: str, *, labels: bool = False,
                 log: Callable[[str], None] = print, **kwargs) -> Tuple[List[dict], List[dict]]:
    """segment_one over each video into output_dir (<stem>.mp4, and <stem>_labels/ with
    labels=True). engine_for: a TapLabEngine, or a function StreamInfo -> TapLabEngine (e.g.
    one engine per input scale). A video that fails is reported and skipped; the others are
    still done. Returns (summaries of the videos done, [{'video', 'error'}] of the failures)."""
    os.makedirs(output_dir, exist_ok=True)
    done, failed, taken = [], [], {}
    for k, video in enumerate(videos, 1):
        out = output_name(video, output_dir, taken)
        log(f"[{k}/{len(videos)}] {video} -> {out}")
        summary, failure = segment_one(engine_for, video, out, log=log,
                                       labels_dir=labels_dir_for(out) if labels else None,
                                       **kwargs)
        if failure is None:
            done.append(summary)
        else:
            failed.append(failure)
    return done, failed


def write_text_atomic(path: str, text: str) -> None:
    """text at path, whole or not at all."""
    io_utils.write_text(path, text)


def format_table(done: Sequence[dict], failed: Sequence[dict]) -> str:
    """A Markdown table: one row a video (frames, keyframes, FPS), failures last."""
    rows = ["| video | frames | keyframes | RGFS % of P | FPS (segmentation) | FPS (wall) | "
            "re-encoded |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for s in done:
        keys = s["i_frames"] + s["rgfs_keyframes"]
        rows.append(f"| {os.path.basename(s['video'])} | {s['frames']} | {keys} | "
                    f"{100 * s['rgfs_fraction']:.1f} | {s['fps']:.2f} | {s['fps_wall']:.2f} | "
                    f"{'yes' if s['transcoded'] else 'no'} |")
    for f in failed:
        rows.append(f"| {os.path.basename(f['video'])} | failed: {f['error']} | | | | | |")
    return "\n".join(rows)


__all__ = ["segment_file", "segment_one", "segment_many", "output_name", "labels_dir_for",
           "find_videos", "format_summary", "format_table",
           "overlay", "legend", "check_video", "SegmentError", "write_json_atomic",
           "write_text_atomic"]
