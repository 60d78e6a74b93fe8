"""Parameters, FLOPs and CPU forward time of BL1/BL2/BL3 at 1024x2048 (paper Table 2 context).

    python -m experiments.model_info [--height=1024 --width=2048 --models=bl1,bl2,bl3 \
        --repeats=2 --num_classes=19 --flops_only --crop=512 \
        --checkpoints=taplab_tf/assets/bl2_camvid]

FLOPs come from the tf.compat.v1 profiler on the frozen concrete function at a static input
shape (multiply and add counted separately, i.e. FLOPs = 2 x MACs for convolutions). Time is
the median wall time of `repeats` forward passes after one warm-up, batch 1, on this machine's
CPU, of the model on its variables and of the frozen graph the engine runs
(taplab_tf.models.frozen_forward), the two interleaved; --crop=S adds both times on an SxS input
(the RGC region: 512 at 1024x2048). The ratios BL1:BL2:BL3 (on variables) are printed next to
the paper's FPS on a GTX 1080 Ti (Table 2: BL1 33.2, BL2 29.3, BL3 7.2). Absolute CPU times are
not comparable with the paper's GPU FPS; only the ratios are.
"""
from __future__ import annotations

from absl import app, flags

from taplab_tf.config import MODEL_NAMES

FLAGS = flags.FLAGS
flags.DEFINE_integer("height", 1024, "Input height.", lower_bound=8)
flags.DEFINE_integer("width", 2048, "Input width.", lower_bound=8)
flags.DEFINE_list("models", list(MODEL_NAMES), "Models to report.")
flags.DEFINE_integer("num_classes", 19, "Classes (Cityscapes 19).", lower_bound=1)
flags.DEFINE_integer("repeats", 2, "Timed forward passes per model (after one warm-up).",
                     lower_bound=1)
flags.DEFINE_bool("flops_only", False, "Skip the timing.")
flags.DEFINE_list("checkpoints", [], "Also report these saved models (e.g. the shipped "
                  "taplab_tf/assets/bl2_camvid), beside the paper-size networks.")
flags.DEFINE_integer("crop", None, "Also time an SxS input (the RGC crop: 512 at 1024x2048).",
                     lower_bound=8)

def main(argv):
    from experiments import common
    common.reject_extra_args(argv)
    from taplab_tf import models, reporting
    from taplab_tf.models.profile import count_flops, time_forward
    unknown = sorted(set(FLAGS.models) - set(models.MODEL_NAMES))
    if unknown:
        raise SystemExit(f"error: --models: unknown {unknown}; choose from "
                         f"{list(models.MODEL_NAMES)}")
    h, w = FLAGS.height, FLAGS.width
    rows = []
    import os
    todo = [(name, None) for name in FLAGS.models] + [
        (os.path.basename(os.path.normpath(c)), c) for c in FLAGS.checkpoints]
    for name, ckpt in todo:
        if ckpt is None:
            model = models.build_model(name, FLAGS.num_classes)
        else:
            model, _ = common.load_checkpoint(ckpt)
        params = model.count_params()
        flops = count_flops(model, h, w)
        sec = crop = None
        if not FLAGS.flops_only:
            sec = common.run_or_exit(lambda: time_forward(model, h, w, FLAGS.repeats))
            if FLAGS.crop:
                crop = common.run_or_exit(lambda: time_forward(model, FLAGS.crop, FLAGS.crop,
                                                               FLAGS.repeats))
        rows.append((name, params, flops, sec, crop, int(model.output_stride)))
        line = f"{name}: {params / 1e6:.2f} M params, {flops / 1e9:.1f} GFLOPs at {h}x{w}"
        if sec is not None:
            line += (f", {sec['variables'] * 1000:.0f} ms/frame on CPU "
                     f"({sec['frozen'] * 1000:.0f} ms frozen)")
        if crop is not None:
            line += (f"; {FLAGS.crop}x{FLAGS.crop}: {crop['variables'] * 1000:.0f} ms "
                     f"({crop['frozen'] * 1000:.0f} ms frozen)")
        print(line, flush=True)
    print(f"\n{'model':14} {'stride':>6} {'params(M)':>10} {'GFLOPs':>9} {'CPU ms':>9} "
          f"{'frozen ms':>10} {'CPU rel.speed':>14} {'paper FPS':>10} {'paper rel.':>10}")
    base = dict((r[0], r) for r in rows).get("bl2")
    paper_bl2 = reporting.paper_figures("bl2")[1]
    for name, params, flops, sec, _, stride in rows:
        rel = ("" if sec is None or base is None or base[3] is None
               else f"{base[3]['variables'] / sec['variables']:.2f}")
        paper = reporting.paper_figures(name)[1]  # Table 2, GTX 1080 Ti, 1024x2048
        prel = f"{paper / paper_bl2:.2f}" if paper else ""
        ms = "" if sec is None else f"{sec['variables'] * 1000:.0f}"
        fz = "" if sec is None else f"{sec['frozen'] * 1000:.0f}"
        print(f"{name:14} {stride:>6} {params / 1e6:>10.2f} {flops / 1e9:>9.1f} {ms:>9} {fz:>10} "
              f"{rel:>14} {paper or '':>10} {prel:>10}")
    print("relative speed = BL2 time / model time on variables (1.00 = BL2); paper: FPS / BL2 "
          "FPS, 1080 Ti. CPU times are not comparable with the paper's GPU FPS.")


if __name__ == "__main__":
    app.run(main)
