"""Calibrating thr_rgfs (Sec. 3.4): the threshold that sends a target fraction of P-frames to phi.

The paper sets thr_rgfs = 3.6e7 at 1024x2048 so that about 10% of Cityscapes P-frames are
selected. On other data the residual statistics differ; this picks the threshold from the
residual scores of P-frames of a training split, stated at 1024x2048 (scores at other sizes are
scaled by the frame area, like TapLabConfig.scaled_thr_rgfs) so it drops into --thr_rgfs as is.

With rgfs_accumulate (the original code's variant: the residual summed since the last keyframe is
compared with the threshold, and every keyframe resets the sum) the fraction of P-frames sent to
phi depends on the resets, so the threshold is found by replaying the engine's trigger
(decisions.RGFSTrigger) on each video's sequence of frame types and scores (`fired_fraction`) and
bisecting.

A threshold calibrated here holds for video encoded like the calibration clips: sum |Res| follows
the encoder's quantiser. decisions.OnlineRGFSTrigger (TapLabConfig.rgfs_fraction) instead chooses it
online from each stream's own scores.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from taplab_tf import config as config_lib
from taplab_tf.pipeline import decisions


def p_frame_scores(video_path: str, mv_block_size: int = 16) -> np.ndarray:
    """sum |Res| of every P-frame of a compressed video, scaled to 1024x2048 by frame area."""
    is_p, scores = frame_scores(video_path, mv_block_size)
    return scores[is_p]


def frame_scores(video_path: str, mv_block_size: int = 16):
    """(is_p, scores) of every frame of a compressed video in decode order; scores are sum |Res|
    scaled to 1024x2048 by frame area (0 for I-frames). mv_block_size: the vector grid the
    residual is compensated with, as the engine reads it (TapLabConfig.mv_block_size: a 4MV
    stream's residual is smaller with its 8x8 vectors than with each macroblock's mean)."""
    from third_party.compressed_video import open_compressed
    is_p, scores = [], []
    with open_compressed(video_path, rgb=False, residual="summary",
                         mv_block_size=mv_block_size) as video:
        h, w = video.height, video.width
        for frame in video:
            is_p.append(frame.pict_type == "P")
            scores.append(frame.residual_sum if frame.pict_type == "P" else 0.0)
    ref = config_lib.REFERENCE_SIZE[0] * config_lib.REFERENCE_SIZE[1]
    return np.asarray(is_p, bool), np.asarray(scores, np.float64) * ref / (h * w)


def fired_fraction(sequences, threshold: float, accumulate: bool = False) -> float:
    """The fraction of P-frames RGFS sends to phi at this threshold: the engine's trigger
    (decisions.RGFSTrigger: Eq. 4, or the accumulated variant) replayed over (is_p, scores)
    sequences, one stream each."""
    fired = p_frames = 0
    for is_p, scores in sequences:
        trigger = decisions.RGFSTrigger(threshold, accumulate=accumulate)
        for p, s in zip(is_p, scores):
            if not p:  # an I-frame: phi on the whole frame
                trigger.keyframe()
                continue
            p_frames += 1
            if trigger.fires(s):
                fired += 1
                trigger.keyframe()
    return fired / p_frames if p_frames else 0.0


def threshold_for_fraction_accumulated(sequences, fraction: float, iterations: int = 60) -> float:
    """The smallest threshold (to bisection precision) at which the accumulated trigger sends
    at most `fraction` of the P-frames to phi."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction: must lie in [0, 1], got {fraction}")
    sequences = [(np.asarray(p, bool), np.asarray(s, np.float64)) for p, s in sequences]
    if not any(p.any() for p, _ in sequences):
        raise ValueError("no P-frames to calibrate on")
    lo, hi = 0.0, float(sum(s.sum() for _, s in sequences)) + 1.0  # at hi nothing fires
    if fired_fraction(sequences, lo, True) <= fraction:
        return lo
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if fired_fraction(sequences, mid, True) <= fraction:
            hi = mid
        else:
            lo = mid
    return hi


def threshold_for_fraction(scores: Sequence[float], fraction: float) -> float:
    """The smallest threshold with at most `fraction` of the scores strictly above it."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction: must lie in [0, 1], got {fraction}")
    s = np.sort(np.asarray(scores, dtype=np.float64))
    if s.size == 0:
        raise ValueError("no P-frames to calibrate on")
    k = int(np.floor(fraction * s.size))  # frames allowed above the threshold
    return float(s[s.size - k - 1]) if k < s.size else 0.0


def threshold_for_video(video_path: str, fraction: float, accumulate: bool = False,
                        mv_block_size: int = 16) -> float:
    """thr_rgfs (at 1024x2048) sending `fraction` of this video's P-frames to phi (residuals on
    the engine's vector grid, mv_block_size)."""
    if accumulate:
        return threshold_for_fraction_accumulated([frame_scores(video_path, mv_block_size)],
                                                  fraction)
    return threshold_for_fraction(p_frame_scores(video_path, mv_block_size), fraction)


def calibrate_clips(clips, gop: int, fraction: float = 0.1, qscale: Optional[float] = None,
                    max_clips: Optional[int] = None,
                    progress: Optional[Callable[[str], None]] = print,
                    accumulate: bool = False, mv_block_size: int = 16) -> Dict:
    """Encodes each clip (Cityscapes-layout snippets) with GOP g and calibrates thr_rgfs for
    Eq. 4, or for the accumulated trigger with accumulate=True. mv_block_size: the engine's
    vector grid (TapLabConfig.vector_block_size); at 8 the clips are encoded with 4MV as the
    pipeline encodes for such a config, and 4MV prediction leaves smaller residuals, so its
    threshold is its own."""
    mv4 = mv_block_size == 8
    from taplab_tf.data import cityscapes
    from third_party.compressed_video import encode_video
    clips = list(clips)[:max_clips] if max_clips else list(clips)
    if not clips:
        raise ValueError("calibrate: no clips")
    sequences = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, clip in enumerate(clips):
            path = os.path.join(tmp, "clip.avi")
            frames = (cityscapes.load_image(p) for p in clip.frame_paths)
            encode_video(frames, path, gop=gop, qscale=qscale, mv4=mv4)
            sequences.append(frame_scores(path, mv_block_size))
            if progress:
                progress(f"[{n + 1}/{len(clips)}] {clip.name}: {int(sequences[-1][0].sum())} "
                         "P-frames")
    scores = np.concatenate([s[p] for p, s in sequences])
    if accumulate:
        thr = threshold_for_fraction_accumulated(sequences, fraction)
    else:
        thr = threshold_for_fraction(scores, fraction)
    return {"thr_rgfs": thr, "rgfs_accumulate": accumulate, "mv4": mv4,
            "target_fraction": fraction,
            "achieved_fraction": fired_fraction(sequences, thr, accumulate),
            "p_frames": int(scores.size),
            "score_percentiles": {str(q): float(np.percentile(scores, q))
                                  for q in (10, 50, 90, 99)},
            "stated_at": list(config_lib.REFERENCE_SIZE)}
