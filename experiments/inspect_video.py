"""Look inside a compressed video: picture types, motion vectors, residuals, per-frame stats.

    python -m experiments.inspect_video --video=X.avi --output_dir=D [--max_frames=N] [--every=K]
        [--max_motion=8] [--residual_gain=4] [--mv_block_size=16] [--save_frames]

Writes into D:
  types.txt          picture types in decode order, one letter a frame (e.g. IPPPPPPPPPPPIPP...)
  stats.json         per frame: index, pict_type, gop_index, gop_position, num_mvs (inter blocks,
                     i.e. blocks with an exported vector), num_moving (blocks with a non-zero
                     vector), num_intra, mean_abs_mv and max_abs_mv (pixels, over inter blocks),
                     residual_sum (the RGFS score, sum |Res|), residual_mean (per pixel and
                     channel); plus a summary of the clip
  mv/NNNNNN.png      motion vectors as colour, as in TapLab's Fig. 5 / optical-flow plots: hue =
                     direction of (dx, dy) = dst - src (red = right, yellow-green = down, cyan =
                     left, blue/violet = up; OpenCV HSV hue), saturation = |mv| / --max_motion
                     (white = still), value 255; intra blocks black; one cell per block, shown at
                     the frame's size. P-frames only.
  residual/NNNNNN.png  mean over channels of |Res| times --residual_gain, grey (black = perfectly
                     predicted). P-frames only.
  frames/NNNNNN_T.png  the decoded frame (with --save_frames; T = I or P).
A legend (mv_legend.png: the colour of each direction and magnitude) is written once.
"""
from __future__ import annotations

import json
import os

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("video", None, "Video to inspect (MPEG-4 Part 2, as experiments.encode writes).")
flags.DEFINE_string("output_dir", None, "Directory for the PNGs and stats.json.")
flags.DEFINE_integer("max_frames", None, "Stop after this many frames.")
flags.DEFINE_integer("every", 1, "Write images for every k-th frame (stats for all).",
                     lower_bound=1)
flags.DEFINE_float("max_motion", 8.0, "Motion magnitude (pixels) shown at full saturation.")
flags.DEFINE_float("residual_gain", 4.0, "Residual map brightness = gain * mean |Res|.")
flags.DEFINE_integer("mv_block_size", 16, "8 or 16.")
flags.DEFINE_bool("save_frames", False, "Also write the decoded frames.")


def mv_to_hsv_image(mv: np.ndarray, height: int, width: int, max_motion: float,
                    intra: np.ndarray = None) -> np.ndarray:
    """Block vectors [h, w, 2] -> RGB uint8 [height, width, 3] (hue direction, saturation
    magnitude, intra blocks black)."""
    import cv2
    from third_party.compressed_video import expand_motion
    dx, dy = mv[..., 0].astype(np.float32), mv[..., 1].astype(np.float32)
    mag, ang = cv2.cartToPolar(dx, dy, angleInDegrees=True)     # image coordinates: y down
    hsv = np.empty(mv.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = np.round(ang / 2).astype(np.uint8) % 180
    hsv[..., 1] = np.clip(mag / max(max_motion, 1e-6) * 255, 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    if intra is not None:
        hsv[intra] = (0, 0, 0)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rgb.shape[:2] == (height, width):
        return rgb
    return expand_motion(rgb, height, width).astype(np.uint8)


def legend(size: int = 129, max_motion: float = 8.0) -> np.ndarray:
    c = size // 2
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    mv = np.stack([(xs - c) / c * max_motion, (ys - c) / c * max_motion], -1)
    return mv_to_hsv_image(mv, size, size, max_motion)


def inspect(video_path: str, output_dir: str, max_frames=None, every=1, max_motion=8.0,
            residual_gain=4.0, mv_block_size=16, save_frames=False, log=print) -> dict:
    import cv2
    from third_party.compressed_video import open_compressed

    def save(path, rgb):
        if not cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1]) if rgb.ndim == 3 else rgb):
            raise OSError(f"cannot write {path}")

    os.makedirs(output_dir, exist_ok=True)
    for sub in ("mv", "residual") + (("frames",) if save_frames else ()):
        os.makedirs(os.path.join(output_dir, sub), exist_ok=True)
    save(os.path.join(output_dir, "mv_legend.png"), legend(max_motion=max_motion))
    stats, types = [], []
    with open_compressed(video_path, rgb=save_frames, residual="summary",
                         mv_block_size=mv_block_size) as video:
        log(repr(video))
        h, w = video.height, video.width
        for f in video:
            if max_frames is not None and f.index >= max_frames:
                break
            types.append(f.pict_type)
            st = dict(index=f.index, pict_type=f.pict_type, gop_index=f.gop_index,
                      gop_position=f.gop_position)
            write = f.index % every == 0
            if f.pict_type == "P":
                mv, intra = f.motion_vectors, f.intra_blocks
                inter = ~intra
                mag = np.hypot(mv[..., 0], mv[..., 1])
                st.update(num_mvs=int(inter.sum()), num_moving=int((mag[inter] > 0).sum()),
                          num_intra=int(intra.sum()),
                          mean_abs_mv=float(mag[inter].mean()) if inter.any() else 0.0,
                          max_abs_mv=float(mag[inter].max()) if inter.any() else 0.0,
                          residual_sum=float(f.residual_sum),
                          residual_mean=float(f.residual_sum) / (h * w * 3))
                if write:
                    save(os.path.join(output_dir, "mv", f"{f.index:06d}.png"),
                         mv_to_hsv_image(mv, h, w, max_motion, intra))
                    mean_abs = f.abs_residual().astype(np.float32).mean(axis=2)
                    save(os.path.join(output_dir, "residual", f"{f.index:06d}.png"),
                         np.clip(mean_abs * residual_gain, 0, 255).astype(np.uint8))
            else:
                st.update(num_mvs=0, num_moving=0, num_intra=None, mean_abs_mv=0.0,
                          max_abs_mv=0.0, residual_sum=0.0, residual_mean=0.0)
            if save_frames and write:
                save(os.path.join(output_dir, "frames", f"{f.index:06d}_{f.pict_type}.png"),
                     f.image)
            stats.append(st)
        meta = dict(video=os.path.abspath(video_path), codec=video.codec, width=w, height=h,
                    fps=video.fps, mv_block_size=mv_block_size, max_motion=max_motion,
                    residual_gain=residual_gain)
    p = [s for s in stats if s["pict_type"] == "P"]
    summary = dict(frames=len(stats), i_frames=types.count("I"), p_frames=len(p),
                   gop_starts=[s["index"] for s in stats if s["pict_type"] == "I"],
                   mean_abs_mv=float(np.mean([s["mean_abs_mv"] for s in p])) if p else 0.0,
                   mean_residual_sum=float(np.mean([s["residual_sum"] for s in p])) if p else 0.0)
    with open(os.path.join(output_dir, "types.txt"), "w") as fh:
        fh.write("".join(types) + "\n")
    out = dict(meta=meta, summary=summary, frames=stats)
    with open(os.path.join(output_dir, "stats.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    log(f"{len(stats)} frames ({summary['i_frames']} I, {summary['p_frames']} P), mean |mv| "
        f"{summary['mean_abs_mv']:.2f} px, mean sum|Res| {summary['mean_residual_sum']:.0f} "
        f"-> {output_dir}")
    return out


def main(argv):
    from experiments.common import reject_extra_args, run_or_exit
    reject_extra_args(argv)
    if not FLAGS.video or not FLAGS.output_dir:
        raise SystemExit("error: --video and --output_dir are required")
    if FLAGS.mv_block_size not in (8, 16):
        raise SystemExit("error: --mv_block_size must be 8 or 16")
    run_or_exit(lambda: inspect(FLAGS.video, FLAGS.output_dir, FLAGS.max_frames, FLAGS.every,
                                FLAGS.max_motion, FLAGS.residual_gain, FLAGS.mv_block_size,
                                FLAGS.save_frames))


if __name__ == "__main__":
    app.run(main)
