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


def main(argv):
    from experiments.common import reject_extra_args, run_or_exit
    reject_extra_args(argv)
    if not FLAGS.video or not FLAGS.output_dir:
        raise SystemExit("error: --video and --output_dir are required")
    if FLAGS.mv_block_size not in (8, 16):
        raise SystemExit("error: --mv_block_size must be 8 or 16")
    from third_party.compressed_video.inspection import inspect_video
    run_or_exit(lambda: inspect_video(FLAGS.video, FLAGS.output_dir, FLAGS.max_frames,
                                      FLAGS.every, FLAGS.max_motion, FLAGS.residual_gain,
                                      FLAGS.mv_block_size, FLAGS.save_frames))


if __name__ == "__main__":
    app.run(main)
