"""The pinhole camera (Cityscapes rig: Y up, yaw about Y) and the world axes."""
from __future__ import annotations

import dataclasses
import math

import numpy as np


def _inv3(m):
    """Inverse of a 3x3 matrix (np.linalg.inv has a large per-call overhead)."""
    a, b, c = m[0]
    d, e, f = m[1]
    g, h, i = m[2]
    A, B, C = e * i - f * h, -(d * i - f * g), d * h - e * g
    det = a * A + b * B + c * C
    if det == 0.0:
        raise np.linalg.LinAlgError("singular")
    return np.array([[A, -(b * i - c * h), b * f - c * e],
                     [B, a * i - c * g, -(a * f - c * d)],
                     [C, -(a * h - b * g), a * e - b * d]]) / det


@dataclasses.dataclass
class _Camera:
    pos: np.ndarray    # (X, Y, Z) world, Y up
    yaw: float         # radians, positive turns right (towards +X)
    f: float
    cx: float
    cy: float

    @property
    def R(self):
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        # rows: camera right, camera down, camera forward (in world coordinates)
        return np.array([[c, 0.0, -s], [0.0, -1.0, 0.0], [s, 0.0, c]])

    @property
    def K(self):
        return np.array([[self.f, 0, self.cx], [0, self.f, self.cy], [0, 0, 1.0]])

    def homography(self, O, Ex, Ey):
        """texel (u, v, 1) -> image (x, y, 1) * depth for the quad P = O + u Ex + v Ey."""
        M = np.stack([Ex, Ey, np.asarray(O) - self.pos], axis=1)
        return self.K @ self.R @ M


# ----------------------------------------------------------------------------------------
# World objects: each yields quads (texture, O, Ex, Ey) at a time t (seconds)
# ----------------------------------------------------------------------------------------
UP = np.array([0.0, 1.0, 0.0])
XA = np.array([1.0, 0.0, 0.0])
ZA = np.array([0.0, 0.0, 1.0])
