"""Look inside a compressed video: picture types, motion vectors, residuals, per-frame stats.

    summary = inspect_video("clip.avi", "out/", max_frames=48, save_frames=True)

Writes into the output folder:
  types.txt          picture types in decode order, one letter a frame (e.g. IPPPPPPPPPPPIPP...)
  stats.json         per frame: index, pict_type, gop_index, gop_position, num_mvs (inter blocks,
                     i.e. blocks with an exported vector), num_moving (blocks with a non-zero
                     vector), num_intra, mean_abs_mv and max_abs_mv (pixels, over inter blocks),
                     residual_sum (the RGFS score, sum |Res|), residual_mean (per pixel and
                     channel); plus a summary of the clip (the function returns the same dict)
  mv/NNNNNN.png      motion vectors as colour (mv_to_hsv_image), as in TapLab's Fig. 5 /
                     optical-flow plots: hue = direction of (dx, dy) = dst - src (red = right,
                     yellow-green = down, cyan = left, blue/violet = up; OpenCV HSV hue),
                     saturation = |mv| / max_motion (white = still), value 255; intra blocks
                     black; one cell per block, shown at the frame's size. P-frames only.
  residual/NNNNNN.png  mean over channels of |Res| times residual_gain, grey (black = perfectly
                     predicted). P-frames only.
  frames/NNNNNN_T.png  the decoded frame (with save_frames; T = I or P).
  mv_legend.png      the colour of each direction and magnitude (mv_legend), once.
Images go to every `every`-th frame; the stats cover all frames. Every file is written whole or
not at all (a unique temporary name beside it, then os.replace).
"""
from __future__ import annotations

import contextlib
import json
import os
from typing import Callable, Dict, Iterator, Optional

import numpy as np

from .encoder import _remove, _temporary_name


def mv_to_hsv_image(mv: np.ndarray, height: int, width: int, max_motion: float,
                    intra: Optional[np.ndarray] = None) -> np.ndarray:
    """Block vectors [h, w, 2] -> RGB uint8 [height, width, 3] (hue direction, saturation
    magnitude, intra blocks black)."""
    import cv2

    from .motion import expand_motion
    dx, dy = mv[..., 0].astype(np.float32), mv[..., 1].astype(np.float32)
    mag, ang = cv2.cartToPolar(dx, dy, angleInDegrees=True)     # image coordinates: y down
    hsv = np.empty(mv.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = np.round(ang / 2).astype(np.uint8) % 180
    hsv[..., 1] = np.clip(mag / max(max_motion, 1e-6) * 255, 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    if intra is not None:
        hsv[intra] = (0, 0, 0)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rgb.shape[:2] == (height, width):
        return rgb
    return expand_motion(rgb, height, width).astype(np.uint8)


def mv_legend(size: int = 129, max_motion: float = 8.0) -> np.ndarray:
    """A size x size RGB legend of mv_to_hsv_image: the vector of each pixel is its offset from
    the centre, max_motion at the edge."""
    c = size // 2
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    mv = np.stack([(xs - c) / c * max_motion, (ys - c) / c * max_motion], -1)
    return mv_to_hsv_image(mv, size, size, max_motion)


@contextlib.contextmanager
def _written_whole(path: str) -> Iterator[str]:
    """Yields a unique temporary name beside path (the package's one, encoder._temporary_name)
    and renames it onto path when the block ends; on any exception it is removed."""
    tmp = _temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _save_png(path: str, image: np.ndarray) -> None:
    """RGB (or grey) image -> PNG at path, whole or not at all."""
    import cv2
    with _written_whole(path) as tmp:
        if not cv2.imwrite(tmp, np.ascontiguousarray(image[..., ::-1]) if image.ndim == 3
                           else image):
            raise OSError(f"cannot write {path}")


def _save_text(path: str, text: str) -> None:
    with _written_whole(path) as tmp, open(tmp, "w") as fh:
        fh.write(text)


def inspect_video(video_path: str, output_dir: str, max_frames: Optional[int] = None,
                  every: int = 1, max_motion: float = 8.0, residual_gain: float = 4.0,
                  mv_block_size: int = 16, save_frames: bool = False,
                  log: Callable[[str], None] = print) -> Dict:
    """Writes the maps and stats of the module docstring for the first `max_frames` frames (all
    by default) of `video_path` into `output_dir`; returns {'meta', 'summary', 'frames'} as
    stats.json holds it. `log` gets the stream's description and a closing summary line. Bad
    arguments raise ValueError naming the argument (mv_block_size: 8 or 16, as the reader's)."""
    from .reader import open_compressed
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every: must be an integer >= 1, got {every!r}")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)
                                   or max_frames < 0):
        raise ValueError(f"max_frames: must be an integer >= 0 or None, got {max_frames!r}")

    os.makedirs(output_dir, exist_ok=True)
    for sub in ("mv", "residual") + (("frames",) if save_frames else ()):
        os.makedirs(os.path.join(output_dir, sub), exist_ok=True)
    _save_png(os.path.join(output_dir, "mv_legend.png"), mv_legend(max_motion=max_motion))
    stats, types = [], []
    with open_compressed(video_path, rgb=save_frames, residual="summary",
                         mv_block_size=mv_block_size) as video:
        log(repr(video))
        h, w = video.height, video.width
        for f in video:
            if max_frames is not None and f.index >= max_frames:
                break
            types.append(f.pict_type)
            st = dict(index=f.index, pict_type=f.pict_type, gop_index=f.gop_index,
                      gop_position=f.gop_position)
            write = f.index % every == 0
            if f.pict_type == "P":
                mv, intra = f.motion_vectors, f.intra_blocks
                inter = ~intra
                mag = np.hypot(mv[..., 0], mv[..., 1])
                st.update(num_mvs=int(inter.sum()), num_moving=int((mag[inter] > 0).sum()),
                          num_intra=int(intra.sum()),
                          mean_abs_mv=float(mag[inter].mean()) if inter.any() else 0.0,
                          max_abs_mv=float(mag[inter].max()) if inter.any() else 0.0,
                          residual_sum=float(f.residual_sum),
                          residual_mean=float(f.residual_sum) / (h * w * 3))
                if write:
                    _save_png(os.path.join(output_dir, "mv", f"{f.index:06d}.png"),
                              mv_to_hsv_image(mv, h, w, max_motion, intra))
                    mean_abs = f.abs_residual().astype(np.float32).mean(axis=2)
                    _save_png(os.path.join(output_dir, "residual", f"{f.index:06d}.png"),
                              np.clip(mean_abs * residual_gain, 0, 255).astype(np.uint8))
            else:
                st.update(num_mvs=0, num_moving=0, num_intra=None, mean_abs_mv=0.0,
                          max_abs_mv=0.0, residual_sum=0.0, residual_mean=0.0)
            if save_frames and write:
                _save_png(os.path.join(output_dir, "frames", f"{f.index:06d}_{f.pict_type}.png"),
                          f.image)
            stats.append(st)
        meta = dict(video=os.path.abspath(video_path), codec=video.codec, width=w, height=h,
                    fps=video.fps, mv_block_size=mv_block_size, max_motion=max_motion,
                    residual_gain=residual_gain)
    p = [s for s in stats if s["pict_type"] == "P"]
    summary = dict(frames=len(stats), i_frames=types.count("I"), p_frames=len(p),
                   gop_starts=[s["index"] for s in stats if s["pict_type"] == "I"],
                   mean_abs_mv=float(np.mean([s["mean_abs_mv"] for s in p])) if p else 0.0,
                   mean_residual_sum=float(np.mean([s["residual_sum"] for s in p])) if p else 0.0)
    _save_text(os.path.join(output_dir, "types.txt"), "".join(types) + "\n")
    out = dict(meta=meta, summary=summary, frames=stats)
    _save_text(os.path.join(output_dir, "stats.json"), json.dumps(out, indent=1))
    log(f"{len(stats)} frames ({summary['i_frames']} I, {summary['p_frames']} P), mean |mv| "
        f"{summary['mean_abs_mv']:.2f} px, mean sum|Res| {summary['mean_residual_sum']:.0f} "
        f"-> {output_dir}")
    return out
