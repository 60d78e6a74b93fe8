"""Pick thr_rgfs so that a target fraction of P-frames goes to phi (default 10%, as the paper).

    python -m experiments.calibrate_rgfs --dataset=synthetic --data_dir=D --split=train \
        --gop=12 --fraction=0.1 [--rgfs_accumulate] [--mv_block_size=8] [--output_json=R.json]

The threshold is printed at the paper's 1024x2048 scale, ready for --thr_rgfs. It holds for video
encoded like the calibration clips (same quantiser, similar content; --mv_block_size=8 encodes
them with 4MV, as the pipeline does for that setting); for other video,
--rgfs_fraction=0.1 chooses the threshold online from each stream's own residuals instead.
"""

from absl import app, flags

from experiments import common
from experiments import flags as flags_lib

flags_lib.define_taplab_flags()
flags.DEFINE_enum("dataset", "synthetic", ["synthetic", "cityscapes"], "Dataset with sequences.")
flags.DEFINE_string("data_dir", None, "Cityscapes-layout root (leftImg8bit_sequence/...).")
flags.DEFINE_string("split", "train", "Split to calibrate on.")
flags.DEFINE_float("fraction", 0.1, "Target fraction of P-frames sent to phi.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("max_clips", None, "Use at most this many clips.")
flags.DEFINE_string("output_json", None, "Write the result as JSON here.")
flags.mark_flag_as_required("data_dir")
FLAGS = flags.FLAGS


def main(argv):
    common.reject_extra_args(argv)
    from taplab_tf.pipeline import calibrate, evaluate
    clips = common.run_or_exit(lambda: evaluate.list_clips(FLAGS.dataset, FLAGS.data_dir,
                                                           FLAGS.split))
    cfg = flags_lib.config_from_flags()
    result = common.run_or_exit(lambda: calibrate.calibrate_clips(
        clips, FLAGS.gop, FLAGS.fraction, max_clips=FLAGS.max_clips,
        accumulate=FLAGS.rgfs_accumulate, mv_block_size=cfg.vector_block_size))
    print(f"thr_rgfs = {result['thr_rgfs']:.4g} (at 1024x2048) sends "
          f"{100 * result['achieved_fraction']:.1f}% of {result['p_frames']} P-frames to phi "
          f"(target {100 * FLAGS.fraction:.0f}%); use --thr_rgfs={result['thr_rgfs']:.4g}"
          + (" --rgfs_accumulate" if FLAGS.rgfs_accumulate else "")
          + (" --mv_block_size=8" if result["mv4"] else ""))
    if FLAGS.output_json:  # whole or not at all, with the settings that made it
        from taplab_tf import io_utils
        result["run_config"] = common.run_record("calibrate_rgfs")
        io_utils.write_json(FLAGS.output_json, result, default=str)
        print(f"wrote {FLAGS.output_json}")


if __name__ == "__main__":
    app.run(main)
