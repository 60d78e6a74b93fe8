"""Video evaluation of TapLab, the paper's protocol (see taplab_tf.pipeline.evaluate).

    python -m experiments.evaluate --dataset=synthetic --data_dir=D --checkpoint=C \
        --modules=ffw,rgc,rgfs --gop=12 --output_json=R.json

Each clip is encoded to MPEG-4 Part 2 with the given GOP from a seeded random start, so the
annotated frame falls at a random GOP position; mIoU on annotated frames, on every labelled frame
(synthetic data), and per distance from the last I-frame.
"""
import os

from absl import app, flags

from experiments import common
from experiments import flags as flags_lib
from taplab_tf.data.labels import DATASET_NAMES

flags_lib.define_taplab_flags()
flags.DEFINE_enum("dataset", "synthetic", list(DATASET_NAMES),
                  "Dataset (camvid's SegNet copy has no sequences: a clear error).")
flags.DEFINE_string("data_dir", None, "Cityscapes-layout root.")
flags.DEFINE_string("split", "val", "Split to evaluate.")
flags.DEFINE_string("checkpoint", None, "Model directory (default: the shipped BL2).")
flags.DEFINE_integer("seed", 0, "Seed of the random GOP offsets.")
flags.DEFINE_float("qscale", None, "Encoder quantiser (default: the encoder's).")
flags.DEFINE_integer("max_clips", None, "Evaluate at most this many clips.")
flags.DEFINE_enum("propagation", "mv", ["mv", "flow_dis", "flow_farneback", "flow_dis_blocks"],
                  "How P-frames propagate: motion vectors (TapLab) or an optical-flow baseline "
                  "(flow_dis_blocks: DIS flow averaged per --mv_block_size block, warped as "
                  "the vectors are; a diagnostic).")
flags.DEFINE_string("output_json", None, "Write the results here.")
flags.mark_flag_as_required("data_dir")
FLAGS = flags.FLAGS


def main(argv):
    common.reject_extra_args(argv)
    cfg = flags_lib.config_from_flags().replace(propagation=FLAGS.propagation)
    from taplab_tf.pipeline import evaluate
    if not os.path.isdir(FLAGS.data_dir):
        raise SystemExit(f"error: --data_dir {FLAGS.data_dir} does not exist")
    model, meta = common.load_checkpoint(
        FLAGS.checkpoint, cfg.model if FLAGS["model"].present else None)
    if meta.get("dataset") and meta["dataset"] != FLAGS.dataset and \
            {meta["dataset"], FLAGS.dataset} != {"synthetic", "cityscapes"}:
        raise SystemExit(f"error: the checkpoint was trained on {meta['dataset']}, not "
                         f"{FLAGS.dataset}")
    clips = common.run_or_exit(lambda: evaluate.list_clips(FLAGS.dataset, FLAGS.data_dir,
                                                           FLAGS.split))
    engine = common.make_engine(model, cfg)
    result = common.run_or_exit(lambda: evaluate.evaluate_clips(
        engine, clips, FLAGS.dataset, cfg.gop, seed=FLAGS.seed, qscale=FLAGS.qscale,
        max_clips=FLAGS.max_clips))
    result["checkpoint"] = FLAGS.checkpoint or common.DEFAULT_CHECKPOINT
    print(f"modules {cfg.modules_name}, GOP {cfg.gop}: mIoU {100 * result['miou']:.2f} "
          f"(annotated frames)" + (f", {100 * result['miou_all_frames']:.2f} (all frames)"
                                    if result["miou_all_frames"] is not None else "") +
          f", {result['fps']:.2f} fps, RGFS sent {100 * result['rgfs_fraction']:.1f}% of P")
    print("mIoU by distance from the I-frame: " + " ".join(
        "-" if m is None else f"{100 * m:.1f}" for m in result["per_distance_miou"]))
    if FLAGS.output_json:  # whole or not at all, with the resolved settings that made it
        from taplab_tf import io_utils
        result["run_config"] = common.run_record("evaluate", settings=cfg.to_dict())
        io_utils.write_json(FLAGS.output_json, result, default=str)
        print(f"wrote {FLAGS.output_json}")


if __name__ == "__main__":
    app.run(main)
