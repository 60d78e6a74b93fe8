"""Segment a compressed video with TapLab: the main job.

    python -m experiments.segment --video=X.avi --checkpoint=C --output=out.mp4 \
        --modules=ffw,rgc,rgfs [--labels_dir=D] [--draw_regions] [--mark_keyframes]

With no --video and no --checkpoint it runs the embedded default: a synthetic street clip from the
project's generator (encoded to MPEG-4 Part 2, GOP --gop) and the BL2 checkpoint shipped in
taplab_tf/assets/bl2_synthetic.
"""
import json

from absl import app, flags

from experiments import common
from experiments import flags as flags_lib

flags_lib.define_taplab_flags()
flags_lib.define_workspace_flags()
flags.DEFINE_string("video", None, "Compressed input video (MPEG-4 Part 2, no B-frames; see "
                    "experiments.encode). Default: a synthetic clip from the generator.")
flags.DEFINE_string("checkpoint", None, "Model directory written by experiments.train. "
                    "Default: the shipped BL2 trained on synthetic data.")
flags.DEFINE_string("output", None, "Overlay video to write (default "
                    "<workspace>/results/segment/segmented.mp4).")
flags.DEFINE_string("labels_dir", None, "Also write per-frame label PNGs (trainIds) here.")
flags.DEFINE_bool("draw_regions", True, "Draw the RGC region on corrected frames.")
flags.DEFINE_bool("mark_keyframes", True, "Mark frames where phi ran on the whole frame.")
flags.DEFINE_integer("num_frames", 36, "Frames of the default synthetic clip.", lower_bound=1)
flags.DEFINE_integer("height", 512, "Height of the default synthetic clip.", lower_bound=16)
flags.DEFINE_integer("width", 1024, "Width of the default synthetic clip.", lower_bound=16)
flags.DEFINE_integer("seed", 7, "Seed of the default synthetic clip.")
flags.DEFINE_string("summary_json", None, "Write the run summary as JSON here.")
FLAGS = flags.FLAGS


def main(argv):
    common.reject_extra_args(argv)
    cfg = flags_lib.config_from_flags()
    from taplab_tf.pipeline import segment as segment_lib

    model, meta = common.load_checkpoint(
        FLAGS.checkpoint, cfg.model if FLAGS["model"].present else None)
    dataset = meta.get("dataset", "cityscapes")
    output = FLAGS.output or flags_lib.workspace_path("results", "segment", "segmented.mp4")
    video = FLAGS.video
    if video is None:
        video = common.make_default_video(
            flags_lib.workspace_path("results", "segment", "synthetic_input.avi"),
            FLAGS.height, FLAGS.width, FLAGS.num_frames, FLAGS.seed, cfg.gop)
    else:
        common.check_video(video)
    engine = common.make_engine(model, cfg)
    print(f"segmenting {video} with {meta['model']} ({meta.get('dataset', '?')}, "
          f"{meta['num_classes']} classes), modules {cfg.modules_name}, ops backend "
          f"{common.ops_backend()}, phi {engine.phi_graph}", flush=True)
    summary = common.run_or_exit(lambda: segment_lib.segment_to_file(
        engine, video, output, dataset=dataset, labels_dir=FLAGS.labels_dir,
        draw_regions=FLAGS.draw_regions, mark_keyframes=FLAGS.mark_keyframes))
    print(segment_lib.format_summary(summary))
    print(f"wrote {output}")
    if FLAGS.summary_json:
        with open(FLAGS.summary_json, "w") as f:
            json.dump({"video": video, "output": output, "settings": cfg.to_dict(),
                       "phi_graph": engine.phi_graph, **summary}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
