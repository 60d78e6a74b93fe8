"""Motion vectors at block resolution, dense expansion, motion compensation and residual summaries.

Conventions (shared by the whole package and by consumers such as a motion-vector warp op):
  * A block motion vector is ``(dx, dy) = dst - src`` in pixels (float32, sub-pixel exact: FFmpeg's
    ``-motion_x / motion_scale``): the content of the block at ``dst`` in frame t came from
    ``src = dst - (dx, dy)`` in frame t-1. A scene panning right by 3 px per frame gives dx = +3.
    This is the same sign as a ground-truth flow defined as position_t - position_{t-1}, and as
    coviar's integer ``mv`` (which is ``trunc`` of ours).
  * Grids have ``ceil(H/B) x ceil(W/B)`` cells (B = block size, 16 or 8); cell (i, j) covers pixels
    [iB, iB+B) x [jB, jB+B) (clipped at the frame border).
  * Intra-coded macroblocks carry no vector: their cells are (0, 0) and flagged in the ``intra``
    mask that block_motion returns. Skipped macroblocks are exported by FFmpeg as 16x16 vectors
    with zero motion, so they are (0, 0) and *not* intra.
  * With 8x8 prediction (4MV), block size 8 returns each sub-block's vector; block size 16 returns
    the area-weighted mean of the vectors in the macroblock. Smaller partitions (H.264) are
    area-averaged into the cell that holds them.

Motion compensation: ``motion_compensate(prev, mv)`` predicts frame t from frame t-1:
``pred(y, x) = prev(y - dy, x - dx)`` with the vector of the block holding (y, x), bilinear
interpolation for fractional vectors (exact for half/quarter-pel: OpenCV's 1/32 fixed point), and
coordinates clamped to the frame (edge replication), like the codec's unrestricted MVs.
The residual is ``Res = frame - pred`` (int16), so ``pred + Res == frame`` exactly.
The reader computes it with the C++ kernel of native.py when it can: the same arithmetic as
``MotionCompensator.half_pel`` for integer and half-pel vectors, bit-exact (tested), fused with
the residual and its summaries; the functions here are the reference and the fallback.
"""
from __future__ import annotations

import threading
from typing import Optional, Tuple

import cv2
import numpy as np

_INTER_BITS = 5                      # OpenCV fixed-point remap: 1/32 pixel
_INTER_TAB = 1 << _INTER_BITS
_SPARSE_FRACTION = 0.08              # half-pel cases this rare are interpolated per block


def grid_shape(height: int, width: int, block_size: int = 16) -> Tuple[int, int]:
    """(ceil(H/B), ceil(W/B))."""
    return -(-height // block_size), -(-width // block_size)


def block_motion(vectors: Optional[np.ndarray], height: int, width: int, block_size: int = 16
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """FFmpeg's exported vectors (the structured array of ``MotionVectors.to_ndarray()``) to a block
    grid. Returns (mv float32 [ceil(H/B), ceil(W/B), 2] as (dx, dy) = dst - src, intra bool
    [ceil(H/B), ceil(W/B)]: True where no vector covers the cell). Only past-reference vectors
    (source < 0) are used.
    """
    if block_size not in (8, 16):
        raise ValueError(f"block_size must be 8 or 16, got {block_size}")
    gh, gw = grid_shape(height, width, block_size)
    if vectors is None or len(vectors) == 0:
        return np.zeros((gh, gw, 2), np.float32), np.ones((gh, gw), bool)
    v = vectors
    if (v["source"] > 0).any():
        v = v[v["source"] <= 0]
    w = v["w"].astype(np.int32)
    h = v["h"].astype(np.int32)
    scale = v["motion_scale"].astype(np.float32)
    scale[scale == 0] = 1
    dx = -v["motion_x"].astype(np.float32) / scale
    dy = -v["motion_y"].astype(np.float32) / scale
    dst_x = v["dst_x"].astype(np.int32)
    dst_y = v["dst_y"].astype(np.int32)

    if block_size == 16 and (w == 16).all() and (h == 16).all():
        # Fast path (MPEG-4 without 4MV): one vector per macroblock, dst is its centre.
        r = dst_y >> 4
        c = dst_x >> 4
        ok = (r >= 0) & (r < gh) & (c >= 0) & (c < gw)
        if not ok.all():
            r, c, dx, dy = r[ok], c[ok], dx[ok], dy[ok]
        mv = np.zeros((gh, gw, 2), np.float32)
        mv[r, c, 0] = dx
        mv[r, c, 1] = dy
        intra = np.ones((gh, gw), bool)
        intra[r, c] = False
        return mv, intra

    # General path: rasterise every vector onto the 8x8 grid of the macroblock-padded frame with
    # area weights, then average (and pool 2x2 for block size 16).
    mbh, mbw = grid_shape(height, width, 16)
    g8h, g8w = 2 * mbh, 2 * mbw
    left = (dst_x - w // 2) >> 3
    top = (dst_y - h // 2) >> 3
    nx = np.maximum(w >> 3, 1)
    ny = np.maximum(h >> 3, 1)
    area = (np.minimum(w, 8) * np.minimum(h, 8)).astype(np.float64)
    idx_l, wt_l, dx_l, dy_l = [], [], [], []
    for oy in range(int(ny.max())):
        for ox in range(int(nx.max())):
            sel = (nx > ox) & (ny > oy)
            if not sel.any():
                continue
            r = top[sel] + oy
            c = left[sel] + ox
            ok = (r >= 0) & (r < g8h) & (c >= 0) & (c < g8w)
            idx_l.append((r * g8w + c)[ok])
            wt_l.append(area[sel][ok])
            dx_l.append(dx[sel][ok])
            dy_l.append(dy[sel][ok])
    idx = np.concatenate(idx_l)
    wt = np.concatenate(wt_l)
    n = g8h * g8w
    cnt = np.bincount(idx, weights=wt, minlength=n).reshape(g8h, g8w)
    sx = np.bincount(idx, weights=wt * np.concatenate(dx_l), minlength=n).reshape(g8h, g8w)
    sy = np.bincount(idx, weights=wt * np.concatenate(dy_l), minlength=n).reshape(g8h, g8w)
    if block_size == 16:
        cnt = cnt.reshape(mbh, 2, mbw, 2).sum(axis=(1, 3))
        sx = sx.reshape(mbh, 2, mbw, 2).sum(axis=(1, 3))
        sy = sy.reshape(mbh, 2, mbw, 2).sum(axis=(1, 3))
    intra = cnt <= 0
    safe = np.where(intra, 1.0, cnt)
    mv = np.stack([sx / safe, sy / safe], axis=-1).astype(np.float32)
    mv[intra] = 0
    return mv[:gh, :gw], intra[:gh, :gw]


def expand_motion(motion_vectors: np.ndarray, height: int, width: int,
                  block_size: Optional[int] = None) -> np.ndarray:
    """Block motion [h, w, 2] -> dense per-pixel float32 [height, width, 2] (each pixel gets the
    vector of its block). ``block_size`` defaults to ceil-matching 16, else 8."""
    mv = np.asarray(motion_vectors)
    bs = block_size or _infer_block_size(mv.shape[:2], height, width)
    dense = np.repeat(np.repeat(mv, bs, axis=0), bs, axis=1)
    return np.ascontiguousarray(dense[:height, :width])


def _infer_block_size(grid, height, width) -> int:
    for bs in (16, 8):
        if tuple(grid) == grid_shape(height, width, bs):
            return bs
    raise ValueError(f"motion grid {tuple(grid)} matches neither 16 nor 8 pixel blocks of a "
                     f"{height}x{width} frame")


class MotionCompensator:
    """Block motion compensation for one frame size and block size; holds buffers reused from
    frame to frame (about 6 frames' worth at the padded size), so keep one per stream.

    ``mc(prev, mv)`` dispatches: all-zero vectors -> copy; integer and half-pel vectors ->
    ``half_pel`` (block gathers from interpolated planes); anything finer (H.264 quarter-pel) ->
    ``remap`` (OpenCV bilinear remap with fixed-point maps). Both give identical results where
    both apply (tested)."""

    def __init__(self, height: int, width: int, block_size: int = 16):
        self.height, self.width, self.block_size = height, width, block_size
        gh, gw = grid_shape(height, width, block_size)
        self.grid = (gh, gw)
        self._ph, self._pw = gh * block_size, gw * block_size
        self._base_grid = None
        self._planes = None          # half-pel planes, reused between frames (half_pel)
        self._sum16 = None
        self._lock = threading.Lock()

    @property
    def _base(self):
        if self._base_grid is None:  # only the remap path needs it
            ys, xs = np.mgrid[0:self._ph, 0:self._pw]
            self._base_grid = np.ascontiguousarray(np.stack([xs, ys], axis=-1).astype(np.int16))
        return self._base_grid

    def maps(self, mv: np.ndarray):
        """Fixed-point OpenCV remap maps (int16 xy, uint16 fraction index) or (map, None) when all
        vectors are integer."""
        neg = -np.asarray(mv, np.float32)                        # src - dst
        fl = np.floor(neg)
        frac = np.rint((neg - fl) * _INTER_TAB).astype(np.int32)
        carry = frac >= _INTER_TAB                                   # rounding up to a full pixel
        fl = fl + carry
        frac[carry] = 0
        offs = fl.astype(np.int16)
        size = (self._pw, self._ph)
        off_full = cv2.resize(offs, size, interpolation=cv2.INTER_NEAREST)
        map1 = cv2.add(self._base, off_full)
        if not frac.any():
            return map1[:self.height, :self.width], None
        fidx = (frac[..., 1] * _INTER_TAB + frac[..., 0]).astype(np.uint16)
        map2 = cv2.resize(fidx, size, interpolation=cv2.INTER_NEAREST)
        return map1[:self.height, :self.width], map2[:self.height, :self.width]

    def __call__(self, prev: np.ndarray, mv: np.ndarray) -> np.ndarray:
        if mv.shape[:2] != self.grid:
            raise ValueError(f"motion grid {mv.shape[:2]} does not match {self.grid} for "
                             f"{self.height}x{self.width} frames and {self.block_size}px blocks")
        if prev.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame {prev.shape[:2]} does not match {self.height}x{self.width}")
        if not mv.any():
            return prev.copy()
        twice = mv * 2
        if prev.ndim == 3 and prev.shape[2] == 3 and (twice == np.round(twice)).all():
            return self.half_pel(prev, mv)
        return self.remap(prev, mv)

    def remap(self, prev: np.ndarray, mv: np.ndarray) -> np.ndarray:
        """Any fractional vectors: OpenCV fixed-point remap (bilinear, 1/32 pel, edge clamp)."""
        map1, map2 = self.maps(mv)
        if map2 is None:
            return cv2.remap(prev, map1, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        return cv2.remap(prev, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def half_pel(self, prev: np.ndarray, mv: np.ndarray) -> np.ndarray:
        """Integer and half-pel vectors (all of MPEG-4 Simple Profile) by block gathers.

        Bit-exact with ``remap`` (OpenCV's bilinear weights at half-pel are 1/2 and 1/4 with
        round-half-up: (a+b+1)>>1 and (a+b+c+d+2)>>2). As a codec does, the half-pel planes of
        the (edge-padded) previous frame are interpolated once per frame (horizontal, vertical,
        diagonal; only those some block needs), into buffers reused from frame to frame; then
        every block is one strided gather from its plane, and one transpose restores image
        layout. No per-pixel coordinate maps, no Python loop over blocks."""
        with self._lock:
            return self._half_pel(prev, mv)

    def _half_pel(self, prev, mv):
        h, w = self.height, self.width
        bs = self.block_size
        gh, gw = self.grid
        neg2 = np.rint(-2.0 * mv).astype(np.int32)          # 2 * (src - dst), integers
        ix = neg2 >> 1                                       # floor of src - dst
        frac = neg2 & 1                                      # half-pel flags
        case = (frac[..., 0] + 2 * frac[..., 1]).ravel()     # plane: 0 full, 1 x, 2 y, 3 both
        pad = max(32, int(np.abs(ix).max()) + 2)
        hp, wp = self._ph + 2 * pad, self._pw + 2 * pad
        if self._planes is None or self._planes.shape[1:3] != (hp, wp):
            self._planes = np.empty((4, hp, wp, 3), np.uint8)
            self._sum16 = np.empty((2, hp * wp * 3), np.uint16)
        planes = self._planes
        cv2.copyMakeBorder(prev, pad, pad + self._ph - h, pad, pad + self._pw - w,
                           cv2.BORDER_REPLICATE, dst=planes[0])
        flat = planes.reshape(4, -1)
        n_all, row = flat.shape[1], wp * 3
        # Neighbours are flat offsets (+3: next pixel, +row: next line) in one contiguous buffer:
        # a single OpenCV pass per plane. Wrap-around only touches the last column/row of the
        # padding, which no block reads (pad >= reach + 2).
        counts = np.bincount(case, minlength=4)
        # a case used by few blocks is interpolated per block after the gather (below) rather
        # than as a whole plane
        sparse = [k for k in (1, 2, 3) if 0 < counts[k] <= _SPARSE_FRACTION * case.size]
        need = {k for k in (1, 2, 3) if counts[k] and k not in sparse}
        if 1 in need:
            cv2.addWeighted(flat[0, :-3], 0.5, flat[0, 3:], 0.5, 0.25, dst=flat[1, :-3])
        if 2 in need:
            cv2.addWeighted(flat[0, :-row], 0.5, flat[0, row:], 0.5, 0.25, dst=flat[2, :-row])
        if 3 in need:
            hsum, vsum = self._sum16[0], self._sum16[1]
            np.add(flat[0, :-3], flat[0, 3:], out=hsum[:n_all - 3], dtype=np.uint16)
            m = n_all - 3 - row
            cv2.add(hsum[:m], hsum[row:row + m], dst=vsum[:m])
            # floor((s + 2) / 4) == cvRound(s / 4 + 1/8) exactly
            cv2.convertScaleAbs(vsum[:m], alpha=0.25, beta=0.125, dst=flat[3, :m])
        rs, ps = planes.strides[1], planes.strides[0]
        win = np.lib.stride_tricks.as_strided(
            planes, shape=(4, hp - bs, wp - bs, bs, 3 * bs), strides=(ps, rs, 3, rs, 1),
            writeable=False)
        by = ((np.arange(gh, dtype=np.int32) * bs)[:, None] + pad + ix[..., 1]).ravel()
        bx = ((np.arange(gw, dtype=np.int32) * bs)[None, :] + pad + ix[..., 0]).ravel()
        if sparse:
            plane = case.copy()
            sel = {k: np.flatnonzero(case == k) for k in sparse}
            for k in sparse:
                plane[sel[k]] = 0
        else:
            plane = case
        out = win[plane, by, bx]                             # [gh*gw, bs, 3 bs]
        for k in sparse:
            y, x = by[sel[k]], bx[sel[k]]
            t = win[0, y, x].astype(np.uint16)
            if k == 1:
                t += win[0, y, x + 1]
                t += 1
                t >>= 1
            elif k == 2:
                t += win[0, y + 1, x]
                t += 1
                t >>= 1
            else:
                t += win[0, y, x + 1]
                t += win[0, y + 1, x]
                t += win[0, y + 1, x + 1]
                t += 2
                t >>= 2
            out[sel[k]] = t
        img = out.reshape(gh, gw, bs, bs, 3).transpose(0, 2, 1, 3, 4).reshape(
            gh * bs, gw * bs, 3)
        if img.shape[0] != h or img.shape[1] != w:
            return np.ascontiguousarray(img[:h, :w])
        return img


_MC_CACHE: dict = {}


def motion_compensate(prev: np.ndarray, motion_vectors: np.ndarray,
                      block_size: Optional[int] = None) -> np.ndarray:
    """Predict frame t from decoded frame t-1 (uint8 HxWx3) and frame t's block vectors.

    Same arithmetic as the reader's residual: ``motion_compensate(prev, f.motion_vectors) +
    f.residual == f.image`` exactly.
    """
    h, w = prev.shape[:2]
    bs = block_size or _infer_block_size(motion_vectors.shape[:2], h, w)
    key = (h, w, bs)
    mc = _MC_CACHE.get(key)
    if mc is None:
        if len(_MC_CACHE) >= 2:  # each holds ~12x a frame of buffers
            _MC_CACHE.clear()
        mc = _MC_CACHE[key] = MotionCompensator(h, w, bs)
    return mc(np.ascontiguousarray(prev), np.asarray(motion_vectors, np.float32))


def channel_sum_abs(absdiff: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] |Res| -> uint16 [H, W] sum over channels (exact)."""
    a, b, c = cv2.split(absdiff)
    s = cv2.add(a, b, dtype=cv2.CV_16U)
    return cv2.add(s, c.astype(np.uint16), dtype=cv2.CV_16U)


def channel_sum_saturated(absdiff: np.ndarray) -> np.ndarray:
    """uint8 [H, W] min(255, sum over channels of |Res|): one OpenCV pass. Exact for every
    threshold test ``sum > t`` with t < 255 (block_counts_from_sum knows)."""
    a, b, c = cv2.split(absdiff)
    return cv2.add(cv2.add(a, b), c)  # saturating: min(255, min(255, a + b) + c)


def sum_limit(thr: float) -> int:
    """The integer channel-sum limit of the test mean-over-channels |Res| > thr: the channel sum
    is an integer, so sum > 3 thr  <=>  sum >= floor(3 thr) + 1."""
    return int(np.floor(3.0 * float(thr))) + 1


def block_counts_from_sum(chan_sum: np.ndarray, thr: float, block_size: int = 16) -> np.ndarray:
    """Counts per block of pixels whose mean-over-channels |Res| > thr (i.e. channel sum > 3 thr).
    Returns int32 [ceil(H/B), ceil(W/B)]."""
    h, w = chan_sum.shape
    gh, gw = grid_shape(h, w, block_size)
    lim = sum_limit(thr)
    if chan_sum.dtype == np.uint8 and lim > 255:
        raise ValueError("saturated channel sums only answer thresholds below 85")
    if lim <= 0:
        mask = np.ones((h, w), np.uint8)
    elif lim > 765:
        return np.zeros((gh, gw), np.int32)
    else:
        mask = (chan_sum >= lim).view(np.uint8)
    ii = cv2.integral(mask, sdepth=cv2.CV_32S)
    ys = np.minimum(np.arange(gh + 1) * block_size, h)
    xs = np.minimum(np.arange(gw + 1) * block_size, w)
    s = ii[ys][:, xs]
    return (s[1:, 1:] - s[:-1, 1:] - s[1:, :-1] + s[:-1, :-1]).astype(np.int32)


def accumulate_motion(prev_acc: Optional[np.ndarray], dense_mv: np.ndarray) -> np.ndarray:
    """coviar-style accumulation back to the GOP's I-frame, per pixel.

    ``acc_t(p) = mv_t(p) + acc_{t-1}(p - mv_t(p))`` (source position rounded to the nearest pixel
    and clamped), so ``p - acc_t(p)`` is where pixel p of frame t came from in the I-frame.
    ``prev_acc`` is None right after the I-frame. Arrays are float32 [H, W, 2], (dx, dy)."""
    if prev_acc is None:
        return dense_mv.astype(np.float32, copy=True)
    h, w = dense_mv.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    sx = np.clip(np.rint(xs - dense_mv[..., 0]), 0, w - 1).astype(np.intp)
    sy = np.clip(np.rint(ys - dense_mv[..., 1]), 0, h - 1).astype(np.intp)
    return (dense_mv + prev_acc[sy, sx]).astype(np.float32)
