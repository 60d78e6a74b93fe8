"""A P-frame's residual (Res_t = frame_t - MC(frame_{t-1}, Mv_t), RGB, see reader.py) and the pass
that computes it, on the native kernel (native.py) or with numpy/OpenCV.

    computer = ResidualComputer(height, width, block_size, ResidualMode.SUMMARY)  # once a stream
    res = computer(cur_rgb, prev_rgb, motion_vectors)                              # once a P-frame
    res.map            # int16 [H, W, 3] (ResidualMode.FULL), else None
    res.total          # float: sum over pixels and channels of |Res| (exact)
    res.abs()          # uint8 [H, W, 3] |Res|, on first use
    res.block_counts(thr, block_size=16)   # int32 per block: pixels whose mean |Res| > thr
    res.backend        # 'native' or 'numpy': which pass computed it

CompressedFrame keeps one Residual (or None) and delegates ``residual``, ``residual_sum``,
``abs_residual()`` and ``residual_block_counts()`` to it. What a Residual holds besides its
summaries depends on the pass: the native pass keeps the per-pixel channel sums of |Res| (uint16)
and, in summary mode, the two frames and the vectors (|Res| is compensated again on demand); the
numpy pass keeps the frame and its prediction. Either drops the frames once |Res| is computed.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .enums import ResidualMode
from .errors import ReaderError
from .motion import (MotionCompensator, block_counts_from_sum, channel_sum_abs,
                     channel_sum_saturated, motion_compensate, sum_limit)

NO_RESIDUAL = "the residual needs the reader opened with residual='full' or 'summary'"


def _native():
    from . import native  # not at package import: `python -m ...native` runs the module fresh
    return native


class Residual:
    """One P-frame's Res and its summaries (module docstring)."""

    __slots__ = ("map", "total", "backend", "_mv", "_block_size", "_cur", "_pred", "_prev",
                 "_chan_sum", "_chan_sat", "_absdiff", "_counts")

    def __init__(self, total: Optional[float], map: Optional[np.ndarray] = None,
                 backend: Optional[str] = None):
        self.map = map          # int16 [H, W, 3] or None
        self.total = total      # sum of |Res| (None: unknown)
        self.backend = backend
        self._mv: Optional[np.ndarray] = None
        self._block_size: Optional[int] = None
        self._cur: Optional[np.ndarray] = None   # the frame (RGB), until |Res| is computed
        self._pred: Optional[np.ndarray] = None  # numpy pass: its prediction
        self._prev: Optional[np.ndarray] = None  # native summary pass: the previous frame
        self._chan_sum: Optional[np.ndarray] = None  # uint16 [H, W] channel sum of |Res|
        self._chan_sat: Optional[np.ndarray] = None  # uint8 [H, W] min(255, channel sum)
        self._absdiff: Optional[np.ndarray] = None   # uint8 [H, W, 3] |Res|
        self._counts: dict = {}  # (thr, block_size) -> block_counts, read-only

    @classmethod
    def native(cls, cur, prev, mv, block_size: int, full: bool) -> "Residual":
        """One fused pass of native/residual.cc: prediction, Res, channel sums and their total
        (integer and half-pel vectors only: native.half_pel_only)."""
        res, chan_sum, total = _native().residual(cur, prev, mv, block_size, want_residual=full)
        out = cls(float(total), res, "native")
        out._chan_sum = chan_sum
        if not full:  # abs() compensates again on demand
            out._cur, out._prev, out._mv, out._block_size = cur, prev, mv, block_size
        return out

    @classmethod
    def numpy(cls, cur, prev, mv, compensator: MotionCompensator, full: bool) -> "Residual":
        """motion.MotionCompensator's prediction, then OpenCV / numpy (any vectors)."""
        pred = compensator(prev, mv)
        # sum |Res| in one exact pass (8-bit L1 norms accumulate in integers)
        out = cls(float(cv2.norm(cur, pred, cv2.NORM_L1)),
                  np.subtract(cur, pred, dtype=np.int16) if full else None, "numpy")
        out._cur, out._pred = cur, pred  # |Res| for block_counts, computed on demand
        return out

    def abs(self) -> np.ndarray:
        """uint8 [H, W, 3] |Res| (computed on first use). In summary mode it is recomputed from
        the frame and the previous frame: do not modify those in place before calling it."""
        if self._absdiff is None:
            if self.map is not None:
                self._absdiff = np.abs(self.map).astype(np.uint8)
            elif self._pred is not None:
                self._absdiff = cv2.absdiff(self._cur, self._pred)
            elif self._prev is not None:
                pred = motion_compensate(self._prev, self._mv, self._block_size)
                self._absdiff = cv2.absdiff(self._cur, pred)
            else:
                raise ReaderError(NO_RESIDUAL)
            self._cur = self._pred = self._prev = self._mv = None
        return self._absdiff

    def block_counts(self, thr: float, block_size: int = 16) -> np.ndarray:
        """int32 [ceil(H/B), ceil(W/B)]: pixels per block whose mean-over-channels |Res| > thr.
        Kept once computed (read-only), so that a reader thread can count ahead of the caller."""
        key = (float(thr), int(block_size))
        counts = self._counts.get(key)
        if counts is None:
            counts = self._block_counts(*key)
            counts.setflags(write=False)
            self._counts[key] = counts
        return counts

    def _block_counts(self, thr: float, block_size: int) -> np.ndarray:
        if self._chan_sum is not None:
            # exact channel sums (from the native pass): no |Res| map needed
            native = _native()
            if native.library() is not None:
                return native.block_counts(self._chan_sum, sum_limit(thr), block_size)
            return block_counts_from_sum(self._chan_sum, thr, block_size)
        absdiff = self.abs()
        if 3.0 * float(thr) < 254:
            # one OpenCV pass; min(255, channel sum) answers these thresholds exactly
            if self._chan_sat is None:
                self._chan_sat = channel_sum_saturated(absdiff)
            return block_counts_from_sum(self._chan_sat, thr, block_size)
        self._chan_sum = channel_sum_abs(absdiff)
        return block_counts_from_sum(self._chan_sum, thr, block_size)

    def __repr__(self) -> str:
        total = "?" if self.total is None else f"{self.total:.0f}"
        kept = "map" if self.map is not None else "summary"
        return f"<Residual sum|res|={total} {kept} backend={self.backend}>"


class ResidualComputer:
    """Computes the Residual of each P-frame of one stream: the native kernel where it is
    available and the vectors are integer or half-pel, else numpy/OpenCV (identical results)."""

    def __init__(self, height: int, width: int, block_size: int, mode):
        mode = ResidualMode.parse(mode)
        if mode is None:
            raise ValueError("ResidualComputer needs residual mode 'full' or 'summary', got None")
        self.block_size, self.full = block_size, mode == ResidualMode.FULL
        self.compensator = MotionCompensator(height, width, block_size)
        self.use_native = _native().backend() == "native"

    def __call__(self, cur: np.ndarray, prev: np.ndarray, mv: np.ndarray) -> Residual:
        if self.use_native and _native().half_pel_only(mv):
            return Residual.native(cur, prev, mv, self.block_size, self.full)
        return Residual.numpy(cur, prev, mv, self.compensator, self.full)
