"""The paper's speed and accuracy tables, reproduced side by side in one run.

    python -m experiments.benchmark --model=bl2 --height=1024 --width=2048 --gop=12 \
        --configs=perframe,ffw,ffw_rgc,ffw_rgc_rgfs,ffw_rgfs --output_dir=results/benchmark \
        [--checkpoint=C] [--video=X] [--accuracy] [--sweeps=gop,region,alpha,rgfs,propagation] \
        [--repeats=3] [--nofreeze] [--calibrate_rgfs_fraction=0.1 | --rgfs_fraction=0.1]

Speed runs with random weights unless --checkpoint is given (the output says which). phi's time
does not depend on the weights, but the output step's does: its exact shortcut covers most
cells of a trained model's logits and almost none of random weights' noise, so a propagated
frame is slower with random weights. The speed targets are timed with trained weights, e.g.
--checkpoint=taplab_tf/assets/bl2_paper_synthetic (the paper-size BL2). The speed table times
the configs in turn for --repeats rounds and keeps each config's median round, so that a slow
spell of a shared machine does not land on one config alone. Accuracy (--accuracy) needs
labelled clips: --data_dir (Cityscapes layout) or, by default, a small synthetic val split
generated into the output directory, and a trained checkpoint (default: the shipped BL2).
Writes benchmark.json (every figure and the machine), benchmark.md (tables for the README) and
PNG plots to --output_dir.
"""
import os
import time

from absl import app, flags

from experiments import common
from experiments import flags as flags_lib
from taplab_tf import io_utils

flags_lib.define_taplab_flags()
flags.DEFINE_integer("height", 1024, "Frame height for the speed table.", lower_bound=16)
flags.DEFINE_integer("width", 2048, "Frame width for the speed table.", lower_bound=16)
flags.DEFINE_list("configs", ["perframe", "ffw", "ffw_rgc", "ffw_rgfs", "ffw_rgc_rgfs"],
                  "Module sets to time (also ffw_materialized and ffw_rgc_rgfs_materialized: "
                  "the logits themselves warped and blended every frame, beside the index map "
                  "FFW holds; same labels).")
flags.DEFINE_string("checkpoint", None, "Model directory for speed (default: random weights).")
flags.DEFINE_float("width_multiplier", None, "Width of the random-weight model (default: the "
                   "architecture's own default).")
flags.DEFINE_string("video", None, "Compressed video to time (default: a synthetic clip).")
flags.DEFINE_integer("num_frames", None, "Frames of the default clip (default: two whole GOPs, "
                     "so that I-frames are 1/g of the frames as Eq. 2 assumes).", lower_bound=2)
flags.DEFINE_integer("seed", 0, "Seed of the synthetic clips and the evaluation offsets.")
flags.DEFINE_string("output_dir", None, "Where results go (default <workspace>/results/"
                    "benchmark).")
flags.DEFINE_float("calibrate_rgfs_fraction", None, "Calibrate the fixed thr_rgfs offline on "
                   "the timed clip itself so that this fraction of its P-frames goes to phi (the "
                   "paper's ~10%); default: use --thr_rgfs as given. (--rgfs_fraction instead "
                   "chooses the threshold online, per stream.)", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_bool("accuracy", False, "Also measure video mIoU per config.")
flags.DEFINE_string("data_dir", None, "Labelled Cityscapes-layout clips for --accuracy "
                    "(default: a synthetic val split generated under --output_dir).")
flags.DEFINE_enum("dataset", "synthetic", ["synthetic", "cityscapes"], "Dataset of --data_dir.")
flags.DEFINE_string("accuracy_checkpoint", None, "Trained model for --accuracy (default: "
                    "--checkpoint when given, else the shipped BL2 trained on synthetic data).")
flags.DEFINE_integer("accuracy_clips", 4, "Clips of the generated val split.", lower_bound=1)
flags.DEFINE_integer("accuracy_height", 256, "Height of the generated val split.")
flags.DEFINE_integer("accuracy_width", 512, "Width of the generated val split.")
flags.DEFINE_list("sweeps", [], "Any of gop, region, alpha, rgfs, propagation, pareto "
                  "(every config's mIoU against FPS).")
flags.DEFINE_integer("repeats", 3, "Rounds of the speed table: the configs are timed in turn, "
                     "round after round, and each keeps its median round.", lower_bound=1)
flags.DEFINE_bool("freeze", True, "Run phi as a frozen inference graph (the engine's default); "
                  "--nofreeze times it on the live variables (speed table and sweeps).")
FLAGS = flags.FLAGS


def main(argv):
    common.reject_extra_args(argv)
    cfg = flags_lib.config_from_flags()
    from taplab_tf import reporting
    from taplab_tf.pipeline import benchmark as B
    bad = sorted(set(FLAGS.sweeps) - set(B.SWEEPS))
    if bad:
        raise SystemExit(f"error: --sweeps: unknown {bad}; choose from {list(B.SWEEPS)}")
    if "alpha" in FLAGS.sweeps and not FLAGS.accuracy:
        raise SystemExit("error: --sweeps=alpha measures accuracy only: add --accuracy")
    if FLAGS.calibrate_rgfs_fraction is not None and cfg.rgfs_fraction > 0:
        raise SystemExit("error: --calibrate_rgfs_fraction calibrates the fixed --thr_rgfs, which "
                         "--rgfs_fraction (the online trigger) does not use: give one of them")
    if "rgfs" in FLAGS.sweeps and cfg.rgfs_fraction > 0:
        raise SystemExit("error: --sweeps=rgfs scales the fixed --thr_rgfs, which --rgfs_fraction "
                         "(the online trigger) does not use: drop one of them")
    out = FLAGS.output_dir or flags_lib.workspace_path("results", "benchmark")
    os.makedirs(out, exist_ok=True)
    t_start = time.perf_counter()
    report = {"machine": reporting.machine_info(), "settings": cfg.to_dict()}
    print(f"machine: {report['machine']}")

    # -- speed ---------------------------------------------------------------------------
    model, weights = speed_model(cfg)
    report["weights"] = weights
    video = FLAGS.video
    num_frames = FLAGS.num_frames or 2 * cfg.gop
    if video is None:
        video = os.path.join(out, f"synthetic_{FLAGS.height}x{FLAGS.width}_gop{cfg.gop}"
                             f"{'_mv4' if cfg.encoder_mv4 else ''}.avi")
        print(f"generating a {num_frames}-frame {FLAGS.height}x{FLAGS.width} synthetic "
              f"clip, GOP {cfg.gop} ...", flush=True)
        # rendered in a process of its own: this one times afterwards (make_video_apart)
        common.run_or_exit(lambda: B.make_video_apart(video, FLAGS.height, FLAGS.width,
                                                      num_frames, cfg.gop, seed=FLAGS.seed,
                                                      mv4=cfg.encoder_mv4))
    else:
        common.check_video(video)
    if FLAGS.calibrate_rgfs_fraction is not None:
        from taplab_tf.pipeline import calibrate
        thr = common.run_or_exit(lambda: calibrate.threshold_for_video(
            video, FLAGS.calibrate_rgfs_fraction, accumulate=cfg.rgfs_accumulate,
            mv_block_size=cfg.vector_block_size))
        cfg = cfg.replace(thr_rgfs=thr)
        report["settings"] = cfg.to_dict()
        print(f"thr_rgfs calibrated on the clip for {100 * FLAGS.calibrate_rgfs_fraction:.0f}% "
              f"of P-frames: "
              f"{thr:.4g} (at 1024x2048"
              + (", accumulated trigger)" if cfg.rgfs_accumulate else ")"))
    print(f"speed: {cfg.model} ({weights}) on {video}")
    rows = common.run_or_exit(lambda: B.speed_table(model, cfg.model, video, cfg, FLAGS.configs,
                                                     engine_kwargs={"freeze": FLAGS.freeze},
                                                     repeats=FLAGS.repeats))
    reporting.add_paper_columns(rows, cfg.model)
    report["speed"] = rows
    graph = "frozen" if rows and rows[0]["phi_graph"] == "frozen" else "on live variables"
    md = [reporting.markdown_speed(rows, f"{cfg.model.upper()} speed, {FLAGS.height}x"
                                         f"{FLAGS.width}, GOP {cfg.gop}, "
                                         f"{report['machine']['cpu']} "
                                         f"({report['machine']['cores']} cores), {weights}, phi "
                                         f"{graph}"
                                         f"{reporting.variant_note(cfg)}")]
    print(md[-1])

    # -- accuracy ------------------------------------------------------------------------
    acc_model = clips = None
    if FLAGS.accuracy:
        acc_checkpoint = FLAGS.accuracy_checkpoint or FLAGS.checkpoint  # None: the shipped BL2
        acc_model, meta = common.load_checkpoint(acc_checkpoint)
        clips = accuracy_clips(out)
        acc_rows = common.run_or_exit(lambda: B.accuracy_table(
            acc_model, clips, FLAGS.dataset, cfg.replace(model=meta["model"]), FLAGS.configs,
            seed=FLAGS.seed))
        report["accuracy"] = acc_rows
        md.append(reporting.markdown_accuracy(acc_rows, meta["model"],
                                              f"{meta['model'].upper()} video mIoU on "
                                              f"{len(clips)} {FLAGS.dataset} clips, GOP "
                                              f"{cfg.gop}, weights from "
                                              f"{acc_checkpoint or 'the shipped BL2'}"
                                              f"{reporting.variant_note(cfg)}"))
        print(md[-1])
        reporting.plot_miou_vs_fps(rows, acc_rows, cfg.model,
                                   os.path.join(out, "miou_vs_speedup.png"))
        reporting.plot_per_distance(acc_rows, os.path.join(out, "miou_per_distance.png"))

    # -- sweeps --------------------------------------------------------------------------
    for sweep in FLAGS.sweeps:
        print(f"sweep: {sweep}", flush=True)
        result = common.run_or_exit(lambda: B.run_sweep(
            sweep, model, video, cfg, out, clips=clips, acc_model=acc_model,
            dataset=FLAGS.dataset, seed=FLAGS.seed, engine_kwargs={"freeze": FLAGS.freeze}))
        report.setdefault("sweeps", {})[sweep] = result
        if sweep == "pareto":
            md.append(reporting.markdown_pareto(result, f"Every config, {FLAGS.height}x"
                                                        f"{FLAGS.width}, {report['machine']['cpu']}"
                                                        f" ({report['machine']['cores']} cores)"))
            print(md[-1])
        common.run_or_exit(lambda: reporting.plot_sweep_figures(sweep, result, out))

    report["seconds"] = time.perf_counter() - t_start
    report["run_config"] = common.run_record("benchmark", settings=cfg.to_dict())
    reporting.write_json(report, os.path.join(out, "benchmark.json"))
    io_utils.write_text(os.path.join(out, "benchmark.md"), "\n\n".join(md) + "\n")
    print(f"wrote {out}/benchmark.json, benchmark.md and plots in {report['seconds'] / 60:.1f} "
          "minutes")


def speed_model(cfg):
    if FLAGS.checkpoint:
        model, meta = common.load_checkpoint(FLAGS.checkpoint, cfg.model)
        return model, f"weights from {FLAGS.checkpoint}"
    from taplab_tf import models
    kw = {} if FLAGS.width_multiplier is None else {"width_multiplier": FLAGS.width_multiplier}
    model = common.run_or_exit(lambda: models.build_model(cfg.model, 19, **kw))
    spec = models.model_kwargs(cfg.model, **kw)
    return model, (f"random weights (phi's time does not depend on them; the output step is "
                   f"slower on their noise logits), {spec}")


def accuracy_clips(out):
    from taplab_tf.pipeline import evaluate
    data_dir = FLAGS.data_dir
    if data_dir is None:
        from taplab_tf.data import synthetic
        data_dir = os.path.join(out, "data")
        if not os.path.isdir(os.path.join(data_dir, "leftImg8bit", "val")):
            print(f"generating {FLAGS.accuracy_clips} synthetic val clips "
                  f"({FLAGS.accuracy_height}x{FLAGS.accuracy_width}) in {data_dir} ...",
                  flush=True)
            common.run_or_exit(lambda: synthetic.write_cityscapes_tree(
                data_dir, "val", FLAGS.accuracy_clips, 30, FLAGS.accuracy_height,
                FLAGS.accuracy_width, seed=10_000 + FLAGS.seed))
    return common.run_or_exit(lambda: evaluate.list_clips(FLAGS.dataset, data_dir, "val"))


if __name__ == "__main__":
    app.run(main)
