"""Segment videos with TapLab: the main job.

    python -m experiments.segment --video=street.mp4 [--output=out.mp4] [--modules=ffw,rgc,rgfs]
    python -m experiments.segment --video=videos/ --output_dir=out/      # a folder or a 'glob*'

Any video in: H.264, HEVC, VP9, MPEG-2, MJPEG, with or without B-frames, in any container FFmpeg
reads, is re-encoded on the fly to MPEG-4 Part 2 at --gop (--transcode=auto; 'never' refuses,
'always' re-encodes any input). phi sees the frames at the scale its model was evaluated at
(--input_scale=auto: the size its training run evaluated it at, e.g. CamVid's 360-line frames
enlarged 4/3 for the shipped model); the labels come back at the video's size.

With --video and no --checkpoint it uses the shipped real-data model (BL2 trained on CamVid,
taplab_tf/assets/bl2_camvid). With no --video at all it runs the embedded default: a synthetic
street clip from the project's generator and the BL2 shipped for it (assets/bl2_synthetic).
TensorFlow's start-up lines are silenced unless --verbosity=1 (or higher) asks for them.
"""
import os
import sys

from absl import app, flags

from experiments import common
from experiments import flags as flags_lib

flags_lib.define_taplab_flags()
flags_lib.define_workspace_flags()
flags.DEFINE_string("video", None, "Input: a video file (any codec FFmpeg decodes), a folder of "
                    "videos, or a quoted glob. Default: a synthetic clip from the generator.")
flags.DEFINE_string("checkpoint", None, "Model directory written by experiments.train. Default: "
                    "the shipped BL2 trained on CamVid (with --video), or on synthetic streets "
                    "(the embedded default).")
flags.DEFINE_string("output", None, "Overlay video to write for one input (default "
                    "<workspace>/results/segment/<name>.mp4; segmented.mp4 for the default).")
flags.DEFINE_string("output_dir", None, "Folder for the outputs of several inputs (default "
                    "<workspace>/results/segment): <name>.mp4 each, summary.md and summary.json.")
flags.DEFINE_string("labels_dir", None, "Also write per-frame label PNGs (trainIds) here (with "
                    "several inputs: <output_dir>/<name>_labels/ when set to anything).")
flags_lib.define_segment_flags()  # overlay marks, --input_scale, --transcode, --qscale
flags.DEFINE_integer("num_frames", 36, "Frames of the default synthetic clip.", lower_bound=1)
flags.DEFINE_integer("height", 512, "Height of the default synthetic clip.", lower_bound=16)
flags.DEFINE_integer("width", 1024, "Width of the default synthetic clip.", lower_bound=16)
flags.DEFINE_integer("seed", 7, "Seed of the default synthetic clip.")
flags.DEFINE_string("summary_json", None, "Write the run summary as JSON here (its folder is "
                    "created).")
FLAGS = flags.FLAGS


def _rgfs_note(engine, summary) -> None:
    """Says so where the fixed RGFS threshold never fired: on real video the residual sums
    follow the encoder's quantiser, and the paper's 3.6e7 may lie above all of them."""
    cfg = engine.config
    scores = summary.get("rgfs_score_range")
    if (cfg.use_rgfs and cfg.rgfs_fraction == 0 and summary["rgfs_keyframes"] == 0 and scores
            and summary["frames"] - summary["i_frames"] >= 2 * cfg.gop):
        print(f"note: RGFS never fired: the P-frames' sum|Res| lie in {scores[0]:.3g}.."
              f"{scores[1]:.3g}, below thr_rgfs; --rgfs_fraction=0.1 sends 10% of P-frames to "
              f"phi whatever the encoding (or calibrate --thr_rgfs with calibrate_rgfs)")


def main(argv):
    common.reject_extra_args(argv)
    common.quiet_tensorflow(FLAGS.verbosity)
    common.terminate_as_interrupt()
    cfg = flags_lib.config_from_flags()
    scale = common.input_scale(FLAGS.input_scale)
    # The inputs are checked with the TF-free helpers first; the engine (TF) loads after.
    from taplab_tf.pipeline import inputs as segment_lib

    # Inputs are checked before the model loads: a bad file fails in well under a second.
    default_run = FLAGS.video is None
    if default_run:
        videos = [common.make_default_video(
            flags_lib.workspace_path("results", "segment", "synthetic_input.avi"),
            FLAGS.height, FLAGS.width, FLAGS.num_frames, FLAGS.seed, cfg.gop)]
    else:
        videos = common.run_or_exit(lambda: segment_lib.find_videos(FLAGS.video))
    many = len(videos) > 1 or os.path.isdir(FLAGS.video or "") or FLAGS.output_dir is not None
    if many and FLAGS.output:
        raise SystemExit("error: --output names one file; with several inputs use --output_dir")
    infos = {}
    for v in videos:
        try:
            infos[v] = segment_lib.check_video(v)
        except segment_lib.SegmentError as e:
            if not many:
                raise SystemExit(f"error: {e}") from None
            infos[v] = e
    if FLAGS.summary_json:  # fail now, not after the videos were written
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.summary_json)), exist_ok=True)

    from taplab_tf.pipeline import segment as segment_lib
    checkpoint = FLAGS.checkpoint or (common.DEFAULT_CHECKPOINT if default_run
                                      else common.REAL_DATA_CHECKPOINT)
    model, meta = common.load_checkpoint(checkpoint, cfg.model if FLAGS["model"].present
                                         else None)
    dataset = meta.get("dataset", "cityscapes")
    from taplab_tf import config as config_lib
    from taplab_tf.data import labels as labels_lib
    train_height = labels_lib.phi_frame_height(meta)
    engines = {}

    def engine_for(info):
        s = scale if scale is not None else config_lib.auto_input_scale(
            train_height, info.height, int(model.output_stride))
        if s not in engines:
            engines[s] = common.make_engine(model, cfg.replace(input_scale=s))
        return engines[s]

    first = next((i for i in infos.values() if not isinstance(i, Exception)), None)
    head = engine_for(first) if first is not None else None
    print(f"segmenting {len(videos) if many else videos[0]}{' videos' if many else ''} with "
          f"{meta['model']} ({dataset}, {meta['num_classes']} classes), modules "
          f"{cfg.modules_name}, ops backend {common.ops_backend()}"
          + (f", phi {head.phi_graph} at input scale {head.input_scale:.3g}" if head else ""),
          flush=True)
    options = dict(dataset=dataset, draw_regions=FLAGS.draw_regions,
                   mark_keyframes=FLAGS.mark_keyframes, show_legend=FLAGS.legend,
                   transcode=FLAGS.transcode, gop_given=FLAGS["gop"].present,
                   qscale=FLAGS.qscale)
    settings = cfg.to_dict()
    if not many:
        video = videos[0]
        output = FLAGS.output or flags_lib.workspace_path(
            "results", "segment", "segmented.mp4" if default_run else
            os.path.splitext(os.path.basename(video))[0] + ".mp4")
        engine = engine_for(infos[video])
        summary = common.run_or_exit(lambda: segment_lib.segment_file(
            engine, video, output, labels_dir=FLAGS.labels_dir, info=infos[video], **options))
        print(segment_lib.format_summary(summary))
        _rgfs_note(engine, summary)
        config_path = common.write_run_config(
            os.path.splitext(output)[0] + ".config.json", "segment",
            settings={**settings, "input_scale": engine.input_scale, "checkpoint": checkpoint})
        print(f"wrote {output} (settings: {config_path})")
        if FLAGS.summary_json:
            segment_lib.write_json_atomic(FLAGS.summary_json, {
                "settings": {**settings, "input_scale": engine.input_scale},
                "checkpoint": checkpoint, "phi_graph": engine.phi_graph, **summary})
        return

    output_dir = FLAGS.output_dir or flags_lib.workspace_path("results", "segment")
    done, failed = common.run_or_exit(lambda: segment_lib.segment_many(
        engine_for, videos, output_dir, labels=bool(FLAGS.labels_dir), **options))
    table = segment_lib.format_table(done, failed)
    print(table)
    report = {"settings": settings, "checkpoint": checkpoint, "videos": done,
              "failed": failed, "frames": sum(s["frames"] for s in done),
              "wall_seconds": sum(s["wall_seconds"] for s in done)}
    segment_lib.write_json_atomic(os.path.join(output_dir, "summary.json"), report)
    segment_lib.write_text_atomic(os.path.join(output_dir, "summary.md"), table + "\n")
    common.write_run_config(os.path.join(output_dir, "config.json"), "segment",
                            settings={**settings, "checkpoint": checkpoint})
    if FLAGS.summary_json:
        segment_lib.write_json_atomic(FLAGS.summary_json, report)
    print(f"wrote {len(done)} of {len(videos)} videos to {output_dir} (summary.md, summary.json, "
          "config.json)")
    if failed:
        sys.exit(1)


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    app.run(main)
