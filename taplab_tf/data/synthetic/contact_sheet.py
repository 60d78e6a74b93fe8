"""Contact sheets: chosen frames of a clip beside their colourised labels."""
from __future__ import annotations

import os
from typing import Optional, Sequence

import cv2
import numpy as np

from taplab_tf.data import labels as labels_lib
from taplab_tf.data.synthetic.base import Clip, _check_int, _write_png


def contact_sheet(frames, labels=None, path: Optional[str] = None, max_frames: int = 6,
                  max_width: int = 1024) -> np.ndarray:
    """A grid with one row per chosen frame: the RGB frame, then its colourised labels.

    `frames` is a Clip or uint8 [T,H,W,3] (with labels uint8 [T,H,W]); frames are picked evenly.
    Rows are scaled so that a row is at most max_width wide. Writes a PNG when path is given.
    """
    if isinstance(frames, Clip):
        frames, labels = frames.frames, frames.labels
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames: expected uint8 [T,H,W,3], got {frames.dtype} {frames.shape}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != frames.shape[:3]:
            raise ValueError(
                f"labels: shape {labels.shape} does not match frames {frames.shape[:3]}")
    max_frames = _check_int("max_frames", max_frames, 1)
    T = frames.shape[0]
    idx = sorted(set(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int).tolist()))
    rows = []
    for i in idx:
        row = [frames[i]]
        if labels is not None:
            row.append(labels_lib.colorize(labels[i]))
        row = np.concatenate(row, axis=1)
        if row.shape[1] > max_width:
            s = max_width / row.shape[1]
            row = cv2.resize(row, (max_width, max(1, int(round(row.shape[0] * s)))),
                             interpolation=cv2.INTER_AREA)
        rows.append(row)
    sheet = np.concatenate(rows, axis=0)
    if path is not None:
        d = os.path.dirname(os.fspath(path))
        if d:
            os.makedirs(d, exist_ok=True)
        _write_png(os.fspath(path), sheet)
    return sheet


def contact_sheet_from_tree(frame_paths: Sequence[str], path: Optional[str] = None,
                            max_frames: int = 6) -> np.ndarray:
    """contact_sheet of a clip written by write_cityscapes_tree (its leftImg8bit_sequence paths)."""
    if not frame_paths:
        raise ValueError("frame_paths: empty")
    idx = sorted(set(np.linspace(0, len(frame_paths) - 1, min(len(frame_paths), max_frames))
                     .round().astype(int).tolist()))
    frames, labs = [], []
    for i in idx:
        p = frame_paths[i]
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        lp = p.replace("leftImg8bit_sequence", "gtFine").replace(
            "_leftImg8bit.png", "_gtFine_labelTrainIds.png")
        lab = cv2.imread(lp, cv2.IMREAD_UNCHANGED)
        if img is None or lab is None:
            raise ValueError(f"frame_paths: cannot read {p} or {lp}")
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        labs.append(lab)
    return contact_sheet(np.stack(frames), np.stack(labs), path=path, max_frames=max_frames)
