"""RGFS across encodings: the online trigger against Eq. 4's fixed threshold, side by side.

The same synthetic clips (every frame labelled) are encoded at several quantisers (qscale). For
each qscale the engine runs:
  ffw           no RGFS (the reference RGFS improves on);
  fixed         Eq. 4 with thr_rgfs calibrated offline (calibrate.threshold_for_fraction) on
                these clips encoded at the base qscale, for the target fraction f: what a user
                gets who calibrates once and then meets video of another encoder;
  recalibrated  Eq. 4 with thr_rgfs calibrated offline on these clips at this very qscale (an
                oracle: it needs every P-frame's score before the first decision);
  online        TapLabConfig.rgfs_fraction = f (decisions.OnlineRGFSTrigger), causal;
  thr=<name>    Eq. 4 with other fixed thresholds given at 1024x2048 (`extra_thresholds`, e.g.
                the paper's 3.6e7 or one calibrated offline on another split): what a threshold
                calibrated on other content does here.
and reports each run's fraction of P-frames sent to phi (per clip and over all clips) and its
mIoU over all frames. With rgfs_accumulate both the calibration and the triggers use the
residual summed since the last keyframe. compare returns a plain report;
taplab_tf.reporting.markdown_rgfs makes its README table.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from taplab_tf import config as config_lib
from taplab_tf import metrics as metrics_lib
from taplab_tf.pipeline import calibrate
from taplab_tf.pipeline import engine as engine_lib

RUNS = ("ffw", "fixed", "recalibrated", "online")


@dataclasses.dataclass
class EncodedClip:
    """One generated clip: its labels (uint8 [T,H,W] trainIds) and its videos per qscale."""
    name: str
    seed: int
    labels: np.ndarray
    videos: Dict[float, str]


def make_clips(workdir: str, num_clips: int, num_frames: int, height: int, width: int, gop: int,
               qscales: Sequence[float], seed: int = 1,
               progress: Optional[Callable[[str], None]] = print) -> List[EncodedClip]:
    """Renders `num_clips` synthetic clips (clip i: the generator's seed for clip i of the 'val'
    split at `seed`, so the scenes of make_synthetic --split=val --seed=1, made longer) and
    encodes each at every qscale with GOP g into `workdir`."""
    from taplab_tf.data import synthetic
    from third_party.compressed_video import encode_video
    if num_clips < 1 or num_frames < 2:
        raise ValueError(f"need at least 1 clip of at least 2 frames, got {num_clips} clips of "
                         f"{num_frames}")
    os.makedirs(workdir, exist_ok=True)
    clips = []
    for i in range(num_clips):
        s = synthetic.clip_seed(seed, "val", i)
        t0 = time.perf_counter()
        frames = np.empty((num_frames, height, width, 3), np.uint8)
        labels = np.empty((num_frames, height, width), np.uint8)
        for fr in synthetic.iter_clip(height, width, num_frames, s):
            frames[fr.index], labels[fr.index] = fr.image, fr.label
        videos = {}
        for q in qscales:
            path = os.path.join(workdir, f"clip{i}_q{q:g}.avi")
            encode_video(frames, path, gop=gop, qscale=q)
            videos[q] = path
        clips.append(EncodedClip(f"clip{i}", s, labels, videos))
        if progress:
            progress(f"clip {i + 1}/{num_clips} (seed {s}): {num_frames} frames {height}x{width} "
                     f"rendered and encoded at qscale {', '.join(f'{q:g}' for q in qscales)} in "
                     f"{time.perf_counter() - t0:.0f} s")
    return clips


def calibrate_offline(clips: Sequence[EncodedClip], qscale: float, fraction: float,
                      accumulate: bool = False):
    """thr_rgfs (at 1024x2048) sending `fraction` of these clips' P-frames to phi at `qscale`,
    and the percentiles 10/50/90 of their P-frame scores (at 1024x2048)."""
    sequences = [calibrate.frame_scores(c.videos[qscale]) for c in clips]
    scores = np.concatenate([s[p] for p, s in sequences])
    percentiles = {str(q): float(np.percentile(scores, q)) for q in (10, 50, 90)}
    if accumulate:
        return calibrate.threshold_for_fraction_accumulated(sequences, fraction), percentiles
    return calibrate.threshold_for_fraction(scores, fraction), percentiles


def run_config(model, cfg: config_lib.TapLabConfig, clips: Sequence[EncodedClip],
               qscale: float, num_classes: int) -> Dict:
    """Segments every clip at `qscale` with `cfg`: fraction of P-frames RGFS sent to phi (per
    clip and pooled) and mIoU over all frames."""
    engine = engine_lib.TapLabEngine(model, cfg)
    cm = metrics_lib.ConfusionMatrix(num_classes)
    clip_fractions, fired, p_frames, seconds, positions = [], 0, 0, 0.0, []
    for c in clips:
        t0 = time.perf_counter()
        n_p = n_fired = frames = 0
        for r in engine.segment_video(c.videos[qscale]):
            cm.update(c.labels[r.index], r.labels)
            frames += 1
            if r.pict_type == "P":
                n_p += 1
                n_fired += r.action == "rgfs"
                if r.action == "rgfs":
                    positions.append(r.gop_position)
        seconds += time.perf_counter() - t0
        if frames != len(c.labels):
            raise RuntimeError(f"{c.name} at qscale {qscale:g}: the reader returned {frames} "
                               f"frames of {len(c.labels)}")
        clip_fractions.append(n_fired / n_p if n_p else 0.0)
        fired += n_fired
        p_frames += n_p
    return {"fraction": fired / p_frames if p_frames else 0.0, "clip_fractions": clip_fractions,
            "keyframes": fired, "p_frames": p_frames, "miou": cm.miou(),
            "seconds": seconds, "thr_rgfs": cfg.thr_rgfs if cfg.rgfs_fraction == 0 else None,
            "keyframe_gop_positions": np.bincount(positions, minlength=cfg.gop).tolist()}


def compare(model, cfg: config_lib.TapLabConfig, clips: Sequence[EncodedClip], *,
            fraction: float, qscales: Sequence[float], base_qscale: float, num_classes: int,
            extra_thresholds: Optional[Dict[str, float]] = None,
            tolerance: float = 0.03, miou_tolerance: float = 0.005,
            progress: Optional[Callable[[str], None]] = print) -> Dict:
    """The four runs of the module docstring at every qscale, and the checks of issue 12:
    the online fraction within `tolerance` of f on every clip and qscale; its mIoU within
    `miou_tolerance` of the offline-recalibrated threshold's; the fixed threshold's spread."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction: must lie in (0, 1), got {fraction}")
    if base_qscale not in qscales:
        raise ValueError(f"base_qscale {base_qscale:g} must be one of the qscales {list(qscales)}")
    if not cfg.use_rgfs:
        raise ValueError(f"modules: {cfg.modules_name} has no RGFS to compare")
    acc = cfg.rgfs_accumulate
    thr_base, _ = calibrate_offline(clips, base_qscale, fraction, acc)
    extra_thresholds = dict(extra_thresholds or {})
    no_rgfs = cfg.replace(modules=tuple(m for m in cfg.modules if m != config_lib.RGFS))
    rows = []
    for q in qscales:
        thr_q, percentiles = calibrate_offline(clips, q, fraction, acc)
        runs = {"ffw": run_config(model, no_rgfs, clips, q, num_classes),
                "fixed": run_config(model, cfg.replace(thr_rgfs=thr_base, rgfs_fraction=0.0),
                                    clips, q, num_classes)}
        runs["recalibrated"] = (runs["fixed"] if q == base_qscale else run_config(
            model, cfg.replace(thr_rgfs=thr_q, rgfs_fraction=0.0), clips, q, num_classes))
        runs["online"] = run_config(model, cfg.replace(rgfs_fraction=fraction), clips, q,
                                    num_classes)
        for name, thr in extra_thresholds.items():
            runs[f"thr={name}"] = run_config(model, cfg.replace(thr_rgfs=thr, rgfs_fraction=0.0),
                                             clips, q, num_classes)
        rows.append({"qscale": q, "thr_recalibrated": thr_q, "p_score_percentiles": percentiles,
                     "runs": runs})
        if progress:
            progress(f"qscale {q:g}: " + ", ".join(
                f"{k} {100 * r['fraction']:.1f}% / mIoU {100 * r['miou']:.1f}"
                for k, r in runs.items() if k != "ffw") +
                f" (ffw mIoU {100 * runs['ffw']['miou']:.1f})")
    online_fr = [f for r in rows for f in r["runs"]["online"]["clip_fractions"]]
    gaps = [r["runs"]["online"]["miou"] - r["runs"]["recalibrated"]["miou"] for r in rows]
    base_gap = gaps[list(qscales).index(base_qscale)]
    fixed_fr = [r["runs"]["fixed"]["fraction"] for r in rows]
    checks = {
        "online_fraction_on_target": bool(all(abs(f - fraction) <= tolerance for f in online_fr)),
        "online_clip_fractions_range": [min(online_fr), max(online_fr)],
        "online_miou_gap_at_base_qscale": base_gap,
        "online_miou_within_tolerance_at_base_qscale": bool(abs(base_gap) <= miou_tolerance),
        "online_miou_gap_range_over_qscales": [min(gaps), max(gaps)],
        "fixed_fraction_range": [min(fixed_fr), max(fixed_fr)],
        "fixed_fraction_swings": bool(max(abs(f - fraction) for f in fixed_fr) > tolerance),
        "extra_threshold_fraction_ranges": {
            name: [min(r["runs"][f"thr={name}"]["fraction"] for r in rows),
                   max(r["runs"][f"thr={name}"]["fraction"] for r in rows)]
            for name in extra_thresholds},
    }
    return {"fraction": fraction, "qscales": list(qscales), "base_qscale": base_qscale,
            "thr_rgfs_calibrated_at_base": thr_base, "extra_thresholds": extra_thresholds,
            "tolerance": tolerance,
            "miou_tolerance": miou_tolerance, "rows": rows, "checks": checks,
            "clips": [{"name": c.name, "seed": c.seed, "frames": int(len(c.labels))}
                      for c in clips]}
