"""The output step of a propagated frame (logits -> labels at full size), side by side in one run.

    nice -n 5 python -m experiments.benchmark_output_step [--repeats=30 --frame=1024,2048]

For each input, side by side (timed round-robin, taplab_tf.timing), uint8 labels as the engine
writes them, outputs fetched to NumPy:
  * cells : taplab_tf.ops.upsample_argmax, the compiled kernel (method='cells', the default: the
            exact shortcut where a cell's four source argmaxes agree with a safe margin);
  * rows  : the same op, method='rows' (the earlier kernel: every pixel interpolated);
  * tf    : the pure-TF fallback (tf.image.resize bilinear + tf.argmax + cast) in a tf.function.
The three label maps are checked to be identical before timing.

Inputs, at --frame (1024x2048 by default):
  * noise  : random normal logits at stride 8 (what random weights give), C = 11 and 19;
  * smooth : random normal logits blurred 7x7 and scaled x8, stride 8, C = 19;
  * trained: the shipped models' logits on one synthetic street frame
             (taplab_tf.data.synthetic, or --image), each run as the engine runs it: phi at its
             automatic input scale (config.auto_input_scale), logits at the engine's stride of the
             frame, upsampled to that stride's frame (the crop to --frame is not timed):
             CamVid BL2 (taplab_tf/assets/bl2_camvid, C = 11) and the synthetic BL2
             (taplab_tf/assets/bl2_synthetic, C = 19); and at input scale 1 (logits at stride
             4, as the speed tables of experiments.benchmark run phi) that synthetic BL2 and the
             paper-size one (taplab_tf/assets/bl2_paper_synthetic, width 1.0);
  * FFW    : a propagated frame as FFW holds it (pipeline.propagation.IndexedLogits): each
             stride-4 keyframe's logits chained through the stream's own motion vectors over
             --ffw_frames P-frames of a synthetic street clip (ops.mv_warp, nearest). Beside the
             three ways on the warped logits, two more read the keyframe's logits through the
             chain's index map instead: 'indexed' (ops.upsample_argmax_indexed with the
             keyframe's argmax_stats) and 'indexed+key' (also copying the keyframe's labels where
             the index moved a cell whole: what the engine runs on an FFW frame).
"agree %" is the share of output pixels whose four source pixels have one argmax (the shortcut
also needs a margin, so it covers at most that share). Times: best and median of --repeats calls
in ms; "x cells" = best / best of cells; "cpu ms" the median CPU time of the process per call
(a second round-robin pass, timed with time.process_time). The CPU, the intra-op threads and the
load average before and after the timing are printed: compare figures only from quiet runs on
the same machine.
"""
import os
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from experiments import common
from taplab_tf import ops, provenance, timing

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 30, "Timed calls per entry.")
flags.DEFINE_integer("warmup", 3, "Untimed calls first (tracing, caches).")
flags.DEFINE_list("frame", ["1024", "2048"], "Output frame height,width.")
flags.DEFINE_string("image", None, "RGB image (PNG/JPEG) for the trained models' logits, resized "
                                   "to --frame; default: frame 0 of a synthetic street clip.")
flags.DEFINE_bool("trained", True, "Also time the shipped models' logits.")
flags.DEFINE_integer("threads", 0, "Intra-op threads (0: TF's default, all cores).")
flags.DEFINE_integer("ffw_frames", 6, "P-frames the FFW input's keyframe logits are chained "
                     "through (its GOP position).", lower_bound=1, upper_bound=11)


def _frame_size():
    try:
        h, w = (int(v) for v in FLAGS.frame)
    except ValueError:
        raise app.UsageError(f"--frame: expected height,width, got {','.join(FLAGS.frame)}")
    if h < 8 or w < 8:
        raise app.UsageError(f"--frame: height and width must be >= 8, got {h}x{w}")
    return h, w


def _frame(height, width):
    import cv2  # pylint: disable=import-outside-toplevel

    if FLAGS.image:
        from taplab_tf.data import image_io  # pylint: disable=import-outside-toplevel

        image = image_io.read_rgb(FLAGS.image, "--image")
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    from taplab_tf.data.synthetic import iter_clip  # pylint: disable=import-outside-toplevel

    return next(iter(iter_clip(height, width, 1, seed=0))).image


def _trained_logits(directory, image, input_scale=None):
    """(logits [1, h, w, C], stride on the frame): phi as the engine runs it on this frame, at
    its automatic input scale, or at `input_scale` (1.0: the speed tables' setting)."""
    import cv2  # pylint: disable=import-outside-toplevel

    from taplab_tf import config as config_lib  # pylint: disable=import-outside-toplevel
    from taplab_tf.api import load_model  # pylint: disable=import-outside-toplevel
    from taplab_tf.data import labels as labels_lib  # pylint: disable=import-outside-toplevel

    model, meta = load_model(directory)
    s = int(model.output_stride)
    h, w = image.shape[:2]
    scale = input_scale or config_lib.auto_input_scale(labels_lib.phi_frame_height(meta),
                                                       h, s)
    e = max(1, int(round(s / scale)))  # the engine's frame_stride
    if e != s:
        size = (max(1, -(-w * s // e)), max(1, -(-h * s // e)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if e > s else cv2.INTER_LINEAR)
    logits = model(tf.cast(image, tf.float32)[tf.newaxis], training=False)
    return tf.constant(logits.numpy()), e


def _ffw_chain(keyframe_logits, stride, height, width, frames):
    """FFW's frame `frames` P-frames after the keyframe, as the engine holds it
    (pipeline.propagation.IndexedLogits): the keyframe's logits propagated by FFW through the
    motion vectors of a synthetic street clip at height x width, GOP 12."""
    import tempfile  # pylint: disable=import-outside-toplevel

    from taplab_tf import config as config_lib  # pylint: disable=import-outside-toplevel
    from taplab_tf.data import synthetic  # pylint: disable=import-outside-toplevel
    from taplab_tf.pipeline import propagation  # pylint: disable=import-outside-toplevel
    from third_party.compressed_video import open_compressed  # pylint: disable=import-outside-toplevel

    ffw = propagation.build(config_lib.TapLabConfig(modules="ffw"), stride).start()
    logits = keyframe_logits
    with tempfile.TemporaryDirectory(prefix="taplab-output-step-") as tmp:
        path = os.path.join(tmp, "clip.avi")
        synthetic.encode_clip(path, height, width, frames + 1, seed=0, gop=12)
        with open_compressed(path, residual=None, rgb=False) as video:
            for frame in video:
                if frame.pict_type == "P":
                    logits = ffw.propagate(frame, logits, {})
    if not isinstance(logits, propagation.IndexedLogits):
        raise ValueError(f"--frame {height}x{width}: FFW does not hold these logits as an index "
                         f"map (more than 2^20 cells); choose a smaller frame")
    return logits


def _agree_share(logits, size):
    """Share of output pixels whose four source pixels (TF's half-pixel bilinear lookup) have
    one argmax."""
    arg = np.argmax(logits[0], -1)

    def axis(out_size, in_size):
        scale = np.float32(in_size) / np.float32(out_size)
        pos = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
        return (np.maximum(np.floor(pos), 0).astype(int),
                np.minimum(np.ceil(pos), in_size - 1).astype(int))

    (y0, y1), (x0, x1) = axis(size[0], arg.shape[0]), axis(size[1], arg.shape[1])
    a = arg[y0][:, x0]
    same = (a == arg[y0][:, x1]) & (a == arg[y1][:, x0]) & (a == arg[y1][:, x1])
    return float(same.mean())


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    height, width = _frame_size()
    if ops.backend() != "cpp":
        raise app.UsageError("the compiled op library is unavailable (see the warning above); "
                             "build it with: python -m taplab_tf.ops.build")
    rng = np.random.default_rng(0)
    inputs = []  # (name, logits, size)
    for c in (11, 19):
        logits = rng.standard_normal((1, -(-height // 8), -(-width // 8), c)).astype(np.float32)
        inputs.append((f"noise s=8 C={c}", tf.constant(logits), 8))
    blurred = rng.standard_normal((1, -(-height // 8) + 6, -(-width // 8) + 6, 19))
    inputs.append(("smooth s=8 C=19",
                   8.0 * tf.nn.avg_pool2d(blurred.astype(np.float32), 7, 1, "VALID"), 8))
    if FLAGS.trained:
        from taplab_tf.api import (  # pylint: disable=import-outside-toplevel
            PAPER_SIZE_MODEL, REAL_DATA_MODEL, SYNTHETIC_MODEL)

        image = common.run_or_exit(lambda: _frame(height, width))
        for label, directory in (("CamVid BL2", REAL_DATA_MODEL),
                                 ("synthetic BL2", SYNTHETIC_MODEL)):
            logits, stride = _trained_logits(directory, image)
            inputs.append((f"{label} s={stride} C={logits.shape[-1]}", logits, stride))
        # and as the speed tables run phi (experiments.benchmark: input scale 1, stride 4),
        # the shipped width-0.5 BL2 and the paper-size one, each with a propagated FFW frame of
        # that keyframe (the image is the clip's frame 0)
        for label, directory in (("synthetic BL2", SYNTHETIC_MODEL),
                                 ("paper-size BL2", PAPER_SIZE_MODEL)):
            logits, stride = _trained_logits(directory, image, input_scale=1.0)
            inputs.append((f"{label} s={stride} C={logits.shape[-1]}", logits, stride))
            held = common.run_or_exit(lambda logits=logits, stride=stride: _ffw_chain(
                logits, stride, height, width, FLAGS.ffw_frames))
            indexed = (held.source, held.stats[0], held.index,
                       ops.upsample_argmax(logits, (logits.shape[1] * stride,
                                                    logits.shape[2] * stride),
                                           output_dtype=tf.uint8))
            inputs.append((f"{label} FFW +{FLAGS.ffw_frames} s={stride} C={logits.shape[-1]}",
                           held.materialize(), stride, indexed))

    load_before = os.getloadavg()
    rows = []
    for name, logits, stride, *indexed in inputs:
        size = (logits.shape[1] * stride, logits.shape[2] * stride)
        def tf_path(x, size=size):
            return ops.upsample_argmax(x, size, backend="tf", output_dtype=tf.uint8)

        reference = tf.function(tf_path, autograph=False)
        fns = {
            "cells": lambda x=logits, size=size: ops.upsample_argmax(
                x, size, backend="cpp", output_dtype=tf.uint8).numpy(),
            "rows": lambda x=logits, size=size: ops.upsample_argmax(
                x, size, backend="cpp", output_dtype=tf.uint8, method="rows").numpy(),
            "tf": lambda x=logits: reference(x).numpy(),
        }
        if indexed:
            source, stats, index, key = indexed[0]
            fns["indexed"] = lambda size=size: ops.upsample_argmax_indexed(
                source, index, size, stats=stats, output_dtype=tf.uint8).numpy()
            fns["indexed+key"] = lambda size=size: ops.upsample_argmax_indexed(
                source, index, size, stats=stats, key_labels=key, output_dtype=tf.uint8).numpy()
        labels = {what: fn() for what, fn in fns.items()}
        for what in labels:
            if not np.array_equal(labels["cells"], labels[what]):
                raise SystemExit(f"{name}: cells and {what} labels differ at "
                                 f"{int(np.sum(labels['cells'] != labels[what]))} pixels")
        got = timing.round_robin(fns, FLAGS.repeats, FLAGS.warmup)
        cpu = timing.round_robin(fns, FLAGS.repeats, 0, clock=time.process_time)
        share = _agree_share(logits.numpy(), size)
        shape = "x".join(str(d) for d in logits.shape[1:])
        for what, t in got.items():
            rows.append((name, shape, f"{size[0]}x{size[1]}", what, 1e3 * t.best, 1e3 * t.median,
                         t.best / got["cells"].best, 1e3 * cpu[what].median, share))
    load_after = os.getloadavg()

    threads = FLAGS.threads or "default"
    print(f"\nCPU: {provenance.cpu_name()}, {os.cpu_count()} cores, intra-op threads: {threads}; "
          f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'input':<24} {'logits':<12} {'labels':<10} {'impl':<11} {'best ms':>8} "
          f"{'median':>8} {'x cells':>8} {'cpu ms':>8} {'agree %':>8}")
    for name, shape, size, what, best, median, ratio, cpu_ms, share in rows:
        print(f"{name:<24} {shape:<12} {size:<10} {what:<11} {best:8.2f} {median:8.2f} "
              f"{ratio:8.2f} {cpu_ms:8.2f} {100 * share:8.1f}")
    print("\nAll ways give identical labels on every input (checked before timing). "
          "best/median: wall clock over --repeats round-robin calls; x cells = best / best of "
          "cells; cpu ms: median CPU time of the process per call (all its threads; less "
          "sensitive to other load than wall clock, but not what a frame waits for).")


if __name__ == "__main__":
    app.run(main)
