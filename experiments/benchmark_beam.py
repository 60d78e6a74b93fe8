"""Throughput of the Beam pipeline on N workers against segment's directory mode (one video after
another), measured in one run on the same videos:

    python -m experiments.benchmark_beam [--num_videos=4 --num_frames=120 --height=360
                                          --width=480 --workers=2 --checkpoint=...]

It generates the synthetic clips (taplab_tf.data.synthetic, MPEG-4 Part 2 at --gop), then times
two end-to-end runs of the apps as a user runs them, each in its own process (interpreter start,
TensorFlow, the model and all videos counted):
  sequential: python -m experiments.segment --video=DIR --output_dir=...
  beam:       python -m experiments.segment_beam --videos=DIR --output_dir=... \\
                  --direct_num_workers=N --direct_running_mode=multi_processing
and prints both times, the frames per second of each, their ratio (beam / sequential), the CPU's
name, its core count and the load average before and after (whether the machine was quiet).
Both runs must segment every video (exit 0) and write the same number of label PNGs.
"""
import json
import os
import shutil
import subprocess
import sys
import time

from absl import app, flags

from experiments import common
from experiments import flags as flags_lib
from taplab_tf import provenance

flags_lib.define_workspace_flags()
flags.DEFINE_integer("num_videos", 4, "Synthetic clips to segment.", lower_bound=1)
flags.DEFINE_integer("num_frames", 120, "Frames of each clip.", lower_bound=1)
flags.DEFINE_integer("height", 360, "Height of the clips.", lower_bound=16)
flags.DEFINE_integer("width", 480, "Width of the clips.", lower_bound=16)
flags.DEFINE_integer("gop", 12, "GOP of the clips and of the engine.", lower_bound=1)
flags.DEFINE_integer("seed", 1, "Seed of the first clip (the others follow).")
flags.DEFINE_integer("workers", 2, "Beam DirectRunner worker processes.", lower_bound=1)
flags.DEFINE_string("checkpoint", None, "Model directory or SavedModel (default: the shipped BL2 "
                    "trained on CamVid).")
flags.DEFINE_string("output_dir", None, "Work folder (default <workspace>/results/"
                    "benchmark_beam): the clips, both runs' outputs and benchmark.json.")
FLAGS = flags.FLAGS


def _timed(args, cwd):
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True,
                       text=True)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise SystemExit(f"error: {args[0]} exited {p.returncode}: {tail[0]}")
    return seconds


def _labels(folder):
    return sum(len(os.listdir(os.path.join(folder, d))) for d in os.listdir(folder)
               if d.endswith("_labels"))


def main(argv):
    common.reject_extra_args(argv)
    root = os.path.abspath(FLAGS.output_dir or flags_lib.workspace_path("results",
                                                                        "benchmark_beam"))
    checkpoint = os.path.abspath(FLAGS.checkpoint or common.REAL_DATA_CHECKPOINT)
    videos = os.path.join(root, "videos")
    seq_out, beam_out = os.path.join(root, "sequential"), os.path.join(root, "beam")
    for d in (videos, seq_out, beam_out):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(videos)
    from taplab_tf.data import synthetic
    for k in range(FLAGS.num_videos):
        common.run_or_exit(lambda k=k: synthetic.encode_clip(
            os.path.join(videos, f"clip{k:02d}.avi"), FLAGS.height, FLAGS.width,
            FLAGS.num_frames, FLAGS.seed + k, gop=FLAGS.gop))
    frames = FLAGS.num_videos * FLAGS.num_frames
    cwd = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    common_args = [f"--checkpoint={checkpoint}", f"--gop={FLAGS.gop}", "--labels_dir=yes"]
    load_before = os.getloadavg()
    print(f"{FLAGS.num_videos} clips of {FLAGS.num_frames} frames at {FLAGS.height}x"
          f"{FLAGS.width}, GOP {FLAGS.gop}, model {checkpoint}", flush=True)
    seq = _timed(["experiments.segment", f"--video={videos}", f"--output_dir={seq_out}",
                  *common_args], cwd)
    print(f"sequential (segment's directory mode): {seq:.1f} s", flush=True)
    beam = _timed(["experiments.segment_beam", f"--videos={videos}", f"--output_dir={beam_out}",
                   "--labels", *common_args[:-1], f"--direct_num_workers={FLAGS.workers}",
                   "--direct_running_mode=multi_processing"], cwd)
    load_after = os.getloadavg()
    if _labels(seq_out) != frames or _labels(beam_out) != frames:
        raise SystemExit(f"error: expected {frames} label PNGs from each run, got "
                         f"{_labels(seq_out)} (sequential) and {_labels(beam_out)} (beam)")
    with open(os.path.join(beam_out, "summary.json")) as f:
        beam_report = json.load(f)
    with open(os.path.join(seq_out, "summary.json")) as f:
        seq_report = json.load(f)
    pids = beam_report["worker_pids"]
    result = {
        "cpu": provenance.cpu_name(), "cores": os.cpu_count(), "load_before": load_before,
        "load_after": load_after, "videos": FLAGS.num_videos, "frames": frames,
        "size": [FLAGS.height, FLAGS.width], "gop": FLAGS.gop, "workers": FLAGS.workers,
        "worker_processes_used": len(pids), "checkpoint": checkpoint,
        "sequential_seconds": seq, "beam_seconds": beam, "ratio": seq / beam,
        # segment_file's wall clock summed over the videos (the rest is start-up: interpreter,
        # TensorFlow, the model, and for Beam its workers)
        "sequential_video_seconds": seq_report["wall_seconds"],
        "beam_video_seconds": beam_report["wall_seconds"],
    }
    print(f"beam ({FLAGS.workers} workers, DirectRunner multi_processing; {len(pids)} worker "
          f"processes took videos): {beam:.1f} s")
    print(f"segment_file's wall clock summed over the videos: sequential "
          f"{seq_report['wall_seconds']:.1f} s, beam {beam_report['wall_seconds']:.1f} s (the "
          f"beam workers' videos overlap in time)")
    print(f"throughput: sequential {frames / seq:.2f} FPS, beam {frames / beam:.2f} FPS, "
          f"ratio beam/sequential {seq / beam:.2f}x")
    print(f"CPU: {result['cpu']}, {result['cores']} cores; load average (1, 5, 15 min) before "
          f"{', '.join(f'{v:.2f}' for v in load_before)}, after "
          f"{', '.join(f'{v:.2f}' for v in load_after)}")
    from taplab_tf import io_utils
    result["run_config"] = common.run_record("benchmark_beam")
    io_utils.write_json(os.path.join(root, "benchmark.json"), result, indent=2, default=str)
    print(f"wrote {os.path.join(root, 'benchmark.json')}")


if __name__ == "__main__":
    app.run(main)
