"""Segment a compressed video to an overlay video (the main job), with progress and a summary.

The output file is written under a temporary name and renamed when complete, so an interrupted
or failed run leaves no half-written video behind.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Iterator, Optional

import cv2
import numpy as np

from taplab_tf.data import labels as labels_lib
from taplab_tf.pipeline import engine as engine_lib


def overlay(image: np.ndarray, labels: np.ndarray, dataset: str = "cityscapes",
            opacity: float = 0.5, region=None, keyframe: Optional[str] = None) -> np.ndarray:
    """The frame blended with its colourised labels; the RGC region as a white box; keyframes
    ('I' or 'RGFS') marked in the top-left corner."""
    colour = labels_lib.colorize(labels, dataset)
    out = cv2.addWeighted(image, 1.0 - opacity, colour, opacity, 0.0)
    if region is not None:
        y, x, h, w = region
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), (255, 255, 255), 2)
    if keyframe:
        scale = max(0.4, image.shape[0] / 600.0)
        cv2.putText(out, keyframe, (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 0), max(1, int(2 * scale)), cv2.LINE_AA)
    return out


class _Progress:
    """One line, rewritten in place: frames, running FPS, keyframes."""

    def __init__(self, total: Optional[int], stream=sys.stderr, every: int = 1):
        self.total, self.stream, self.every = total, stream, every
        self.t0 = time.perf_counter()

    def update(self, n: int, keys: int):
        if n % self.every:
            return
        dt = time.perf_counter() - self.t0
        of = f"/{self.total}" if self.total else ""
        bar = ""
        if self.total:
            k = int(30 * n / self.total)
            bar = "[" + "#" * k + "." * (30 - k) + "] "
        self.stream.write(f"\r{bar}{n}{of} frames  {n / max(dt, 1e-9):6.2f} fps  "
                          f"{keys} keyframes")
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


def segment_to_file(engine: engine_lib.TapLabEngine, video_path: str, output_path: str, *,
                    dataset: str = "cityscapes", labels_dir: Optional[str] = None,
                    draw_regions: bool = False, mark_keyframes: bool = False,
                    fps: float = 17.0, progress: bool = True) -> dict:
    """Segments `video_path` with the engine and writes the overlay video to `output_path`
    (and label PNGs, trainIds, to `labels_dir`). Returns the summary (engine.summarize)."""
    from third_party.compressed_video import encode_video, open_compressed

    cfg = engine.config
    results = []
    out_dir = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(out_dir, exist_ok=True)
    if labels_dir:
        os.makedirs(labels_dir, exist_ok=True)
    root, ext = os.path.splitext(output_path)
    partial = f"{root}.partial{ext or '.mp4'}"
    t_start = time.perf_counter()

    def frames() -> Iterator[np.ndarray]:
        with open_compressed(video_path, rgb=True,
                             residual="summary" if (cfg.use_rgc or cfg.use_rgfs) else None) as video:
            bar = _Progress(getattr(video, "num_frames", None)) if progress else None
            images = {}

            def keep_images(stream):
                for f in stream:
                    images[f.index] = f.image
                    yield f

            for r in engine.segment(keep_images(video)):
                results.append(r)
                image = images.pop(r.index)
                if labels_dir:
                    cv2.imwrite(os.path.join(labels_dir, f"{r.index:06d}_labelTrainIds.png"),
                                r.labels)
                mark = None
                if mark_keyframes and r.keyframe:
                    mark = "I" if r.pict_type == "I" else "RGFS"
                yield overlay(image, r.labels, dataset,
                              region=r.rgc_region if draw_regions else None, keyframe=mark)
                if bar:
                    bar.update(len(results), sum(x.keyframe for x in results))
            if bar:
                bar.close()

    try:
        encode_video(frames(), partial, gop=cfg.gop, fps=fps)
        os.replace(partial, output_path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    wall = time.perf_counter() - t_start
    summary = engine_lib.summarize(results)
    summary["wall_seconds_with_output"] = wall
    return summary


def format_summary(summary: dict) -> str:
    """Human-readable lines of a summary."""
    split = ", ".join(f"{k} {v:.1f}" for k, v in summary["time_split_ms"].items())
    return (f"frames {summary['frames']}  I-frames {summary['i_frames']}  RGFS keyframes "
            f"{summary['rgfs_keyframes']} ({100 * summary['rgfs_fraction']:.1f}% of P)  RGC "
            f"corrections {summary['rgc_corrections']}\n"
            f"mean FPS {summary['fps']:.2f} (segmentation, inference thread)\n"
            f"time split ms/frame: {split}; reader thread {summary['reader_ms']:.1f}")
