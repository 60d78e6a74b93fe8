"""A cheap clip with known motion: a textured background panning at a sub-pixel speed, and
textured rectangles moving at their own speeds.

    frames = moving_texture_frames(1024, 2048, 600)     # an iterator of RGB uint8 frames
    encode_video(frames, "bench.avi", gop=12, qscale=3)  # third_party.compressed_video

The street renderer (render.iter_clip) takes seconds a frame at 1024x2048; this takes
milliseconds, so the reader's speed can be measured on long, large clips
(experiments.benchmark_reader). Blocks match between frames and the background's vectors are
half-pel, (2.5, 0.5) pixels a frame (right and down), as a codec sees a camera pan.
"""
from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

# The background's motion, pixels a frame (dx right, dy down): content at (x, y) in frame t is at
# (x + dx, y + dy) in frame t + 1.
BACKGROUND_VELOCITY = (2.5, 0.5)


def _texture(h, w, rng, sigma=1.6):
    g = cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8).astype(np.float32),
                         (0, 0), sigma)
    g = cv2.normalize(g, None, 20, 235, cv2.NORM_MINMAX)
    tint = rng.uniform(0.6, 1.0, 3).astype(np.float32)
    return np.clip(g[..., None] * tint + (1 - tint) * 100, 0, 255).astype(np.uint8)


def moving_texture_frames(height: int, width: int, num_frames: int,
                          seed: int = 0) -> Iterator[np.ndarray]:
    """num_frames RGB uint8 [height, width, 3] frames: the background panning by
    BACKGROUND_VELOCITY a frame plus 6 textured rectangles (up to a third of the height and a
    quarter of the width each) moving at random speeds (up to 6 px a frame across, 3 down) and
    wrapping around. A deterministic function of the arguments; bad sizes raise ValueError."""
    # the smallest sizes whose rectangles are at least a pixel on each side
    for name, v, least in (("height", height, 8), ("width", width, 10),
                           ("num_frames", num_frames, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise ValueError(f"{name}: must be an integer >= {least}, got {v!r}")
    rng = np.random.default_rng(seed)
    vx, vy = BACKGROUND_VELOCITY
    pad = 64
    bg_w = int(width + abs(vx) * num_frames + 2 * pad)
    bg_h = int(height + abs(vy) * num_frames + 2 * pad)
    # the background is a tiled texture (keeps memory small for long clips)
    tile = _texture(512, 512, rng)
    reps = (-(-bg_h // 512), -(-bg_w // 512), 1)
    bg = np.tile(tile, reps)[:bg_h, :bg_w]
    objs = []
    for _ in range(6):
        oh, ow = int(rng.integers(height // 8, height // 3)), int(rng.integers(width // 10,
                                                                              width // 4))
        objs.append(dict(tex=_texture(oh, ow, rng, sigma=1.2), x=rng.uniform(0, width - ow),
                         y=rng.uniform(0, height - oh), vx=rng.uniform(-6, 6),
                         vy=rng.uniform(-3, 3)))
    return _frames(bg, objs, height, width, num_frames, vx, vy, pad)


def _frames(bg, objs, height, width, num_frames, vx, vy, pad):
    bg_h, bg_w = bg.shape[:2]
    for t in range(num_frames):
        # content moves by +v per frame: frame t samples the background at (x - v t)
        x0 = pad + bg_w - width - 2 * pad - vx * t if vx > 0 else pad - vx * t
        y0 = pad + bg_h - height - 2 * pad - vy * t if vy > 0 else pad - vy * t
        ix, iy = int(np.floor(x0)), int(np.floor(y0))
        fx, fy = x0 - ix, y0 - iy
        crop = bg[iy:iy + height + 1, ix:ix + width + 1]
        if fx or fy:
            # frame(x, y) = crop(x + fx, y + fy): the inverse map (without WARP_INVERSE_MAP,
            # warpAffine samples crop(x - fx, y - fy), and the pan alternated between 1.5 and
            # 3.5 px a frame instead of 2.5)
            m = np.float32([[1, 0, fx], [0, 1, fy]])
            frame = cv2.warpAffine(crop, m, (width, height),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        else:
            frame = np.ascontiguousarray(crop[:height, :width])
        for o in objs:
            oh, ow = o["tex"].shape[:2]
            x = int(round(o["x"] + o["vx"] * t)) % (width - ow)
            y = int(round(o["y"] + o["vy"] * t)) % (height - oh)
            frame[y:y + oh, x:x + ow] = o["tex"]
        yield frame
