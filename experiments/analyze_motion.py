"""How far the stream's motion vectors are from the true motion, per kind of block, before and
after each motion-field refinement, against DIS optical flow; and the generator's statistics
that compare with real street video (zero-vector share, MV-vs-DIS agreement, residual sums).

    python -m experiments.analyze_motion --height=512 --width=1024 --num_frames=36 --seeds=0,1 \
        --refinements=none,fill,model,model+median --output_json=results/motion/analysis.json

Synthetic clips only: the generator knows the true flow (taplab_tf.pipeline.motion_analysis).
"""
from __future__ import annotations

from absl import app, flags

from experiments import common

flags.DEFINE_integer("height", 512, "Clip height.", lower_bound=32)
flags.DEFINE_integer("width", 1024, "Clip width.", lower_bound=32)
flags.DEFINE_integer("num_frames", 36, "Frames per clip.", lower_bound=2)
flags.DEFINE_list("seeds", ["0"], "Generator seeds, one clip each.")
flags.DEFINE_integer("gop", 12, "GOP of the encode.", lower_bound=2)
flags.DEFINE_float("qscale", 3.0, "Quantiser of the encode.", lower_bound=1.0, upper_bound=31.0)
flags.DEFINE_list("refinements", ["none", "fill", "model", "median", "model+median",
                                  "fill+model+median+confidence"],
                  "Refinements to compare ('none' is the paper's FFW).")
flags.DEFINE_bool("dis", True, "Also DIS optical flow (medium preset), as the flow baseline.")
flags.DEFINE_enum("mv_block_size", "16", ["16", "8"], "Grid of the figures: 16x16 macroblocks, or "
                  "8x8 blocks of a clip encoded with 4MV (what --mv_block_size=8 warps with).")
flags.DEFINE_string("output_json", None, "Write all figures here (with the run's settings).")
FLAGS = flags.FLAGS


def main(argv):
    common.reject_extra_args(argv)
    from taplab_tf.pipeline import motion_analysis, motion_field
    try:
        seeds = [int(s) for s in FLAGS.seeds]
    except ValueError:
        raise SystemExit(f"error: --seeds must be integers, got {FLAGS.seeds}") from None
    common.run_or_exit(lambda: [motion_field.parse_refinement(r) for r in FLAGS.refinements])
    results = []
    for seed in seeds:
        print(f"clip seed {seed}: {FLAGS.num_frames} frames at {FLAGS.height}x{FLAGS.width}, "
              f"GOP {FLAGS.gop}, qscale {FLAGS.qscale:g}, {FLAGS.mv_block_size}x"
              f"{FLAGS.mv_block_size} blocks", flush=True)
        r = common.run_or_exit(lambda: motion_analysis.analyze_clip(
            FLAGS.height, FLAGS.width, FLAGS.num_frames, seed=seed, gop=FLAGS.gop,
            qscale=FLAGS.qscale, refinements=FLAGS.refinements, dis=FLAGS.dis,
            block_size=int(FLAGS.mv_block_size)))
        print(motion_analysis.format_table(r))
        print(motion_analysis.format_stats(r["stats"]), flush=True)
        results.append({"seed": seed, **r})
    if FLAGS.output_json:
        from taplab_tf import io_utils
        io_utils.write_json(FLAGS.output_json, {
            "clips": results, "run_config": common.run_record("analyze_motion")}, default=str)
        print(f"wrote {FLAGS.output_json}")


if __name__ == "__main__":
    app.run(main)
