"""coviar-compatible API (Wu et al., "Compressed Video Action Recognition"), built on the streaming
reader.

    load(path, gop_index, frame_index, representation, accumulate) -> np.ndarray
    get_num_frames(path) -> int
    get_num_gops(path) -> int

``representation``: 0 (IFRAME) the decoded frame at (gop_index, frame_index) as uint8 [H, W, 3] in
**BGR** order (as coviar returns it); 1 (MV) int32 [H, W, 2] dense per-pixel motion (dx, dy) =
dst - src, truncated towards zero like coviar's integer ``dst - src`` (vectors are read at 8x8
resolution, so every 4MV sub-block keeps its own vector, as in coviar); 2 (RESIDUAL) int32
[H, W, 3] in BGR order. ``frame_index`` is the position inside the GOP (0 = the I-frame).
At frame_index 0, MV and RESIDUAL are all zeros (as in coviar).

accumulate=False: MV of the frame itself, residual against the previous frame (the reader's
definition: frame_t - MC(frame_{t-1}), sub-pixel, in RGB, channel order flipped to BGR).
accumulate=True: MV accumulated back to the GOP's I-frame (motion.accumulate_motion, truncated to
int32) and residual = frame_t - I-frame sampled at p - acc(p) (nearest pixel, clamped), BGR.

Differences from the C coviar loader, documented rather than hidden: coviar's residual is computed
with integer (truncated) vectors; ours uses the exact sub-pixel vectors, so residuals differ where
vectors are fractional (never for integer motion). coviar assumes GOP_SIZE = 12; here GOPs are the
I-frame intervals actually in the stream (a fixed 12 with encode_video(..., gop=12)).

Cost: a call decodes from the GOP's I-frame to the requested frame (like coviar), but the last GOP
decoded is cached, so loading every frame of a GOP in order decodes it once.
"""
from __future__ import annotations

import os
import threading
from typing import Dict, List, Tuple

import numpy as np

from .errors import ReaderError
from .motion import expand_motion
from .reader import open_compressed

IFRAME, MV, RESIDUAL = 0, 1, 2

_lock = threading.Lock()
_gop_cache: Dict[tuple, List[dict]] = {}
_meta_cache: Dict[tuple, Tuple[int, List[int]]] = {}


def _key(path: str) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        raise ReaderError(f"{path}: no such file") from None
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size)


def _meta(path: str) -> Tuple[int, List[int]]:
    k = _key(path)
    with _lock:
        if k in _meta_cache:
            return _meta_cache[k]
    with open_compressed(path, rgb=False, residual=None) as v:
        starts = v.gop_starts
        n = v.num_frames
    with _lock:
        if len(_meta_cache) > 64:
            _meta_cache.clear()
        _meta_cache[k] = (n, starts)
    return n, starts


def get_num_frames(path) -> int:
    """Number of frames in the video."""
    return _meta(os.fspath(path))[0]


def get_num_gops(path) -> int:
    """Number of GOPs (I-frames) in the video."""
    return len(_meta(os.fspath(path))[1])


def _decode_gop(path: str, gop_index: int, accumulate: bool) -> List[dict]:
    k = _key(path) + (gop_index, bool(accumulate))
    with _lock:
        if k in _gop_cache:
            return _gop_cache[k]
    out: List[dict] = []
    iframe_rgb = None
    with open_compressed(path, rgb=True, residual="full", mv_block_size=8,
                         accumulate=accumulate) as v:
        h, w = v.height, v.width
        for f in v.iter_frames(start_gop=gop_index):
            if f.gop_index != gop_index:
                break
            if f.pict_type == "I":
                iframe_rgb = f.image
                z2, z3 = np.zeros((h, w, 2), np.int32), np.zeros((h, w, 3), np.int32)
                out.append({"iframe": f.image[:, :, ::-1].copy(), "mv": z2, "residual": z3})
                continue
            if accumulate:
                acc = f.accumulated_motion
                mv = np.trunc(acc).astype(np.int32)
                ys, xs = np.mgrid[0:h, 0:w]
                sx = np.clip(np.rint(xs - acc[..., 0]), 0, w - 1).astype(np.intp)
                sy = np.clip(np.rint(ys - acc[..., 1]), 0, h - 1).astype(np.intp)
                res = f.image.astype(np.int32) - iframe_rgb[sy, sx].astype(np.int32)
            else:
                mv = np.trunc(expand_motion(f.motion_vectors, h, w, 8)).astype(np.int32)
                res = f.residual.astype(np.int32)
            out.append({"iframe": f.image[:, :, ::-1].copy(), "mv": mv,
                        "residual": np.ascontiguousarray(res[:, :, ::-1])})
    with _lock:
        _gop_cache.clear()  # keep one GOP: bounded memory
        _gop_cache[k] = out
    return out


def load(path, gop_index: int, frame_index: int, representation: int, accumulate: bool
         ) -> np.ndarray:
    """coviar.load: one representation of frame ``frame_index`` of GOP ``gop_index``."""
    path = os.fspath(path)
    if representation not in (IFRAME, MV, RESIDUAL):
        raise ValueError(f"representation must be 0 (iframe), 1 (mv) or 2 (residual), "
                         f"got {representation}")
    n, starts = _meta(path)
    if not 0 <= gop_index < len(starts):
        raise ReaderError(f"{path}: GOP {gop_index} out of range (video has {len(starts)} GOPs)")
    gop_len = (starts[gop_index + 1] if gop_index + 1 < len(starts) else n) - starts[gop_index]
    if not 0 <= frame_index < gop_len:
        raise ReaderError(f"{path}: frame {frame_index} out of range in GOP {gop_index} "
                          f"({gop_len} frames)")
    frames = _decode_gop(path, gop_index, accumulate)
    if frame_index >= len(frames):
        raise ReaderError(f"{path}: GOP {gop_index} frame {frame_index} could not be decoded "
                          f"(damaged stream)")
    name = ("iframe", "mv", "residual")[representation]
    return frames[frame_index][name].copy()
