"""Calibrating thr_rgfs (Sec. 3.4): the threshold that sends a target fraction of P-frames to phi.

The paper sets thr_rgfs = 3.6e7 at 1024x2048 so that about 10% of Cityscapes P-frames are
selected. On other data the residual statistics differ; this picks the threshold from the
residual scores of P-frames of a training split, stated at 1024x2048 (scores at other sizes are
scaled by the frame area, like TapLabConfig.scaled_thr_rgfs) so it drops into --thr_rgfs as is.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from taplab_tf import config as config_lib


def p_frame_scores(video_path: str) -> np.ndarray:
    """sum |Res| of every P-frame of a compressed video, scaled to 1024x2048 by frame area."""
    from third_party.compressed_video import open_compressed
    scores = []
    with open_compressed(video_path, rgb=False, residual="summary") as video:
        h, w = video.height, video.width
        for frame in video:
            if frame.pict_type == "P":
                scores.append(frame.residual_sum)
    ref = config_lib.REFERENCE_SIZE[0] * config_lib.REFERENCE_SIZE[1]
    return np.asarray(scores, dtype=np.float64) * ref / (h * w) if scores else np.zeros(0)


def threshold_for_fraction(scores: Sequence[float], fraction: float) -> float:
    """The smallest threshold with at most `fraction` of the scores strictly above it."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction: must lie in [0, 1], got {fraction}")
    s = np.sort(np.asarray(scores, dtype=np.float64))
    if s.size == 0:
        raise ValueError("no P-frames to calibrate on")
    k = int(np.floor(fraction * s.size))  # frames allowed above the threshold
    return float(s[s.size - k - 1]) if k < s.size else 0.0


def calibrate_clips(clips, gop: int, fraction: float = 0.1, qscale: Optional[float] = None,
                    max_clips: Optional[int] = None,
                    progress: Optional[Callable[[str], None]] = print) -> Dict:
    """Encodes each clip (Cityscapes-layout snippets) with GOP g and calibrates thr_rgfs."""
    from taplab_tf.data import cityscapes
    from third_party.compressed_video import encode_video
    clips = list(clips)[:max_clips] if max_clips else list(clips)
    if not clips:
        raise ValueError("calibrate: no clips")
    all_scores = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, clip in enumerate(clips):
            path = os.path.join(tmp, "clip.avi")
            frames = (cityscapes.load_image(p) for p in clip.frame_paths)
            encode_video(frames, path, gop=gop, qscale=qscale)
            all_scores.append(p_frame_scores(path))
            if progress:
                progress(f"[{n + 1}/{len(clips)}] {clip.name}: {all_scores[-1].size} P-frames")
    scores = np.concatenate(all_scores)
    thr = threshold_for_fraction(scores, fraction)
    return {"thr_rgfs": thr, "target_fraction": fraction,
            "achieved_fraction": float(np.mean(scores > thr)), "p_frames": int(scores.size),
            "score_percentiles": {str(q): float(np.percentile(scores, q))
                                  for q in (10, 50, 90, 99)},
            "stated_at": list(config_lib.REFERENCE_SIZE)}
