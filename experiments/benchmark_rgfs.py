"""RGFS across encodings: the online trigger (--rgfs_fraction) against Eq. 4's fixed threshold
calibrated offline, on the same synthetic clips encoded at several qscales, in one run.

    python -m experiments.benchmark_rgfs --rgfs_fraction=0.1 --qscales=2,3,6,10 --base_qscale=3 \
        --num_clips=2 --num_frames=132 --height=512 --width=1024 --output_dir=results/rgfs

Per qscale: no RGFS; the fixed threshold calibrated offline at --base_qscale on these clips; the
threshold recalibrated offline at this qscale (an oracle: it reads every P-frame first); the
online trigger; and --fixed_thresholds (the paper's 3.6e7 and the README's calibration on the
synthetic training split by default: thresholds calibrated on other content). Each with its
fraction of P-frames sent to phi (per clip and pooled) and its mIoU over all frames (the
generator labels every frame), with the shipped BL2 by default.
--rgfs_fraction is the target fraction (default 0.1 here) and --modules defaults to ffw,rgfs
here, so that RGFS alone makes the difference. Writes rgfs_benchmark.json and
rgfs_benchmark.md to --output_dir; the encoded clips go to --work_dir and are removed after.
"""
import math
import os
import shutil
import tempfile
import time

from absl import app, flags

from experiments import common
from experiments import flags as flags_lib

flags_lib.define_taplab_flags()
# This app's own defaults of two shared flags (shown by --help). config_from_flags takes only the
# flags given on the command line, so main lays these over its config where they were not given.
APP_DEFAULTS = {"modules": "ffw,rgfs", "rgfs_fraction": 0.1}
for _name, _value in APP_DEFAULTS.items():
    flags.FLAGS.set_default(_name, _value)
flags.DEFINE_string("checkpoint", None, "Model directory (default: the shipped BL2 trained on "
                    "synthetic streets).")
flags.DEFINE_list("qscales", ["2", "3", "6", "10"], "MPEG-4 quantisers to encode the clips at.")
flags.DEFINE_float("base_qscale", 3.0, "The qscale at which the fixed threshold is calibrated "
                   "(3: the encoder's default); must be one of --qscales.")
flags.DEFINE_list("fixed_thresholds", ["paper=3.6e7", "synthetic512_train=2.513e7"],
                  "NAME=THR fixed thresholds (at 1024x2048) also run at every qscale: the paper's "
                  "Eq. 4 default and the README's calibration on the synthetic512 training split "
                  "(calibrate_rgfs), i.e. thresholds calibrated on other content.")
flags.DEFINE_integer("num_clips", 2, "Synthetic clips.", lower_bound=1)
flags.DEFINE_integer("num_frames", 132, "Frames per clip (132: 11 GOPs of 12).", lower_bound=2)
flags.DEFINE_integer("height", 512, "Frame height.", lower_bound=16)
flags.DEFINE_integer("width", 1024, "Frame width.", lower_bound=16)
flags.DEFINE_integer("seed", 1, "Clip i uses the generator's seed of val clip i at this seed "
                     "(1: the scenes of the README's synthetic512 val split).", lower_bound=0)
flags.DEFINE_string("work_dir", None, "Where the encoded clips go while the run lasts (default "
                    "<workspace>/runs/rgfs_bench).")
flags.DEFINE_string("output_dir", None, "Where the JSON and Markdown go (default "
                    "<workspace>/results/rgfs).")
flags_lib.define_workspace_flags()
FLAGS = flags.FLAGS


def _qscales():
    try:
        qs = [float(q) for q in FLAGS.qscales]
    except ValueError:
        raise SystemExit(f"error: --qscales: numbers in 1..31 expected, got {FLAGS.qscales}")
    if not qs or any(not (math.isfinite(q) and 1 <= q <= 31) for q in qs):
        raise SystemExit(f"error: --qscales: numbers in 1..31 expected, got {FLAGS.qscales}")
    if FLAGS.base_qscale not in qs:
        raise SystemExit(f"error: --base_qscale={FLAGS.base_qscale:g} must be one of --qscales "
                         f"{','.join(f'{q:g}' for q in qs)}")
    return qs


def _fixed_thresholds():
    out = {}
    for item in FLAGS.fixed_thresholds:
        name, _, value = item.partition("=")
        try:
            thr = float(value)
        except ValueError:
            thr = float("nan")
        if not name or not (math.isfinite(thr) and thr >= 0):
            raise SystemExit(f"error: --fixed_thresholds: NAME=THR with THR >= 0 expected, got "
                             f"{item!r}")
        out[name] = thr
    return out


def main(argv):
    common.reject_extra_args(argv)
    given = flags_lib.config_from_flags()
    cfg = common.run_or_exit(lambda: given.replace(**{
        name: value for name, value in APP_DEFAULTS.items() if FLAGS[name].using_default_value}))
    qscales = _qscales()
    extra = _fixed_thresholds()
    if cfg.rgfs_fraction <= 0:
        raise SystemExit("error: --rgfs_fraction: give the target fraction in (0, 1) to compare "
                         "(e.g. 0.1)")
    if not cfg.use_rgfs:
        raise SystemExit(f"error: --modules={FLAGS.modules} has no rgfs to compare")
    from taplab_tf import io_utils, reporting
    from taplab_tf.data import datasets
    from taplab_tf.pipeline import rgfs_benchmark as R
    out = FLAGS.output_dir or flags_lib.workspace_path("results", "rgfs")
    work = FLAGS.work_dir or flags_lib.workspace_path("runs", "rgfs_bench")
    os.makedirs(out, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    model, meta = common.load_checkpoint(FLAGS.checkpoint)
    if meta.get("dataset") != "synthetic":
        raise SystemExit(f"error: --checkpoint holds a {meta.get('dataset')} model; the clips "
                         "here are synthetic streets")
    cfg = cfg.replace(model=meta["model"])
    t_start = time.perf_counter()
    machine = reporting.machine_info()
    print(f"machine: {machine}", flush=True)
    tmp = tempfile.mkdtemp(dir=work, prefix="clips-")
    try:
        clips = common.run_or_exit(lambda: R.make_clips(
            tmp, FLAGS.num_clips, FLAGS.num_frames, FLAGS.height, FLAGS.width, cfg.gop, qscales,
            seed=FLAGS.seed))
        report = common.run_or_exit(lambda: R.compare(
            model, cfg, clips, fraction=cfg.rgfs_fraction, qscales=qscales,
            base_qscale=FLAGS.base_qscale, num_classes=len(datasets.class_names("synthetic")),
            extra_thresholds=extra))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["seconds"] = time.perf_counter() - t_start
    report.update(machine=machine, settings=cfg.to_dict(),
                  checkpoint=FLAGS.checkpoint or "the shipped BL2 (taplab_tf/assets/bl2_synthetic)",
                  size=[FLAGS.height, FLAGS.width], num_frames=FLAGS.num_frames)
    title = (f"RGFS at {100 * cfg.rgfs_fraction:.0f}% of P-frames across qscales: "
             f"{cfg.modules_name.replace('_', '+')}, {FLAGS.num_clips} synthetic clips of "
             f"{FLAGS.num_frames} frames ({FLAGS.num_frames // cfg.gop} GOPs of {cfg.gop}), "
             f"{FLAGS.height}x{FLAGS.width}, {meta['model'].upper()}"
             f"{reporting.variant_note(cfg)}; keyframes % of P-frames / mIoU % over all frames")
    md = reporting.markdown_rgfs(report, title)
    print(md)
    report["run_config"] = common.run_record("benchmark_rgfs", settings=cfg.to_dict())
    reporting.write_json(report, os.path.join(out, "rgfs_benchmark.json"))
    io_utils.write_text(os.path.join(out, "rgfs_benchmark.md"), md + "\n")
    print(f"wrote {out}/rgfs_benchmark.json and rgfs_benchmark.md in "
          f"{report['seconds'] / 60:.1f} minutes")


if __name__ == "__main__":
    app.run(main)
