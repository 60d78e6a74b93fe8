"""How good are the stream's motion vectors? Error against the generator's ground-truth flow,
per kind of block, for each motion-field refinement (motion_field.py) and for DIS optical flow,
plus the statistics that compare the generator with real street video.

    analyze_clip(512, 1024, 36, seed=0, gop=12, qscale=3,
                 refinements=("none", "fill", "fill+median"))

Conventions: vectors and flows are (dx, dy) = position in frame t - position in frame t-1, at the
pixel (block) of frame t, which is what FFW (Eq. 1) gathers with: F_t[p] = F_{t-1}[p - Mv_t[p]].
Block kinds (motion_field.KINDS): intra (no vector), skipped (zero vector, zero residual), and
of the rest the upper half of the clip's block texture (mean gradient) is textured, the lower
half flat.
"""
from __future__ import annotations

import os
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from taplab_tf.pipeline import motion_field as mf

REFERENCE_AREA = 1024 * 2048  # residual sums are also given scaled to the paper's frame size


def _summary(errors: List[np.ndarray], kinds: List[np.ndarray]) -> Dict[str, dict]:
    return mf.summarize_errors(np.concatenate([e.ravel() for e in errors]),
                               np.concatenate([k.ravel() for k in kinds]))


def _block_mean(values: np.ndarray, block: int = 16) -> np.ndarray:
    """Mean of a [H, W] map per block."""
    return mf.block_flow(np.stack([values, values], -1), block)[..., 0]


def analyze_clip(height: int, width: int, num_frames: int, seed: int = 0, gop: int = 12,
                 qscale: Optional[float] = 3.0, difficulty: float = 1.0,
                 refinements: Sequence[str] = ("none", "fill", "median", "fill+median",
                                               "fill+median+confidence"),
                 dis: bool = True, block_size: int = 16) -> dict:
    """Encodes one synthetic clip and returns, over its P-frames, {'refinements': {name:
    per-kind error}, 'dis': per-kind error, 'stats': {...}, 'ms_per_frame': {name: ms}}.
    block_size 8: the clip is encoded with 4MV and every figure is per 8x8 block (the grid FFW
    warps with at TapLabConfig.mv_block_size=8), the true flow and DIS averaged likewise."""
    if block_size not in (8, 16):
        raise ValueError(f"analyze_clip: block_size must be 16 or 8, got {block_size}")
    import cv2

    from taplab_tf.data import synthetic
    from third_party.compressed_video import open_compressed

    specs = [mf.Refinement.from_spec(r) for r in refinements]
    gt: Dict[int, np.ndarray] = {}

    def keep(frame):
        gt[frame.index] = mf.block_flow(frame.flow, block_size)

    with tempfile.TemporaryDirectory(prefix="taplab-motion-") as tmp:
        path = os.path.join(tmp, "clip.avi")
        synthetic.encode_clip(path, height, width, num_frames, seed, difficulty, gop=gop,
                              qscale=qscale, mv4=block_size == 8, on_frame=keep)
        errors = {s.name: [] for s in specs}
        seconds = {s.name: 0.0 for s in specs}
        dis_errors, kinds, textures, zero_textured, residual_sums = [], [], [], [], []
        dis_vs_mv: List[np.ndarray] = []
        frames = []
        prev_gray = None
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if dis else None
        dis_seconds = 0.0
        with open_compressed(path, residual="full", mv_block_size=block_size) as reader:
            for frame in reader:
                gray = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
                if frame.is_iframe or frame.index not in gt:
                    prev_gray = gray
                    continue
                res = frame.abs_residual().astype(np.float32).mean(-1)
                block_res = _block_mean(res, block_size)
                mv, intra = frame.motion_vectors, frame.intra_blocks
                texture = mf.block_texture(gray, block_size)
                frames.append((mv, intra, block_res, texture, gt[frame.index]))
                textures.append(texture)
                residual_sums.append(float(frame.residual_sum))
                if flow is not None:
                    t0 = time.perf_counter()
                    backward = flow.calc(gray, prev_gray, None)  # cur pixel -> prev position
                    dis_seconds += time.perf_counter() - t0
                    dis_mv = -mf.block_flow(backward, block_size)
                    dis_vs_mv.append((dis_mv, mv, intra))
                    frames[-1] = frames[-1] + (dis_mv,)
                prev_gray = gray
    if not frames:
        raise ValueError("analyze_clip: the clip has no P-frames (num_frames <= 1 or gop 1)")
    flat_threshold = float(np.median(np.concatenate([t.ravel() for t in textures])))
    for item in frames:
        mv, intra, block_res, texture, truth = item[:5]
        kind = mf.block_kinds(intra, mv, block_res, texture, flat_threshold)
        kinds.append(kind)
        zero = (np.hypot(mv[..., 0], mv[..., 1]) == 0) & ~intra
        zero_textured.append(zero[kind == 0])
        for spec in specs:
            t0 = time.perf_counter()
            refined, _ = mf.refine(mv, intra, spec, block_res)
            seconds[spec.name] += time.perf_counter() - t0
            errors[spec.name].append(np.hypot(*(refined - truth).transpose(2, 0, 1)))
        if len(item) > 5:
            dis_errors.append(np.hypot(*(item[5] - truth).transpose(2, 0, 1)))
    n = len(frames)
    scale = REFERENCE_AREA / float(height * width)
    textured_mv_vs_dis = []
    for (dis_mv, mv, _), kind in zip(dis_vs_mv, kinds):
        sel = (kind == 0)
        textured_mv_vs_dis.append(np.hypot(*(mv - dis_mv).transpose(2, 0, 1))[sel])
    agree = np.concatenate(textured_mv_vs_dis) if textured_mv_vs_dis else np.zeros(0)
    zt = np.concatenate(zero_textured) if zero_textured else np.zeros(0, bool)
    stats = {
        "p_frames": n,
        "size": [height, width],
        "block_size": block_size,
        "qscale": qscale,
        "intra_share": float(np.mean([f[1].mean() for f in frames])),
        "zero_vector_share_textured": float(zt.mean()) if zt.size else None,
        "zero_vector_share_all": float(np.mean([
            ((np.hypot(f[0][..., 0], f[0][..., 1]) == 0) & ~f[1]).mean() for f in frames])),
        "residual_sum_range": [min(residual_sums), max(residual_sums)],
        "residual_sum_range_at_1024x2048": [min(residual_sums) * scale,
                                            max(residual_sums) * scale],
        "textured_mv_vs_dis_median_px": float(np.median(agree)) if agree.size else None,
        "textured_mv_vs_dis_within_2px": float((agree <= 2).mean()) if agree.size else None,
        "flat_threshold": flat_threshold,
    }
    result = {
        "refinements": {name: _summary(errs, kinds) for name, errs in errors.items()},
        "ms_per_frame": {name: 1000.0 * s / n for name, s in seconds.items()},
        "stats": stats,
    }
    if dis_errors:
        result["dis"] = _summary(dis_errors, kinds)
        result["ms_per_frame"]["dis"] = 1000.0 * dis_seconds / n
    return result


def format_table(result: dict) -> str:
    """Markdown: per method, mean error / within 2 px per kind of block, and ms per frame."""
    rows = dict(result["refinements"])
    if "dis" in result:
        rows["DIS flow"] = result["dis"]
    kinds = mf.KINDS + ("all",)
    head = "| method | " + " | ".join(f"{k} mean px / <=2px" for k in kinds) + " | ms/frame |"
    lines = [head, "|" + " --- |" * (len(kinds) + 2)]
    for name, per_kind in rows.items():
        cells = []
        for k in kinds:
            e = per_kind[k]
            cells.append("-" if e["mean_px"] is None else
                         f"{e['mean_px']:.2f} / {100 * e['within_2px']:.0f}%")
        ms = result["ms_per_frame"].get("dis" if name == "DIS flow" else name)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ms:.2f} |")
    shares = result["refinements"][next(iter(result["refinements"]))]
    lines.append("")
    lines.append("block shares: " + ", ".join(f"{k} {100 * shares[k]['share']:.0f}%"
                                              for k in mf.KINDS))
    return "\n".join(lines)


def format_stats(stats: dict) -> str:
    """One paragraph of the statistics that compare the generator with real street video."""
    lo, hi = stats["residual_sum_range_at_1024x2048"]
    zt = stats["zero_vector_share_textured"]
    parts = [f"{stats['p_frames']} P-frames",
             f"intra blocks {100 * stats['intra_share']:.1f}%",
             f"zero vectors {100 * stats['zero_vector_share_all']:.1f}% of blocks"
             + ("" if zt is None else f", {100 * zt:.1f}% of textured ones"),
             f"residual sums {lo:.3g}..{hi:.3g} (scaled to 1024x2048)"]
    if stats.get("textured_mv_vs_dis_median_px") is not None:
        parts.append(f"MV vs DIS on textured blocks: median "
                     f"{stats['textured_mv_vs_dis_median_px']:.2f} px, "
                     f"{100 * stats['textured_mv_vs_dis_within_2px']:.0f}% within 2 px")
    return "; ".join(parts)
