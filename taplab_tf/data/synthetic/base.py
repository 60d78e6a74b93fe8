"""Constants, result types and argument checks shared by the synthetic generator's parts."""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

FPS = 17.0
NUM_CLASSES = 19
(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN,
 SKY, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)
# Every Cityscapes train class is drawn; each is placed in view of frame 0 of every clip.
CLAIMED_CLASSES = tuple(range(NUM_CLASSES))
CLASSES_WITHIN_FRAMES = 3  # tests: every claimed class appears within this many first frames.
# Mean |ground-truth flow| per frame (px at 2048 wide, scales with the width) that clips at the
# default difficulty stay within (measured over seeds, docs/synthetic.md).
FLOW_MEAN_RANGE_AT_2048 = (8.0, 40.0)
TRANSPARENT = 255

CAMERA_HEIGHT = 1.22          # metres (Cityscapes rig)
FOCAL_PER_WIDTH = 1.1         # f / W (Cityscapes: 2262 px at 2048)
HORIZON_PER_HEIGHT = 0.45     # principal point row / H
NEAR = 0.3                    # near clipping distance (m)
FAR = 2000.0
VIEW_DISTANCE = 260.0         # objects farther ahead than this are not drawn (m)

LANE_W = 3.3
OPTICAL_BLUR_AT_2048 = 1.0    # Gaussian sigma in pixels at 2048 wide (scaled with the width)
OPTICAL_BLUR_MIN = 0.5        # ... but never below this (small frames would alias otherwise)


# ----------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class Frame:
    index: int
    image: np.ndarray   # uint8 [H, W, 3] RGB
    label: np.ndarray   # uint8 [H, W] trainIds 0-18
    flow: np.ndarray    # float32 [H, W, 2] (dx, dy) = position_t - position_{t-1}


@dataclasses.dataclass
class Clip:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    labels: np.ndarray  # uint8 [T, H, W]
    flow: np.ndarray    # float32 [T, H, W, 2]
    seed: int = 0
    difficulty: float = 1.0

    def __len__(self):
        return int(self.frames.shape[0])


# ----------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------
def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def _check_args(height, width, num_frames, seed, difficulty, frames_name="num_frames"):
    height = _check_int("height", height, 1)
    width = _check_int("width", width, 1)
    if height < 16 or width < 16:
        raise ValueError(f"height, width: must be >= 16 pixels, got {height}x{width}")
    num_frames = _check_int(frames_name, num_frames, 1)
    seed = _check_int("seed", seed, 0)
    try:
        difficulty = float(difficulty)
    except (TypeError, ValueError):
        raise ValueError(f"difficulty: must be a number >= 0, got {difficulty!r}") from None
    if not math.isfinite(difficulty) or difficulty < 0 or difficulty > 10:
        raise ValueError(f"difficulty: must lie in [0, 10], got {difficulty}")
    return height, width, num_frames, seed, difficulty


def _write_png(path, array):
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(path, array):
        raise OSError(f"{path}: could not write the PNG")
