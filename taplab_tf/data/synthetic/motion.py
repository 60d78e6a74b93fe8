"""Motion statistics: ground-truth flow per frame, block matching on the frames alone."""
from __future__ import annotations

import cv2
import numpy as np


def motion_statistics(flow: np.ndarray, block: int = 16) -> dict:
    """Ground-truth motion per frame t >= 1 (the P-frames of a stream whose frame 0 is an I-frame).

    mean_px: mean |flow| over pixels; max_px: max |flow|; block_mean_px: mean |.| of the 16x16
    block averages (what block motion vectors can represent). Arrays over frames 1..T-1, plus
    their means ('mean', 'max', 'block_mean').
    """
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"flow: expected float32 [T,H,W,2], got shape {flow.shape}")
    if flow.shape[0] < 2:
        raise ValueError("flow: needs at least 2 frames (frame 0 has no motion)")
    mag = np.sqrt((flow[1:] ** 2).sum(-1))
    T, H, W = mag.shape
    hb, wb = H // block, W // block
    bm = []
    for t in range(T):
        f = flow[t + 1, :hb * block, :wb * block].reshape(hb, block, wb, block, 2).mean((1, 3))
        bm.append(np.sqrt((f ** 2).sum(-1)).mean() if hb and wb else np.nan)
    out = {"mean_px": mag.mean((1, 2)), "max_px": mag.max((1, 2)), "block_mean_px": np.array(bm)}
    out.update(mean=float(out["mean_px"].mean()), max=float(out["max_px"].max()),
               block_mean=float(np.nanmean(out["block_mean_px"])))
    return out


def block_matching(prev: np.ndarray, cur: np.ndarray, block: int = 16,
                   search: int = 16) -> np.ndarray:
    """Exhaustive-search block matching on the frames themselves (no ground truth involved).

    Returns float32 [H//block, W//block, 2]: for each block of `cur`, the (dx, dy) = position in
    cur - position in prev minimising the sum of absolute grey-level differences within +-search.
    """
    a = cv2.cvtColor(np.asarray(prev), cv2.COLOR_RGB2GRAY).astype(np.float32)
    b = cv2.cvtColor(np.asarray(cur), cv2.COLOR_RGB2GRAY).astype(np.float32)
    H, W = b.shape
    hb, wb = H // block, W // block
    pad = cv2.copyMakeBorder(a, search, search, search, search, cv2.BORDER_REPLICATE)
    cb = b[:hb * block, :wb * block]
    best = np.full((hb, wb), np.inf, np.float32)
    vec = np.zeros((hb, wb, 2), np.float32)
    for dy in range(-search, search + 1):
        for dx in range(-search, search + 1):
            # cur(p) ~ prev(p - d)
            src = pad[search - dy:search - dy + hb * block, search - dx:search - dx + wb * block]
            sad = np.abs(cb - src).reshape(hb, block, wb, block).sum((1, 3))
            sad += 1e-3 * (abs(dx) + abs(dy))  # ties go to the smaller vector
            better = sad < best
            best[better] = sad[better]
            vec[better] = (dx, dy)
    return vec
