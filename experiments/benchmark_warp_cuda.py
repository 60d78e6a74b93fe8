"""GPU timings of the mv_warp CUDA kernels (taplab_tf.ops.cuda), side by side in one run.

    python -m experiments.benchmark_warp_cuda [--repeats=200]

For a GPU machine without TensorFlow (what this project's lent GPU machines have): the kernels
run through their C API on CuPy arrays. For comparison, on the same card and in the same process,
the GPU counterparts of the CPU table's TF paths, written in PyTorch (present on those machines):
  * composite  : the naive path: block motion expanded to a dense per-pixel map every call
                 (index arithmetic, round, clamp) and one gather, nearest, clamp;
  * grid_sample: torch.nn.functional.grid_sample, bilinear, on an NCHW copy of the features made
                 outside the timing (favours it), given a sampling grid built from the block
                 motion every call; the counterpart of tfa.image.dense_image_warp.
Shapes: BL2-sized maps of a 1024x2048 frame (128x256x19 stride 8, 256x512x19 stride 4,
128x256x128 stride 8), float32 and float16. Times: CUDA events around --repeats back-to-back
calls after --warmup, divided by --repeats (throughput per call, launch overhead included: host
overhead shows where it exceeds the GPU work), in microseconds; the ratios are of the same run.
The motion is validated (finite) once, outside the timing, as the TF op does on its host copy.
"""
import sys

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 200, "Timed calls per entry.")
flags.DEFINE_integer("warmup", 20, "Untimed calls first.")
flags.DEFINE_string("json_out", "", "Also write the results here.")

CASES = [(128, 256, 19, 8), (256, 512, 19, 4), (128, 256, 128, 8)]


def _per_call_us(fn, repeats, warmup):
    import cupy as cp
    import torch
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    cp.cuda.Device().synchronize()
    best = float("inf")
    for _ in range(3):  # best of three batches
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        for _ in range(repeats):
            fn()
        stop.record()
        stop.synchronize()
        best = min(best, cp.cuda.get_elapsed_time(start, stop) * 1e3 / repeats)
    return best


def main(argv):
    del argv
    import cupy as cp
    import torch
    import torch.nn.functional as F

    from taplab_tf.ops.cuda import MvWarpCuda

    warp = MvWarpCuda()
    props = cp.cuda.runtime.getDeviceProperties(0)
    card = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    print(f"device: {card}; torch {torch.__version__}, cupy {cp.__version__}", flush=True)
    rng = np.random.default_rng(0)
    frame_h, frame_w, block = 1024, 2048, 16
    hb, wb = frame_h // block, frame_w // block
    rows = []
    for dtype in ("float32", "float16"):
        for h, w, c, s in CASES:
            feats = rng.standard_normal((1, h, w, c)).astype(dtype)
            motion = (np.round(rng.standard_normal((1, hb, wb, 2)) * 16) / 4).astype(np.float32)
            x, mv = cp.asarray(feats), cp.asarray(motion)
            out = cp.empty_like(x)
            tx = torch.as_tensor(x, device="cuda")
            tmv = torch.as_tensor(mv, device="cuda")
            tnchw = tx.permute(0, 3, 1, 2).contiguous()
            ii = torch.arange(h, device="cuda")
            jj = torch.arange(w, device="cuda")

            def composite():
                by = ((2 * ii + 1) * s // (2 * block)).clamp(0, hb - 1)
                bx = ((2 * jj + 1) * s // (2 * block)).clamp(0, wb - 1)
                d = tmv[0][by][:, bx]                                  # dense [h, w, 2]
                y = torch.floor(ii[:, None] - d[..., 1] / s + 0.5).clamp(0, h - 1).long()
                xx = torch.floor(jj[None, :] - d[..., 0] / s + 0.5).clamp(0, w - 1).long()
                return tx.reshape(-1, c)[(y * w + xx).reshape(-1)].reshape(1, h, w, c)

            def grid_sample():
                by = ((2 * ii + 1) * s // (2 * block)).clamp(0, hb - 1)
                bx = ((2 * jj + 1) * s // (2 * block)).clamp(0, wb - 1)
                d = tmv[0][by][:, bx]
                gx = (jj[None, :] - d[..., 0] / s) * (2.0 / (w - 1)) - 1
                gy = (ii[:, None] - d[..., 1] / s) * (2.0 / (h - 1)) - 1
                grid = torch.stack([gx, gy], -1)[None].to(tnchw.dtype)
                return F.grid_sample(tnchw, grid, mode="bilinear", padding_mode="border",
                                     align_corners=True)

            # Same results where comparable (nearest/clamp): our kernel vs the composite path.
            ours = cp.asnumpy(warp(x, mv, s, block, "nearest", "clamp", out=out))
            ref = composite().cpu().numpy()
            assert np.array_equal(ours, ref), "CUDA kernel and composite path disagree"
            t = {
                "cuda_nearest": _per_call_us(lambda: warp(x, mv, s, block, "nearest", out=out,
                                                          validate=False),
                                           FLAGS.repeats, FLAGS.warmup),
                "cuda_bilinear": _per_call_us(lambda: warp(x, mv, s, block, "bilinear", out=out,
                                                           validate=False),
                                            FLAGS.repeats, FLAGS.warmup),
                "composite": _per_call_us(composite, FLAGS.repeats, FLAGS.warmup),
                "grid_sample": _per_call_us(grid_sample, FLAGS.repeats, FLAGS.warmup),
            }
            row = dict(dtype=dtype, shape=f"{h}x{w}x{c}", stride=s, **t,
                       composite_over_nearest=t["composite"] / t["cuda_nearest"],
                       grid_sample_over_bilinear=t["grid_sample"] / t["cuda_bilinear"])
            rows.append(row)
            print(f"{dtype:8s} {h}x{w}x{c:<4d} s={s}: nearest {t['cuda_nearest']:7.1f} us, "
                  f"bilinear {t['cuda_bilinear']:7.1f} us | composite {t['composite']:7.1f} us "
                  f"({row['composite_over_nearest']:.1f}x), grid_sample {t['grid_sample']:7.1f} "
                  f"us ({row['grid_sample_over_bilinear']:.1f}x)", flush=True)
    if FLAGS.json_out:
        from taplab_tf import io_utils
        io_utils.write_json(FLAGS.json_out, {"device": card, "rows": rows}, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
