"""Real time on CPU, end to end: a 720p phone-style H.264 video (B-frames, long GOP) segmented to a
written overlay video with the real-data model and all three modules, wall clock from the .mp4 to
the overlay: probe, re-encode to MPEG-4 Part 2, decode, segmentation and writing.

    python -m experiments.benchmark_realtime [--video=phone.mp4] [--output_dir=results/realtime]

Without --video it makes its input once (runs/realtime/synthetic_720p_h264.mp4): --num_frames
frames of the project's synthetic streets at 720x1280, encoded by libx264 as a phone would
(3 B-frames, GOP 30, CRF 23, 30 fps). It prints the time split and writes summary.json (frames,
wall-clock seconds, FPS, the split, the machine) beside the overlay. Name the CPU with the figure:
it moves with the machine. Run it with nothing else busy on the machine.
"""
import os

from absl import app, flags

from experiments import common
from experiments import flags as flags_lib

flags_lib.define_taplab_flags()
flags_lib.define_workspace_flags()
flags.DEFINE_string("video", None, "Input video (default: a generated 720p H.264 street clip).")
flags.DEFINE_string("checkpoint", None, "Model directory (default: the shipped CamVid BL2).")
flags.DEFINE_integer("num_frames", 300, "Frames of the generated clip.", lower_bound=1)
flags.DEFINE_integer("seed", 11, "Seed of the generated clip.")
flags.DEFINE_string("output_dir", None, "Where the overlay and summary.json go (default "
                    "<workspace>/results/realtime).")
FLAGS = flags.FLAGS


def _make_clip(path):
    from taplab_tf.data import synthetic
    from third_party.compressed_video.transcode import encode_h264
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    print(f"making the input once: {FLAGS.num_frames} synthetic 720x1280 street frames, H.264 "
          f"with B-frames -> {path}", flush=True)
    clip = synthetic.generate_clip(720, 1280, FLAGS.num_frames, seed=FLAGS.seed)
    encode_h264(clip.frames, path, fps=30.0, gop=30, b_frames=3)
    return path


def main(argv):
    common.reject_extra_args(argv)
    common.quiet_tensorflow(FLAGS.verbosity)
    common.terminate_as_interrupt()
    cfg = flags_lib.config_from_flags()
    video = FLAGS.video or flags_lib.workspace_path("runs", "realtime",
                                                    "synthetic_720p_h264.mp4")
    if FLAGS.video is None and not os.path.isfile(video):
        common.run_or_exit(lambda: _make_clip(video))
    from taplab_tf import config as config_lib
    from taplab_tf import reporting
    from taplab_tf.data import labels as labels_lib
    from taplab_tf.pipeline import segment as segment_lib
    info = common.run_or_exit(lambda: segment_lib.check_video(video))
    checkpoint = FLAGS.checkpoint or common.REAL_DATA_CHECKPOINT
    model, meta = common.load_checkpoint(checkpoint)
    scale = config_lib.auto_input_scale(labels_lib.phi_frame_height(meta), info.height,
                                        int(model.output_stride))
    engine = common.make_engine(model, cfg.replace(input_scale=scale))
    out_dir = FLAGS.output_dir or flags_lib.workspace_path("results", "realtime")
    output = os.path.join(out_dir, "overlay.mp4")
    print(f"{video}: {info.describe()}; {meta['model']} ({meta.get('dataset')}), modules "
          f"{cfg.modules_name}, rgfs_fraction {cfg.rgfs_fraction:g}, phi {engine.phi_graph} at "
          f"input scale {engine.input_scale:.3g}", flush=True)
    summary = common.run_or_exit(lambda: segment_lib.segment_file(
        engine, video, output, dataset=meta.get("dataset", "cityscapes"), draw_regions=True,
        mark_keyframes=True, progress=True))
    print(segment_lib.format_summary(summary))
    machine = reporting.machine_info()
    report = {"video": video, "checkpoint": checkpoint, "settings": engine.config.to_dict(),
              "machine": machine, **summary,
              "run_config": common.run_record("benchmark_realtime")}
    segment_lib.write_json_atomic(os.path.join(out_dir, "summary.json"), report)
    print(f"end to end: {summary['frames']} frames in {summary['wall_seconds']:.1f} s = "
          f"{summary['fps_wall']:.1f} FPS wall clock (re-encode {summary['transcode_seconds']:.1f}"
          f" s included) on {machine['cpu']} x{machine['cores']}; wrote {output} and "
          f"{os.path.join(out_dir, 'summary.json')}")


if __name__ == "__main__":
    app.run(main)
