"""NumPy reference of TapLab Eq. (1), F_t[p] = F_{t-1}[p - Mv_t[p]], written from the equation
(per-pixel loops, float64), for the op tests of every backend: the C++ and TF ones (test_ops.py) and
the CUDA kernels (tests/gpu/, which run where there is a GPU and no TensorFlow). NumPy only."""
import math

import numpy as np


def _taps(i, j, n, motion, s, block, h, w, interpolation, border):
    """[(y, x, weight)] that feature pixel (i, j) of item n reads; taps outside the map dropped."""
    hb, wb = motion.shape[1:3]
    by = min(max(int(((i + 0.5) * s) // block), 0), hb - 1)
    bx = min(max(int(((j + 0.5) * s) // block), 0), wb - 1)
    dx, dy = float(motion[n, by, bx, 0]), float(motion[n, by, bx, 1])
    qy, qx = i - dy / s, j - dx / s  # F_t[p] = F_{t-1}[p - Mv_t[p]]
    if border == "clamp":
        qy, qx = min(max(qy, 0.0), h - 1.0), min(max(qx, 0.0), w - 1.0)
    if interpolation == "nearest":
        y, x = math.floor(qy + 0.5), math.floor(qx + 0.5)
        return [(y, x, 1.0)] if 0 <= y < h and 0 <= x < w else []
    y0, x0 = math.floor(qy), math.floor(qx)
    ay, ax = qy - y0, qx - x0
    taps = []
    for yy, wy in ((y0, 1 - ay), (y0 + 1, ay)):
        for xx, wx in ((x0, 1 - ax), (x0 + 1, ax)):
            if wy * wx != 0.0 and 0 <= yy < h and 0 <= xx < w:
                taps.append((yy, xx, wy * wx))
    return taps


def _all_taps(shape, motion, s, block, interpolation, border):
    """(n, i, j, y, x, weight) for every output pixel (n, i, j) and each of its taps (y, x)."""
    n_, h, w = shape[:3]
    for n in range(n_):
        for i in range(h):
            for j in range(w):
                for y, x, wt in _taps(i, j, n, motion, s, block, h, w, interpolation, border):
                    yield n, i, j, y, x, wt


def ref_warp(features, motion, s, block=16, interpolation="nearest", border="clamp"):
    f = np.asarray(features, np.float64)
    out = np.zeros_like(f)
    for n, i, j, y, x, wt in _all_taps(f.shape, motion, s, block, interpolation, border):
        out[n, i, j] += wt * f[n, y, x]
    return out


def ref_warp_grad(grad, motion, s, block=16, interpolation="nearest", border="clamp"):
    """d(sum(grad * mv_warp(F)))/dF: the transpose of ref_warp (scatter-add)."""
    g = np.asarray(grad, np.float64)
    out = np.zeros_like(g)
    for n, i, j, y, x, wt in _all_taps(g.shape, motion, s, block, interpolation, border):
        out[n, y, x] += wt * g[n, i, j]
    return out


def grid_shape(frame_h, frame_w, block=16, partial=True):
    rnd = math.ceil if partial else math.floor
    return rnd(frame_h / block), rnd(frame_w / block)


def random_case(rng, n, frame_h, frame_w, s, c, partial=True, scale=12.0, quarter_pel=True):
    h, w = math.ceil(frame_h / s), math.ceil(frame_w / s)
    hb, wb = grid_shape(frame_h, frame_w, partial=partial)
    feats = rng.standard_normal((n, h, w, c)).astype(np.float32)
    motion = (rng.standard_normal((n, hb, wb, 2)) * scale).astype(np.float32)
    if quarter_pel:  # MPEG-4 motion is quarter/half-pel; makes round-half-up ties happen exactly
        motion = np.round(motion * 4) / 4
    return feats, motion.astype(np.float32)
