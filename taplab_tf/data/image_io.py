"""Reading dataset PNGs: one place for the OpenCV calls and their one-line errors."""
from __future__ import annotations

import numpy as np


def read_rgb(path: str, owner: str) -> np.ndarray:
    """uint8 [H, W, 3] RGB; FileNotFoundError '<owner>: cannot read image ...' otherwise."""
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"{owner}: cannot read image {path!r}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_label(path: str, owner: str) -> np.ndarray:
    """The label image as stored (any dtype); FileNotFoundError where it cannot be read."""
    import cv2
    lab = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise FileNotFoundError(f"{owner}: cannot read label {path!r}")
    return lab
