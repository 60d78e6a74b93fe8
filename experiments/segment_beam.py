"""Segment many videos on Apache Beam: one element a video, the model loaded once per worker.

    python -m experiments.segment_beam --videos=videos/ --output_dir=out/ --checkpoint=model/
    python -m experiments.segment_beam --videos='clips/*.mp4' --output_dir=out/ \\
        --direct_num_workers=2 --direct_running_mode=multi_processing
    python -m experiments.segment_beam --videos=... --output_dir=... -- --runner=FlinkRunner \\
        --flink_master=HOST:8081 --environment_type=PROCESS ...

The flags it knows are TapLab's (the shared --gop, --modules, ... of experiments/flags.py, and
the segment flags below); every other --flag, and everything after '--', goes to Beam's
PipelineOptions (--runner, --direct_num_workers, --direct_running_mode, the Flink, Spark and
Dataflow options). DirectRunner by default. The outputs are segment's directory mode's
(<stem>.mp4, <stem>_labels/, summary.json, summary.md) plus <stem>.json per video; the exit
status is 1 when any video failed, as there.
"""
import sys

from absl import app, flags

from experiments import common
from experiments import flags as flags_lib

flags_lib.define_taplab_flags()
flags_lib.define_workspace_flags()
flags.DEFINE_string("videos", None, "Input: a folder of videos, a quoted glob, or one file.")
flags.DEFINE_string("output_dir", None, "Folder for the outputs (default "
                    "<workspace>/results/segment_beam): <name>.mp4, <name>_labels/ and "
                    "<name>.json each, summary.md and summary.json. On a cluster, a path every "
                    "worker mounts.")
flags.DEFINE_string("checkpoint", None, "Model directory written by experiments.train, or a "
                    "SavedModel written by experiments.export (what a worker needs with the ops "
                    "library). Default: the shipped BL2 trained on CamVid.")
flags.DEFINE_bool("overlay", True, "Write the overlay video <name>.mp4 of each input.")
flags.DEFINE_bool("labels", True, "Write the per-frame label PNGs (trainIds) in <name>_labels/.")
flags_lib.define_segment_flags()  # overlay marks, --input_scale, --transcode, --qscale
flags.mark_flag_as_required("videos")
FLAGS = flags.FLAGS


def beam_args(argv):
    """The arguments absl left for Beam: --flags only ('--' itself dropped); a stray word is an
    error, since Beam would ignore it silently."""
    rest = [a for a in argv[1:] if a != "--"]
    stray = [a for a in rest if not a.startswith("--")]
    if stray:
        raise SystemExit(f"error: unexpected arguments {stray}; TapLab's options and Beam's "
                         "pipeline options are all --flags (see --help)")
    return rest


def parse(argv):
    """absl parses the flags it knows; the unknown --flags stay in argv for Beam."""
    try:
        return FLAGS(argv, known_only=True)
    except flags.Error as e:
        sys.stderr.write(f"error: {e}\n")
        sys.exit(1)


def main(argv):
    extra = beam_args(argv)
    common.quiet_tensorflow(FLAGS.verbosity)
    common.terminate_as_interrupt()
    cfg = flags_lib.config_from_flags()
    scale = common.input_scale(FLAGS.input_scale)
    if FLAGS.verbosity < 1:  # Beam's INFO and WARN lines (type hints, caches, the workers'
        import logging       # start-up notes) on request; its errors still show
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
    from taplab_tf.pipeline import beam as beam_lib
    from taplab_tf.pipeline import inputs
    if beam_lib._beam is None:
        raise SystemExit(f"error: {beam_lib.MISSING}")
    videos = common.run_or_exit(lambda: inputs.find_videos(FLAGS.videos))
    checkpoint = FLAGS.checkpoint or common.REAL_DATA_CHECKPOINT
    output_dir = FLAGS.output_dir or flags_lib.workspace_path("results", "segment_beam")
    job = beam_lib.BeamJob(
        checkpoint=checkpoint, output_dir=output_dir, config=cfg, input_scale=scale,
        overlay=FLAGS.overlay, labels=FLAGS.labels, draw_regions=FLAGS.draw_regions,
        mark_keyframes=FLAGS.mark_keyframes, show_legend=FLAGS.legend,
        transcode=FLAGS.transcode, gop_given=FLAGS["gop"].present, qscale=FLAGS.qscale)
    print(f"segmenting {len(videos)} video{'s' if len(videos) != 1 else ''} on Apache Beam "
          f"({' '.join(extra) or 'DirectRunner'}) with {checkpoint}, modules "
          f"{cfg.modules_name}", flush=True)
    report = common.run_or_exit(lambda: beam_lib.run(videos, job, extra))
    from taplab_tf.pipeline import segment as segment_lib
    print(segment_lib.format_table(report["videos"], report["failed"]))
    print(f"wrote {len(report['videos'])} of {len(videos)} videos to {output_dir} "
          f"(summary.md, summary.json) in {report['pipeline_seconds']:.1f} s on "
          f"{len(report['worker_pids'])} worker process"
          f"{'es' if len(report['worker_pids']) != 1 else ''}")
    if report["failed"]:
        sys.exit(1)


def run():
    """Console-script entry point."""
    app.run(main, flags_parser=parse)


if __name__ == "__main__":
    run()
