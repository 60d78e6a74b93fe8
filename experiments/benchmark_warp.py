"""Speed of taplab_tf.ops against the TF ways of doing the same, side by side in one run.

    nice -n 5 python -m experiments.benchmark_warp [--repeats=10 --frame=1024,2048 --bl2 --threads=1]

Feature-flow warp (FFW, Eq. 1) of BL2-sized maps for a 1024x2048 frame with a 64x128 grid of
16x16-block motion vectors (quarter-pel, a few pixels):
  * cpp           : taplab_tf.ops.mv_warp, the compiled kernel (nearest and bilinear);
  * tf-fallback   : taplab_tf.ops.mv_warp(backend='tf'), gathers on a flattened index, tf.function;
  * composite     : the naive TF way: resize the MVs to the feature map (nearest), divide by the
                    stride, meshgrid, subtract, round, clip, gather_nd; tf.function;
  * floor         : tf.add of two maps of the output's size: what producing any new tensor of
                    that size costs here (no warp can be cheaper; composite/floor bounds the
                    attainable ratio on this machine);
  * dense_warp    : tfa.image.dense_image_warp given the dense per-pixel flow (flow precomputed and
                    not timed, which favours it; it is bilinear only, so it is compared with the
                    bilinear kernel).
Output step: taplab_tf.ops.upsample_argmax vs tf.argmax(tf.image.resize(..., 'bilinear')) in a
tf.function, 128x256x19 -> 1024x2048. With --bl2 (default on when taplab_tf.models can build
'bl2'), one BL2 forward pass at 1024x2048 for scale. Times: best and median of --repeats after --warmup
calls, in ms, outputs fetched to NumPy; the entries of one input are called round-robin (so load
from other processes hits them alike) and the ratio uses the best (minimum) time, against the
compiled kernel in the same run.
"""
import numpy as np
import tensorflow as tf
from absl import app, flags

from taplab_tf import ops, timing

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 10, "Timed calls per entry (median reported).")
flags.DEFINE_integer("warmup", 2, "Untimed calls first (tracing, caches).")
flags.DEFINE_list("frame", ["1024", "2048"], "Input frame height,width.")
flags.DEFINE_integer("block", 16, "Motion block size.")
flags.DEFINE_bool("bl2", True, "Also time one BL2 forward pass at the frame size (if available).")
flags.DEFINE_bool("dense_warp", True, "Also time tfa.image.dense_image_warp.")
flags.DEFINE_integer("threads", 0, "Intra-op threads for every entry (0: TF's default, all cores).")

# (h, w, C, stride) of BL2-sized maps at 1024x2048.
CASES = [(128, 256, 19, 8), (256, 512, 19, 4), (128, 256, 128, 8)]


def _time_group(fns, repeats, warmup):
    """{name: (best_ms, median_ms)}; calls interleaved round-robin (taplab_tf.timing) so that
    load from other processes on a shared machine hits every entry alike; outputs fetched."""
    got = timing.round_robin({name: (lambda fn=fn: np.asarray(fn())) for name, fn in fns.items()},
                             repeats, warmup)
    return {name: (1e3 * t.best, 1e3 * t.median) for name, t in got.items()}


@tf.function
def composite_warp(features, motion, stride):
    """The naive TF implementation: dense MV map by resizing, meshgrid, gather_nd (nearest, clamp)."""
    shape = tf.shape(features)
    n, h, w = shape[0], shape[1], shape[2]
    dense = tf.image.resize(motion, [h, w], method="nearest") / tf.cast(stride, tf.float32)
    gy, gx = tf.meshgrid(tf.range(h), tf.range(w), indexing="ij")
    sy = tf.cast(gy, tf.float32)[None] - dense[..., 1]
    sx = tf.cast(gx, tf.float32)[None] - dense[..., 0]
    sy = tf.clip_by_value(tf.cast(tf.floor(sy + 0.5), tf.int32), 0, h - 1)
    sx = tf.clip_by_value(tf.cast(tf.floor(sx + 0.5), tf.int32), 0, w - 1)
    b = tf.broadcast_to(tf.range(n)[:, None, None], tf.shape(sy))
    return tf.gather_nd(features, tf.stack([b, sy, sx], -1))


def dense_flow(motion, h, w, stride, block):
    """Per-feature-pixel flow in tfa's (dy, dx) order, feature pixels, as mv_warp defines it."""
    rows = np.minimum(((np.arange(h) + 0.5) * stride // block).astype(int), motion.shape[1] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * stride // block).astype(int), motion.shape[2] - 1)
    d = motion[:, rows][:, :, cols]
    return np.stack([d[..., 1], d[..., 0]], -1) / stride


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    frame_h, frame_w = (int(v) for v in FLAGS.frame)
    rng = np.random.default_rng(0)
    r, k = FLAGS.repeats, FLAGS.warmup
    print(f"taplab_tf.ops backend: {ops.backend()}; TF {tf.__version__}; intra-op threads: "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default (all cores)'}")
    motion = np.round(rng.normal(0, 6, (1, frame_h // FLAGS.block, frame_w // FLAGS.block, 2))
                      * 4).astype(np.float32) / 4
    fallback = tf.function(lambda f, m, s, i: ops.mv_warp(f, m, s, interpolation=i, backend="tf"),
                           reduce_retracing=True)
    rows = []  # (input, implementation, (best, median) ms, ratio of best to the reference's best)
    for h, w, c, s in CASES:
        if h * s != frame_h:
            continue
        feats = rng.standard_normal((1, h, w, c)).astype(np.float32)
        ft, mt = tf.constant(feats), tf.constant(motion)
        gt = tf.constant(feats[:, ::-1])
        fns = {
            "mv_warp cpp nearest": lambda: ops.mv_warp(ft, mt, s, backend="cpp"),
            "mv_warp cpp bilinear": lambda: ops.mv_warp(ft, mt, s, interpolation="bilinear",
                                                        backend="cpp"),
            "tf-fallback nearest": lambda: fallback(ft, mt, s, "nearest"),
            "tf-fallback bilinear": lambda: fallback(ft, mt, s, "bilinear"),
            "composite (resize+meshgrid+gather_nd) nearest": lambda: composite_warp(ft, mt, s),
            # Not a warp: the cost of producing any new tensor of this size here (one read, one
            # write). No kernel can beat it, so composite / floor bounds the attainable speed-up.
            "floor: tf.add of two maps this size": lambda: tf.add(ft, gt),
        }
        if FLAGS.dense_warp:
            import tensorflow_addons as tfa  # pylint: disable=import-outside-toplevel

            flow = tf.constant(dense_flow(motion, h, w, s, FLAGS.block).astype(np.float32))
            fns["tfa dense_image_warp (bilinear)"] = lambda: tfa.image.dense_image_warp(ft, flow)
        got = _time_group(fns, r, k)
        for what, t in got.items():
            ref = "mv_warp cpp bilinear" if "bilinear" in what else "mv_warp cpp nearest"
            ratio = None if what.startswith(("mv_warp", "floor")) else t[0] / got[ref][0]
            rows.append((f"{h}x{w}x{c} s={s}", what, t, ratio))
    logits = tf.constant(rng.standard_normal((1, 128, 256, 19)).astype(np.float32))
    size = (frame_h, frame_w)
    tf_up = tf.function(lambda x: ops.upsample_argmax(x, size, backend="tf"))
    got = _time_group({"upsample_argmax cpp": lambda: ops.upsample_argmax(logits, size,
                                                                          backend="cpp"),
                       "tf.image.resize + tf.argmax": lambda: tf_up(logits)}, r, k)
    name = f"128x256x19 -> {frame_h}x{frame_w}"
    rows.append((name, "upsample_argmax cpp", got["upsample_argmax cpp"], None))
    rows.append((name, "tf.image.resize + tf.argmax", got["tf.image.resize + tf.argmax"],
                 got["tf.image.resize + tf.argmax"][0] / got["upsample_argmax cpp"][0]))
    warp = next((t for n, what, t, _ in rows
                 if n.startswith("128x256x19") and what == "mv_warp cpp nearest"), None)
    if FLAGS.bl2:
        try:
            from taplab_tf.models import build_model  # pylint: disable=import-outside-toplevel

            model = build_model("bl2", 19)
        except Exception as e:  # pylint: disable=broad-except
            print(f"(BL2 forward skipped: {type(e).__name__}: {e})")
        else:
            image = tf.constant(rng.uniform(0, 255, (1, frame_h, frame_w, 3)).astype(np.float32))
            forward = tf.function(lambda x: model(x, training=False))
            fns = {"BL2 forward (tf.function)": lambda: forward(image)}
            if warp is not None:  # interleave a warp with the forward passes for a fair ratio
                f19 = tf.constant(rng.standard_normal((1, 128, 256, 19)).astype(np.float32))
                fns["mv_warp cpp nearest 128x256x19"] = lambda: ops.mv_warp(f19, motion, 8)
            got = _time_group(fns, max(3, r // 3), 1)
            t = got["BL2 forward (tf.function)"]
            rows.append((f"{frame_h}x{frame_w}x3", "BL2 forward (tf.function)", t, None))
            if warp is not None:
                w_t = got["mv_warp cpp nearest 128x256x19"]
                rows.append(("", "  128x256x19 warp / BL2 forward (%)", None,
                             100.0 * w_t[0] / t[0]))
    print(f"\n{'input':<24} {'implementation':<48} {'best ms':>9} {'median':>9} {'x cpp':>8}")
    for name, what, t, ratio in rows:
        ms = f"{t[0]:9.2f} {t[1]:9.2f}" if t is not None else " " * 19
        rt = f"{ratio:8.2f}" if ratio is not None else ""
        print(f"{name:<24} {what:<48} {ms} {rt}")
    print("\nbest = minimum over --repeats interleaved calls; x cpp = best / best of the compiled "
          "kernel with the same interpolation (upsample: / upsample_argmax cpp).")


if __name__ == "__main__":
    app.run(main)
