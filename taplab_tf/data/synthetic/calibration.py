"""Codec calibration: statistics of an MPEG-4 encoded clip against real Cityscapes targets."""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from taplab_tf.data.synthetic.base import _check_args
from taplab_tf.data.synthetic.video import encode_clip


def calibrate(height: int = 1024, width: int = 2048, num_frames: int = 24, seed: int = 0,
              difficulty: float = 1.0, gop: int = 12, qscale: float = 6.0,
              workdir: Optional[str] = None, thr: float = 30.0) -> dict:
    """Encodes a generated clip (MPEG-4 Part 2, fixed GOP, 17 fps) and measures, over P-frames,
    what docs/synthetic.md compares with real Cityscapes footage: mean and max |Mv| (px),
    sum |Res| (over pixels and channels) and the fraction of pixels whose mean-channel |Res| > thr.
    Also returns the ground-truth flow statistics of the same clip.
    """
    import tempfile

    from third_party.compressed_video import open_compressed

    height, width, num_frames, seed, difficulty = _check_args(height, width, num_frames, seed,
                                                              difficulty)
    if num_frames < 2:
        raise ValueError(f"num_frames: calibration needs >= 2 frames, got {num_frames}")
    gt_mean, gt_max = [], []

    def ground_truth(fr):
        if fr.index % gop:
            m = np.sqrt((fr.flow ** 2).sum(-1))
            gt_mean.append(float(m.mean()))
            gt_max.append(float(m.max()))

    own = workdir is None
    tmp = tempfile.mkdtemp(prefix="synthetic_calib_") if own else workdir
    path = os.path.join(tmp, f"synthetic_{height}x{width}_s{seed}.avi")
    try:
        encode_clip(path, height, width, num_frames, seed, difficulty, gop=gop, qscale=qscale,
                    on_frame=ground_truth)
        mv_mean, mv_max, res_sum, frac = [], [], [], []
        with open_compressed(path, rgb=False, residual="summary") as video:
            for fr in video:
                if fr.pict_type != "P":
                    continue
                mv = np.sqrt((np.asarray(fr.motion_vectors, np.float32) ** 2).sum(-1))
                mv_mean.append(float(mv.mean()))
                mv_max.append(float(mv.max()))
                res_sum.append(float(fr.residual_sum))
                frac.append(float(fr.residual_block_counts(thr).sum()) / (height * width))
    finally:
        if own:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    arr = lambda v: np.array(v, np.float64)
    return {
        "size": (height, width), "num_frames": num_frames, "seed": seed,
        "difficulty": difficulty, "gop": gop, "qscale": qscale, "p_frames": len(mv_mean),
        "mv_mean_px": float(arr(mv_mean).mean()), "mv_max_px": float(arr(mv_max).max()),
        "mv_max_px_mean": float(arr(mv_max).mean()),
        "residual_sum": float(arr(res_sum).mean()),
        "residual_sum_range": (float(arr(res_sum).min()), float(arr(res_sum).max())),
        "residual_frac_over_thr": float(arr(frac).mean()), "thr": thr,
        "gt_flow_mean_px": float(arr(gt_mean).mean()), "gt_flow_max_px": float(arr(gt_max).max()),
    }


# Real Cityscapes targets (1024x2048, 17 Hz, MPEG-4 Part 2, GOP 12, qmax 6), per P-frame.
CITYSCAPES_TARGETS = {
    "mv_mean_px": (2.4, 18.0), "mv_max_px": (35.0, 128.0),
    "residual_sum": (5e6, 2.2e7), "residual_frac_over_thr": (0.001, 0.015),
}


def scaled_targets(height: int, width: int) -> dict:
    """CITYSCAPES_TARGETS at another frame size: displacements scale with the width, residual
    sums with the area, fractions not at all."""
    sw = width / 2048.0
    sa = height * width / (1024.0 * 2048.0)
    t = CITYSCAPES_TARGETS
    return {"mv_mean_px": tuple(v * sw for v in t["mv_mean_px"]),
            "mv_max_px": tuple(v * sw for v in t["mv_max_px"]),
            "residual_sum": tuple(v * sa for v in t["residual_sum"]),
            "residual_frac_over_thr": t["residual_frac_over_thr"]}
