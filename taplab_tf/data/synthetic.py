"""Procedural synthetic street video with exact labels and ground-truth motion (the default data).

No dataset can be downloaded in this project, so the tests, the examples and the smoke
benchmarks run on clips drawn here. A clip is rendered by a pinhole camera driving down a
straight street of a procedurally generated 3-D world:

  * the ground (road with lane markings and a crosswalk, sidewalks, terrain) is the plane Y=0,
    rendered per pixel by inverse perspective (every pixel's ray meets the plane at a world
    point whose material and texture are functions of that point);
  * the sky is a textured sphere at infinity (it moves with the camera's yaw only);
  * everything else is a textured planar quad in the world: building facades and their side
    walls, walls, fences, hedges, trees, poles, traffic lights and signs, the faces of cars,
    trucks, buses and trams (boxes), and persons and riders whose legs and arms are separate
    quads swinging about hip and shoulder (non-rigid motion). Quads are warped into the frame
    with their exact homography (cv2.warpPerspective) and composited with a per-pixel z-buffer.

Labels are rendered with the very same homographies (nearest neighbour) as the colours, so every
pixel's label is the class of the surface whose colour it shows. `flow` is exact for every
surface, limbs included: for a pixel p of frame t that shows surface point X, flow = p - p' where
p' is the projection of X at frame t-1 (X moved back with its object). It is defined for pixels
whose point was behind the camera or off-screen at t-1 too (p' is then outside the frame).

Classes: all 19 Cityscapes train classes are claimed (CLAIMED_CLASSES); every clip places one
of each kind in view of its first frames (a car with a tram behind it ahead, an oncoming bus and
motorcycle, a parked delivery truck, a cyclist, a pedestrian, traffic lights and signs, a park
with a wall, a fence, terrain and trees), so each claimed class appears within the first
CLASSES_WITHIN_FRAMES frames at 128x256 and larger (the tests check seeds 0-2; seeds 0-39 were
checked with a script). Later in long clips only what the random traffic brings appears.

Motion (Cityscapes is filmed at 17 Hz): the camera drives forward at 4-8 m/s with a slow yaw
oscillation (1-2.5 degrees, lateral pan) and a lateral drift; cars, trucks, buses and trams drive
in their lanes (the oncoming ones, 5-10 m/s, come out of the distance and leave at the left
edge), pedestrians walk on the sidewalks and across the crosswalk, cyclists and motorcyclists
ride along the right edge, and parked cars, poles, trees stand still. `difficulty` (>= 0,
default 1, calibrated so that MPEG-4 statistics at 1024x2048 fall in the ranges measured on
real Cityscapes footage) scales every speed, the yaw amplitude and the density of moving
objects; 0 gives a still camera and a frozen world. A clip is a deterministic function of
(height, width, num_frames, seed, difficulty); a longer clip only adds street at the far end, so
the first k frames of a clip are the k-frame clip of the same seed, size and difficulty. Another
difficulty is another street (densities change the layout).

API (docs/INTERFACES.md):
  generate_clip(height, width, num_frames, seed, difficulty=1.0) -> Clip(frames, labels, flow)
  iter_clip(height, width, num_frames, seed, difficulty=1.0) -> iterator of Frame(index, image,
      label, flow) rendered one at a time (textures of objects left behind are freed, so clips
      of any length at 1024x2048 run in bounded memory)
  write_cityscapes_tree(output_dir, split, num_clips, clip_length, height, width, seed,
      difficulty=1.0, city='synthtown', annotated_frame=19, progress=None) -> dict
  clip_seed(seed, split, i), annotated_index(clip_length) -> what the tree writer uses
  contact_sheet(clip | frames, labels=None, path=None, max_frames=6) -> RGB uint8 grid
  contact_sheet_from_tree(frame_paths, path=None) -> the same from written files
  motion_statistics(flow) -> ground-truth |flow| statistics per frame
  block_matching(prev, cur, block=16, search=16) -> motion measured on the frames alone
  calibrate(height, width, num_frames, seed, difficulty, gop=12, qscale=6) -> statistics of the
      MPEG-4 encoded clip (third_party.compressed_video); CITYSCAPES_TARGETS, scaled_targets()

Statistics at the default difficulty are recorded in docs/synthetic.md.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable, Iterator, Optional, Sequence

import cv2
import numpy as np

from taplab_tf.data import labels as labels_lib

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


# ----------------------------------------------------------------------------------------
# Procedural textures
# ----------------------------------------------------------------------------------------
def _noise(rng, h, w, cell, octaves=3):
    """Smooth value noise in about [-1, 1], float32 [h, w]; `cell`: coarsest period in texels."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        c = max(1.0, cell)
        gh, gw = int(h / c) + 3, int(w / c) + 3
        g = rng.standard_normal((gh, gw)).astype(np.float32)
        big = cv2.resize(g, (int(gw * c), int(gh * c)), interpolation=cv2.INTER_CUBIC)
        out += amp * big[:h, :w]
        total += amp
        amp *= 0.5
        cell /= 2.0
    return out / (total * 0.8)


def _periodic_noise(rng, n, cutoff):
    """Tileable noise [n, n] in about [-1, 1] (white noise low-passed in the Fourier domain)."""
    white = rng.standard_normal((n, n))
    f = np.fft.fftfreq(n)
    r = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    spec = np.fft.fft2(white) / (1.0 + (r / cutoff) ** 2)
    out = np.real(np.fft.ifft2(spec)).astype(np.float32)
    return out / (3.0 * out.std() + 1e-6)


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


class Texture:
    """RGB and label texels of a quad; label TRANSPARENT marks holes. `s` is metres per texel."""

    def __init__(self, rgb, lab, s):
        self.lab = np.ascontiguousarray(lab, np.uint8)
        alpha = (self.lab != TRANSPARENT).astype(np.float32)
        rgb = np.asarray(rgb, np.float32)
        if alpha.min() == 0.0 and alpha.max() > 0.0:
            # Bleed colours into the holes so that bilinear sampling and the mip levels have no
            # dark fringe at edges: local average near the edge, the mean opaque colour beyond.
            num = cv2.blur(rgb * alpha[..., None], (7, 7))
            den = cv2.blur(alpha, (7, 7))
            mean = (rgb * alpha[..., None]).reshape(-1, 3).sum(0) / alpha.sum()
            local = num / np.maximum(den, 1e-3)[..., None]
            w = np.clip(den * 4.0, 0.0, 1.0)[..., None]
            fill = local * w + mean * (1.0 - w)
            rgb = np.where(alpha[..., None] > 0, rgb, fill)
        self.rgb = np.clip(rgb, 0, 255).astype(np.uint8)
        self.s = float(s)
        self._pyramid = [self.rgb]

    @property
    def shape(self):
        return self.lab.shape

    def level(self, l):
        while len(self._pyramid) <= l:
            prev = self._pyramid[-1]
            if min(prev.shape[:2]) < 4:
                break
            self._pyramid.append(cv2.pyrDown(prev))
        l = min(l, len(self._pyramid) - 1)
        return self._pyramid[l], l


class _Canvas:
    """A texture being drawn in metres: x to the right, y down from the top-left corner."""

    def __init__(self, width_m, height_m, s, base_rgb, rng, label=TRANSPARENT, noise=12.0,
                 noise_cell_m=0.5):
        self.s = s
        self.w = max(2, int(round(width_m / s)))
        self.h = max(2, int(round(height_m / s)))
        self.rgb = np.empty((self.h, self.w, 3), np.float32)
        self.rgb[:] = base_rgb
        if noise:
            n = _noise(rng, self.h, self.w, noise_cell_m / s)
            self.rgb += noise * n[..., None]
        self.lab = np.full((self.h, self.w), label, np.uint8)
        self.rng = rng

    def px(self, v):
        return int(round(v / self.s))

    def rect(self, x0, y0, x1, y1, rgb=None, label=None, noise=0.0):
        a, b, c, d = self.px(x0), self.px(y0), self.px(x1), self.px(y1)
        a, c = max(0, a), min(self.w, max(c, a + 1))
        b, d = max(0, b), min(self.h, max(d, b + 1))
        if a >= c or b >= d:
            return
        if rgb is not None:
            self.rgb[b:d, a:c] = rgb
            if noise:
                self.rgb[b:d, a:c] += noise * self.rng.standard_normal((d - b, c - a, 1)).astype(
                    np.float32)
        if label is not None:
            self.lab[b:d, a:c] = label

    def poly(self, pts_m, rgb=None, label=None):
        pts = np.array([[self.px(x), self.px(y)] for x, y in pts_m], np.int32)
        if rgb is not None:
            cv2.fillPoly(self.rgb, [pts], tuple(float(c) for c in rgb))
        if label is not None:
            cv2.fillPoly(self.lab, [pts], int(label))

    def circle(self, x, y, r, rgb=None, label=None):
        c = (self.px(x), self.px(y))
        rr = max(1, self.px(r))
        if rgb is not None:
            cv2.circle(self.rgb, c, rr, tuple(float(v) for v in rgb), -1)
        if label is not None:
            cv2.circle(self.lab, c, rr, int(label), -1)

    def shade_x(self, left, right):
        """Multiplies colours by a horizontal ramp (cylinder-like shading of poles, trunks)."""
        self.rgb *= np.linspace(left, right, self.w, dtype=np.float32)[None, :, None]

    def texture(self, shade=1.0):
        return Texture(self.rgb * shade, self.lab, self.s)


def _jitter(rng, rgb, amount=18):
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


FACADE_COLOURS = [(196, 184, 160), (170, 160, 150), (150, 90, 70), (215, 205, 185),
                  (120, 118, 115), (185, 150, 110), (200, 200, 195), (160, 125, 100)]
CAR_COLOURS = [(180, 20, 20), (20, 40, 120), (230, 230, 230), (30, 30, 30), (140, 140, 145),
               (60, 90, 60), (200, 170, 40), (100, 20, 30), (70, 110, 160), (200, 200, 205)]
CLOTH_COLOURS = [(40, 40, 60), (150, 30, 30), (30, 60, 120), (200, 200, 200), (60, 60, 60),
                 (120, 90, 40), (30, 100, 60), (180, 140, 60), (90, 30, 90)]
SKIN_COLOURS = [(230, 190, 160), (200, 150, 110), (150, 100, 70), (100, 70, 50)]


def _facade_texture(rng, width_m, height_m, s, shade):
    base = _jitter(rng, FACADE_COLOURS[rng.integers(len(FACADE_COLOURS))])
    c = _Canvas(width_m, height_m, s, base, rng, label=BUILDING, noise=14, noise_cell_m=1.5)
    # fine plaster / brick grain
    c.rgb += 5 * rng.standard_normal((c.h, c.w, 1)).astype(np.float32)
    floor_h = rng.uniform(2.9, 3.6)
    bay = rng.uniform(1.6, 2.8)
    win_w, win_h = bay * rng.uniform(0.4, 0.6), floor_h * rng.uniform(0.4, 0.55)
    glass = _jitter(rng, (85, 100, 115), 20)
    frame_rgb = np.clip(base * 0.5 + _jitter(rng, (215, 215, 210), 15) * 0.5, 0, 255)
    shop = rng.random() < 0.6
    # roof line: flat, stepped or gabled (holes are sky)
    roof = rng.integers(3)
    if roof == 1:
        step = rng.uniform(1.0, 3.0)
        c.rect(0, 0, width_m * rng.uniform(0.2, 0.5), step, label=TRANSPARENT)
    elif roof == 2:
        gh = rng.uniform(1.5, 3.5)
        c.poly([(0, 0), (width_m / 2, 0), (0, gh)], label=TRANSPARENT)
        c.poly([(width_m, 0), (width_m / 2, 0), (width_m, gh)], label=TRANSPARENT)
    c.rect(0, 0.0, width_m, 0.35, rgb=base * 0.75)  # cornice
    y = 1.0
    top_floor = height_m - (floor_h if not shop else 4.2)
    n_bays = max(1, int(width_m / bay))
    x_off = (width_m - n_bays * bay) / 2
    while y + win_h < top_floor:
        c.rect(0, y + win_h + 0.15, width_m, y + win_h + 0.3, rgb=base * 0.85)  # sill band
        for i in range(n_bays):
            x = x_off + i * bay + (bay - win_w) / 2
            c.rect(x - 0.08, y - 0.08, x + win_w + 0.08, y + win_h + 0.08, rgb=frame_rgb)
            g = _jitter(rng, glass, 25)
            if rng.random() < 0.15:
                g = _jitter(rng, (200, 190, 150), 20)  # lit / curtain
            c.rect(x, y, x + win_w, y + win_h, rgb=g, noise=6)
            c.rect(x + win_w / 2 - 0.04, y, x + win_w / 2 + 0.04, y + win_h, rgb=frame_rgb)
            # sky reflection in the upper pane
            c.rect(x, y, x + win_w, y + win_h * 0.3, rgb=np.clip(g + 30, 0, 255))
        y += floor_h
    if shop:
        gy = height_m - 3.6
        c.rect(0, gy - 0.5, width_m, gy - 0.05, rgb=_jitter(rng, (60, 60, 60), 30))  # sign band
        for i in range(int(rng.integers(2, 8))):
            x = rng.uniform(0, width_m)
            c.rect(x, gy - 0.42, x + rng.uniform(0.3, 1.8), gy - 0.12,
                   rgb=_jitter(rng, (220, 220, 210), 35))
        x = 0.5
        while x < width_m - 1.0:
            w = rng.uniform(1.2, 3.5)
            if rng.random() < 0.25:
                c.rect(x, gy + 0.6, x + 1.1, height_m, rgb=_jitter(rng, (90, 60, 40), 30))  # door
                x += 1.6
                continue
            c.rect(x, gy + 0.3, min(x + w, width_m - 0.3), height_m - 0.5,
                   rgb=_jitter(rng, (50, 60, 70), 25), noise=10)
            x += w + 0.5
    c.rect(0, height_m - 0.3, width_m, height_m, rgb=base * 0.6)  # plinth
    return c.texture(shade)


def _plain_wall_texture(rng, width_m, height_m, s, shade, label, base=None):
    base = _jitter(rng, base if base is not None else (165, 160, 150), 20)
    c = _Canvas(width_m, height_m, s, base, rng, label=label, noise=16, noise_cell_m=0.7)
    c.rgb += 5 * rng.standard_normal((c.h, c.w, 1)).astype(np.float32)
    if rng.random() < 0.5:  # brick / block courses
        course = rng.uniform(0.2, 0.5)
        y = course
        while y < height_m:
            c.rect(0, y, width_m, y + 0.03, rgb=base * 0.85)
            y += course
    c.rect(0, 0, width_m, 0.08, rgb=base * 1.1)
    return c.texture(shade)


def _fence_texture(rng, width_m, height_m, s, shade):
    kind = rng.integers(3)
    metal = _jitter(rng, [(60, 60, 60), (120, 110, 90), (70, 90, 70)][kind], 15)
    c = _Canvas(width_m, height_m, s, metal, rng, label=TRANSPARENT, noise=10)
    if kind == 1:  # wooden planks
        x = 0.0
        while x < width_m:
            c.rect(x, 0.1, x + 0.12, height_m, label=FENCE)
            c.rect(x, 0.1, x + 0.12, height_m, rgb=_jitter(rng, (150, 120, 80), 12))
            x += 0.18
    else:  # bars or mesh
        step = 0.12 if kind == 0 else 0.08
        x = 0.0
        while x < width_m:
            c.rect(x, 0.0, x + max(0.03, s), height_m, label=FENCE)
            x += step
        if kind == 2:
            y = 0.0
            while y < height_m:
                c.rect(0, y, width_m, y + max(0.03, s), label=FENCE)
                y += step
    c.rect(0, 0.0, width_m, 0.07, label=FENCE)
    c.rect(0, height_m * 0.55, width_m, height_m * 0.55 + 0.06, label=FENCE)
    x = 0.0
    while x < width_m:  # posts
        c.rect(x, 0, x + 0.08, height_m, rgb=metal * 0.8, label=FENCE)
        x += 2.5
    return c.texture(shade)


def _hedge_texture(rng, width_m, height_m, s, shade):
    c = _Canvas(width_m, height_m, s, _jitter(rng, (60, 95, 35), 15), rng, label=VEGETATION,
                noise=35, noise_cell_m=0.3)
    c.rgb += 20 * rng.standard_normal((c.h, c.w, 1)).astype(np.float32)
    top = _noise(rng, 1, c.w, 0.6 / s, 2)[0]
    rows = np.arange(c.h)[:, None]
    c.lab[rows < (0.15 + 0.1 * top)[None, :] / s] = TRANSPARENT
    return c.texture(shade)


def _tree_texture(rng, s):
    """Trunk and an irregular leafy crown, base centre at the bottom middle."""
    height = rng.uniform(5.0, 10.0)
    crown_w = rng.uniform(3.0, 6.0)
    width = crown_w + 0.4
    c = _Canvas(width, height, s, _jitter(rng, (70, 105, 40), 20), rng, label=TRANSPARENT,
                noise=40, noise_cell_m=0.4)
    c.rgb += 25 * rng.standard_normal((c.h, c.w, 1)).astype(np.float32)
    trunk_w = rng.uniform(0.2, 0.4)
    x0 = width / 2 - trunk_w / 2
    c.rect(x0, height * 0.4, x0 + trunk_w, height, rgb=_jitter(rng, (85, 65, 50), 10),
           label=VEGETATION, noise=10)
    yy, xx = np.mgrid[0:c.h, 0:c.w].astype(np.float32) * s
    cy, ch = height * 0.35, height * 0.34
    blob = ((xx - width / 2) / (crown_w / 2)) ** 2 + ((yy - cy) / ch) ** 2
    blob += 0.45 * _noise(rng, c.h, c.w, 0.8 / s, 3)
    crown = blob < 1.0
    c.lab[crown] = VEGETATION
    # light from above
    c.rgb[crown] *= (1.15 - 0.4 * (yy[crown] - (cy - ch)) / (2 * ch))[:, None]
    return c.texture(), width, height


def _pole_texture(rng, s, height, width, rgb=(120, 120, 118)):
    c = _Canvas(width, height, s, _jitter(rng, rgb, 10), rng, label=POLE, noise=6)
    c.shade_x(0.65, 1.15)
    return c.texture()


def _traffic_light_texture(rng, s):
    w, h = 0.36, 1.0
    c = _Canvas(w, h, s, (30, 30, 30), rng, label=TRAFFIC_LIGHT, noise=5)
    lit = rng.integers(3)
    for i, col in enumerate([(255, 40, 30), (255, 190, 20), (40, 255, 90)]):
        on = i == lit
        rgb = col if on else tuple(0.25 * v + 20 for v in col)
        c.circle(w / 2, 0.18 + 0.32 * i, 0.11, rgb=rgb)
    return c.texture()


def _sign_texture(rng, s):
    kind = rng.integers(4)
    w = 0.7
    c = _Canvas(w, w, s, (240, 240, 240), rng, label=TRANSPARENT, noise=4)
    if kind == 0:  # prohibitory: red ring
        c.circle(w / 2, w / 2, w / 2, rgb=(200, 20, 20), label=TRAFFIC_SIGN)
        c.circle(w / 2, w / 2, w * 0.38, rgb=(245, 245, 245))
        c.rect(w * 0.3, w * 0.42, w * 0.7, w * 0.58, rgb=(20, 20, 20))
    elif kind == 1:  # mandatory: blue disc, white arrow
        c.circle(w / 2, w / 2, w / 2, rgb=(20, 60, 170), label=TRAFFIC_SIGN)
        c.poly([(w * 0.5, w * 0.2), (w * 0.75, w * 0.5), (w * 0.25, w * 0.5)], rgb=(240, 240, 240))
        c.rect(w * 0.44, w * 0.5, w * 0.56, w * 0.8, rgb=(240, 240, 240))
    elif kind == 2:  # warning triangle
        c.poly([(w / 2, 0), (w, w * 0.87), (0, w * 0.87)], rgb=(200, 20, 20), label=TRAFFIC_SIGN)
        c.poly([(w / 2, w * 0.2), (w * 0.82, w * 0.77), (w * 0.18, w * 0.77)], rgb=(245, 245, 245))
    else:  # information rectangle
        c.rect(0, w * 0.1, w, w * 0.9, rgb=(20, 80, 180), label=TRAFFIC_SIGN)
        c.rect(w * 0.2, w * 0.3, w * 0.8, w * 0.5, rgb=(245, 245, 245))
    return c.texture()


def _box_faces(rng, kind, w, h, l, s, sun):
    """Textures (back, front, side) of a vehicle box; the side has the front on the right."""
    if kind == CAR:
        body = _jitter(rng, CAR_COLOURS[rng.integers(len(CAR_COLOURS))], 12)
    elif kind == TRUCK:
        body = _jitter(rng, [(230, 230, 230), (200, 60, 30), (40, 80, 150), (220, 200, 60)][
            rng.integers(4)], 15)
    elif kind == BUS:
        body = _jitter(rng, [(230, 200, 40), (230, 230, 230), (190, 30, 40), (40, 110, 60)][
            rng.integers(4)], 12)
    else:
        body = _jitter(rng, [(235, 235, 235), (200, 40, 40), (240, 200, 40)][rng.integers(3)], 10)
    glass = _jitter(rng, (45, 55, 65), 10)
    tyre = (25, 25, 25)
    nz = 5
    faces = []
    if kind == CAR:
        belt = 0.55 * h
        for face in ("back", "front"):
            c = _Canvas(w, h, s, body, rng, label=TRANSPARENT, noise=nz)
            c.rect(0, h - belt, w, h - 0.15, label=CAR)
            c.poly([(0.12 * w, 0.02 * h), (0.88 * w, 0.02 * h), (w, h - belt + 0.02),
                    (0, h - belt + 0.02)],
                   rgb=body * 0.92, label=CAR)
            c.poly([(0.17 * w, 0.08 * h), (0.83 * w, 0.08 * h), (0.93 * w, h - belt - 0.05),
                    (0.07 * w, h - belt - 0.05)], rgb=glass)
            c.rect(0.06 * w, h - 0.15, 0.22 * w, h, rgb=tyre, label=CAR)
            c.rect(0.78 * w, h - 0.15, 0.94 * w, h, rgb=tyre, label=CAR)
            lamp = (220, 20, 20) if face == "back" else (235, 235, 220)
            c.rect(0.03 * w, h - belt + 0.08, 0.2 * w, h - belt + 0.22, rgb=lamp)
            c.rect(0.8 * w, h - belt + 0.08, 0.97 * w, h - belt + 0.22, rgb=lamp)
            c.rect(0.38 * w, h - 0.42, 0.62 * w, h - 0.3, rgb=(235, 235, 235))  # plate
            c.rect(0, h - 0.3, w, h - 0.15, rgb=(35, 35, 35))  # bumper
            faces.append(c.texture(sun[face]))
        c = _Canvas(l, h, s, body, rng, label=TRANSPARENT, noise=nz)
        c.rect(0, h - belt, l, h - 0.15, label=CAR)
        c.poly([(0.18 * l, h - belt + 0.02), (0.3 * l, 0.02 * h), (0.72 * l, 0.02 * h),
                (0.84 * l, h - belt + 0.02)], rgb=body * 0.95, label=CAR)
        c.poly([(0.22 * l, h - belt - 0.03), (0.32 * l, 0.08 * h), (0.7 * l, 0.08 * h),
                (0.8 * l, h - belt - 0.03)], rgb=glass)
        c.rect(0.5 * l, 0.08 * h, 0.52 * l, h - belt, rgb=body * 0.7)
        c.rect(0.5 * l, h - belt + 0.05, 0.505 * l, h - 0.3, rgb=body * 0.6)  # door gap
        c.rect(0, h - belt + 0.15, l, h - belt + 0.18, rgb=body * 1.15)
        for x in (0.18 * l, 0.82 * l):
            c.circle(x, h - 0.32, 0.32, rgb=tyre, label=CAR)
            c.circle(x, h - 0.32, 0.17, rgb=(150, 150, 155))
        faces.append(c.texture(sun["side"]))
        return faces
    # trucks, buses, trams: tall boxes
    for face in ("back", "front"):
        c = _Canvas(w, h, s, body, rng, label=kind, noise=nz)
        c.rect(0, 0, w, 0.25 if kind != TRUCK else 0.02, rgb=body * 0.8)
        if face == "front" or kind in (BUS, TRAIN):
            top = 0.25 * h if face == "front" else 0.2 * h
            c.rect(0.06 * w, top, 0.94 * w, 0.55 * h, rgb=glass)
        else:  # truck cargo doors
            c.rect(0.49 * w, 0.05 * h, 0.51 * w, 0.8 * h, rgb=body * 0.6)
            for x in (0.25 * w, 0.75 * w):
                c.rect(x - 0.02, 0.1 * h, x + 0.02, 0.75 * h, rgb=(90, 90, 90))
        lamp = (220, 20, 20) if face == "back" else (235, 235, 220)
        c.rect(0.05 * w, 0.8 * h, 0.17 * w, 0.86 * h, rgb=lamp)
        c.rect(0.83 * w, 0.8 * h, 0.95 * w, 0.86 * h, rgb=lamp)
        c.rect(0, h - 0.35, w, h, rgb=(35, 35, 35))
        if kind == TRAIN:
            c.rect(0, h - 0.2, w, h, label=TRANSPARENT)
        faces.append(c.texture(sun[face]))
    c = _Canvas(l, h, s, body, rng, label=kind, noise=nz)
    if kind == TRUCK:
        cab = 2.2
        c.rect(0, 0, l - cab - 0.2, h - 0.9, rgb=_jitter(rng, (225, 225, 225), 25))  # cargo box
        c.rect(0.5, 0.4 * h, l - cab - 0.7, 0.55 * h, rgb=_jitter(rng, (40, 80, 170), 60))
        c.rect(l - cab - 0.2, 0, l, 0.9, label=TRANSPARENT)
        c.rect(l - cab + 0.2, 1.0, l - 0.3, 0.45 * h, rgb=glass)
        c.rect(l - cab - 0.2, h - 0.9, l - cab, h - 0.4, rgb=(40, 40, 40))
        wheels = (0.12 * l, 0.25 * l, l - 1.5)
        c.rect(0, h - 0.5, l, h, label=TRANSPARENT)
    else:
        y0 = 0.18 * h if kind == BUS else 0.2 * h
        x = 0.6
        win = 1.3 if kind == BUS else 1.5
        while x + win < l - 0.6:
            c.rect(x, y0, x + win, 0.55 * h, rgb=_jitter(rng, glass, 10))
            x += win + 0.25
        if kind == BUS:
            for dx in (0.25 * l, 0.65 * l):
                c.rect(dx, y0, dx + 1.1, h - 0.35, rgb=glass * 0.8)  # doors
            wheels = (0.2 * l, 0.78 * l)
            c.rect(0, h - 0.35, l, h, label=TRANSPARENT)
        else:
            c.rect(0, 0.62 * h, l, 0.66 * h, rgb=body * 0.5)
            for dx in np.arange(0.3, 1.0, 0.3) * l:
                c.rect(dx, y0, dx + 1.3, h - 0.4, rgb=glass * 0.8)
            wheels = (0.1 * l, 0.5 * l, 0.9 * l)
            c.rect(0, h - 0.25, l, h, label=TRANSPARENT)
    for x in wheels:
        c.circle(x, h - 0.5, 0.5, rgb=tyre, label=kind)
        c.circle(x, h - 0.5, 0.25, rgb=(140, 140, 140))
    faces.append(c.texture(sun["side"]))
    return faces


# ----------------------------------------------------------------------------------------
# Camera
# ----------------------------------------------------------------------------------------
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


class _Static:
    """A fixed quad: texture placed with its top-left corner at O, columns along ex (unit)."""

    def __init__(self, tex_fn, O, ex, zrange, ey=None):
        self.tex_fn, self.tex = tex_fn, None
        self.O = np.asarray(O, float)
        self.ex = np.asarray(ex, float)
        self.ey = -UP if ey is None else np.asarray(ey, float)
        self.zrange = zrange

    def quads(self, t):
        if self.tex is None:
            self.tex = self.tex_fn()
        s = self.tex.s
        return [(self.tex, self.O, self.ex * s, self.ey * s)]


class _Vehicle:
    """A box moving along heading h (unit, horizontal) at speed v from ground centre p0."""

    def __init__(self, kind, p0, heading, speed, size, faces_fn, length_for_z):
        self.kind, self.p0 = kind, np.asarray(p0, float)
        self.h = np.asarray(heading, float)
        self.v = speed
        self.w, self.height, self.l = size
        self.faces_fn, self.faces = faces_fn, None
        self.zpad = length_for_z

    def centre(self, t):
        return self.p0 + self.h * self.v * t

    def zspan(self, t):
        z = self.centre(t)[2]
        return z - self.zpad, z + self.zpad

    def quads(self, t, cam_pos=None):
        if self.faces is None:
            self.faces = self.faces_fn()
        back, front, side = self.faces
        h, r = self.h, np.array([self.h[2], 0.0, -self.h[0]])
        c = self.centre(t)
        top = UP * self.height
        w2, l2 = self.w / 2, self.l / 2
        s = back.s
        out = []
        faces = [
            (back, c - h * l2 - r * w2 + top, r, -h),
            (front, c + h * l2 + r * w2 + top, -r, h),
            (side, c + r * w2 - h * l2 + top, h, r),
            (("flip", side), c - r * w2 + h * l2 + top, -h, -r),
        ]
        for tex, O, ex, normal in faces:
            if cam_pos is not None:
                centre = O + ex * (self.l if tex is side or isinstance(tex, tuple) else self.w) / 2
                if np.dot(normal, cam_pos - centre) <= 0:
                    continue
            if isinstance(tex, tuple):
                tex = self._flipped()
            out.append((tex, O, ex * s, -UP * s))
        return out

    def _flipped(self):
        if not hasattr(self, "_flip"):
            side = self.faces[2]
            self._flip = Texture(side.rgb[:, ::-1], side.lab[:, ::-1], side.s)
        return self._flip


class _Walker:
    """A person (or a rider on a two-wheeler) as articulated quads in a plane facing the camera.

    The plane's right axis is +X. side=True: seen from the side, moving along +-X, limbs swing
    in the plane; side=False: seen from front/back moving along +-Z, legs lift (foreshortened).
    """

    def __init__(self, rng, s, p0, vel, side, rider=None):
        self.p0 = np.asarray(p0, float)
        self.vel = np.asarray(vel, float)
        self.side = side
        self.rider = rider  # None, BICYCLE or MOTORCYCLE
        self.rng_seed = int(rng.integers(1 << 31))
        self.s = s
        self.parts = None
        self.height = rng.uniform(1.6, 1.9) if rider is None else rng.uniform(1.65, 1.85)
        speed = float(np.linalg.norm(vel))
        if rider is None:
            self.freq = 0.9 + 0.35 * speed if speed > 0 else 0.0
        else:
            self.freq = 0.0 if rider == MOTORCYCLE else speed / 2.2 / 2.0  # pedalling rev/s
        self.phase = rng.uniform(0, 2 * math.pi)
        self.facing = 1.0 if (vel[0] >= 0) else -1.0
        self.zpad = 1.5

    def zspan(self, t):
        z = self.p0[2] + self.vel[2] * t
        return z - self.zpad, z + self.zpad

    def _build(self):
        rng = np.random.default_rng(self.rng_seed)
        s = self.s
        H = self.height
        lab = PERSON if self.rider is None else RIDER
        shirt = _jitter(rng, CLOTH_COLOURS[rng.integers(len(CLOTH_COLOURS))], 15)
        trousers = _jitter(rng, CLOTH_COLOURS[rng.integers(len(CLOTH_COLOURS))], 15)
        skin = _jitter(rng, SKIN_COLOURS[rng.integers(len(SKIN_COLOURS))], 8)
        hair = _jitter(rng, (50, 35, 25), 20)
        self.hip = 0.52 * H
        self.shoulder = 0.82 * H
        tw = (0.28 if self.side else 0.42) * H / 1.75
        # torso + head, drawn with the hip at the bottom
        bw = tw + 0.1
        c = _Canvas(bw, H - self.hip + 0.05, s, shirt, rng, label=TRANSPARENT, noise=10)
        th = H - self.hip + 0.05
        head_r = 0.11 * H / 1.75
        c.rect((bw - tw) / 2, 2 * head_r + 0.04, (bw + tw) / 2, th, label=lab)
        c.rect((bw - 0.07) / 2, 2 * head_r - 0.02, (bw + 0.07) / 2, 2 * head_r + 0.1, rgb=skin,
               label=lab)
        c.circle(bw / 2, head_r, head_r, rgb=skin, label=lab)
        c.rect(bw / 2 - head_r, 0, bw / 2 + head_r, head_r * 0.7, rgb=hair)
        c.lab[: int(head_r * 0.3 / s)] = np.where(c.lab[: int(head_r * 0.3 / s)] == lab, lab,
                                                 TRANSPARENT)
        if rng.random() < 0.4:  # bag / backpack
            c.rect((bw - tw) / 2, th * 0.45, (bw + tw) / 2, th * 0.75,
                   rgb=_jitter(rng, (80, 60, 40), 30))
        torso = c.texture()
        lw = 0.13 * H / 1.75
        leg_len = self.hip
        cl = _Canvas(lw, leg_len, s, trousers, rng, label=lab, noise=8)
        cl.rect(0, leg_len - 0.08, lw, leg_len, rgb=(30, 30, 30))  # shoe
        leg = cl.texture()
        aw = 0.08 * H / 1.75
        arm_len = 0.34 * H
        ca = _Canvas(aw, arm_len, s, shirt * 0.9, rng, label=lab, noise=8)
        ca.rect(0, arm_len - 0.08, aw, arm_len, rgb=skin)
        arm = ca.texture()
        self.parts = dict(torso=torso, leg=leg, arm=arm, tw=tw, bw=bw, lw=lw, aw=aw)
        if self.rider is not None:
            self.vehicle = self._vehicle_texture(rng)

    def _vehicle_texture(self, rng):
        s = self.s
        kind = self.rider
        if self.side:
            L = 1.75 if kind == BICYCLE else 2.1
            Hh = 1.1 if kind == BICYCLE else 1.15
            c = _Canvas(L, Hh, s, (30, 30, 30), rng, label=TRANSPARENT, noise=4)
            r = 0.34 if kind == BICYCLE else 0.31
            for x in (r + 0.02, L - r - 0.02):
                c.circle(x, Hh - r, r, rgb=(25, 25, 25), label=kind)
                if kind == BICYCLE:
                    c.circle(x, Hh - r, r - 0.04, label=TRANSPARENT)
                    c.rect(x - 0.01, Hh - 2 * r + 0.04, x + 0.01, Hh - 0.04, rgb=(150, 150, 150),
                           label=kind)
                else:
                    c.circle(x, Hh - r, r * 0.5, rgb=(120, 120, 120))
            frame_rgb = _jitter(rng, CAR_COLOURS[rng.integers(len(CAR_COLOURS))], 20)
            if kind == BICYCLE:
                pts = [(r, Hh - r), (L * 0.45, Hh - r), (L * 0.4, Hh * 0.35), (L - r, Hh - r),
                       (L * 0.72, Hh * 0.15)]
                for a, b in [(0, 1), (1, 2), (2, 0), (2, 4), (4, 3), (1, 4)]:
                    p, q = pts[a], pts[b]
                    cv2.line(c.rgb, (c.px(p[0]), c.px(p[1])), (c.px(q[0]), c.px(q[1])),
                             tuple(float(v) for v in frame_rgb), max(1, c.px(0.04)))
                    cv2.line(c.lab, (c.px(p[0]), c.px(p[1])), (c.px(q[0]), c.px(q[1])), kind,
                             max(1, c.px(0.04)))
                c.rect(L * 0.33, Hh * 0.3, L * 0.47, Hh * 0.35, rgb=(20, 20, 20), label=kind)
                c.rect(L * 0.7, Hh * 0.08, L * 0.76, Hh * 0.15, rgb=(20, 20, 20), label=kind)
            else:
                c.poly([(r, Hh - r), (L * 0.3, Hh * 0.35), (L * 0.75, Hh * 0.3), (L - r, Hh - r),
                        (L * 0.55, Hh - 0.2)], rgb=frame_rgb, label=kind)
                c.rect(L * 0.25, Hh * 0.3, L * 0.55, Hh * 0.4, rgb=(20, 20, 20), label=kind)
                c.rect(L * 0.4, Hh * 0.6, L * 0.6, Hh - 0.2, rgb=(90, 90, 95), label=kind)
                c.rect(L * 0.78, Hh * 0.1, L * 0.85, Hh * 0.35, rgb=(40, 40, 40), label=kind)
            return c.texture(), L, Hh
        # rear view: narrow wheel, seat, handlebar, (motorcycle: body and tail light)
        W = 0.62 if kind == BICYCLE else 0.8
        Hh = 1.1 if kind == BICYCLE else 1.2
        c = _Canvas(W, Hh, s, (30, 30, 30), rng, label=TRANSPARENT, noise=4)
        tw = 0.05 if kind == BICYCLE else 0.14
        c.rect(W / 2 - tw / 2, Hh - 0.68, W / 2 + tw / 2, Hh, rgb=(25, 25, 25), label=kind)
        c.rect(0, Hh * 0.08, W, Hh * 0.13, rgb=(60, 60, 60), label=kind)  # handlebar
        if kind == MOTORCYCLE:
            c.rect(W * 0.15, Hh * 0.4, W * 0.85, Hh * 0.62,
                   rgb=_jitter(rng, CAR_COLOURS[rng.integers(len(CAR_COLOURS))], 20), label=kind)
            c.rect(W * 0.4, Hh * 0.45, W * 0.6, Hh * 0.5, rgb=(220, 30, 30))
        else:
            c.rect(W / 2 - 0.08, Hh * 0.35, W / 2 + 0.08, Hh * 0.4, rgb=(20, 20, 20), label=kind)
            c.rect(W / 2 - 0.06, Hh * 0.55, W / 2 + 0.06, Hh * 0.6, rgb=(200, 30, 30), label=kind)
        return c.texture(), W, Hh

    def quads(self, t, cam_pos=None):
        if self.parts is None:
            self._build()
        p = self.p0 + self.vel * t
        P = self.parts
        s = self.s
        out = []
        ph = 2 * math.pi * self.freq * t + self.phase

        def place(tex, pivot_uv, pivot_ab, angle=0.0, sy=1.0, mirror=False):
            # texel (u, v) -> plane (a, b) -> world; a along +X (mirrored when facing -X)
            c, sn = math.cos(angle), math.sin(angle)
            # d(a,b)/du and d(a,b)/dv for a rotated, v-scaled part (v points down)
            da_du, db_du = c * s, sn * s
            da_dv, db_dv = sn * s * sy, -c * s * sy
            a0 = pivot_ab[0] - (da_du * pivot_uv[0] + da_dv * pivot_uv[1])
            b0 = pivot_ab[1] - (db_du * pivot_uv[0] + db_dv * pivot_uv[1])
            m = -1.0 if mirror else 1.0
            O = p + XA * (m * a0) + UP * b0
            Ex = XA * (m * da_du) + UP * db_du
            Ey = XA * (m * da_dv) + UP * db_dv
            out.append((tex, O, Ex, Ey))

        mirror = self.side and self.facing < 0
        if self.rider is None:
            hip, sh = self.hip, self.shoulder
            lw, aw = P["lw"], P["aw"]
            if self.side:
                swing = 0.45 * math.sin(ph) if self.freq else 0.0
                legs = [(-swing, 1.0), (swing, 1.0)]
                arms = [(0.6 * swing, 1.0), (-0.6 * swing, 1.0)]
                offs = [0.0, 0.0]
            else:
                lift = 0.5 * (1 + math.sin(ph)) if self.freq else 0.0
                legs = [(0.0, 1 - 0.12 * lift), (0.0, 1 - 0.12 * (1 - lift))]
                arms = [(0.12 * (lift - 0.5), 1.0), (-0.12 * (lift - 0.5), 1.0)]
                offs = [-0.25 * P["tw"], 0.25 * P["tw"]]
            # far arm and leg first (z-buffer ties resolve to the earlier quad)
            for (ang, sy), dx in zip(arms[:1], offs[:1]):
                place(P["arm"], (aw / 2 / s, 0), (dx * 2.2, sh), ang, sy, mirror)
            for (ang, sy), dx in zip(legs, offs):
                place(P["leg"], (lw / 2 / s, 0), (dx, hip), ang, sy, mirror)
            place(P["torso"], (P["bw"] / 2 / s, P["torso"].shape[0]), (0.0, hip - 0.03), 0.0,
                  1.0, mirror)
            for (ang, sy), dx in zip(arms[1:], offs[1:]):
                place(P["arm"], (aw / 2 / s, 0), (dx * 2.2, sh), ang, sy, mirror)
            return self._depth_bias(out)
        # rider on a two-wheeler: vehicle, body seated, pedalling legs
        vtex, VL, VH = self.vehicle
        place(vtex, (vtex.shape[1] / 2, vtex.shape[0]), (0.0, 0.0), 0.0, 1.0, mirror)
        seat = VH * 0.85 if self.rider == BICYCLE else VH * 0.7
        lw = P["lw"]
        if self.side:
            crank = 2 * math.pi * self.freq * t + self.phase if self.freq else self.phase
            for k in (0, 1):
                a = crank + k * math.pi
                ang = 0.5 + 0.35 * math.sin(a) if self.rider == BICYCLE else 0.9
                place(P["leg"], (lw / 2 / s, 0), (-0.15 * VL / 1.75, seat), ang, 0.9, mirror)
            place(P["torso"], (P["bw"] / 2 / s, P["torso"].shape[0]),
                  (-0.18 * VL / 1.75, seat - 0.05),
                  -0.35, 0.95, mirror)
            place(P["arm"], (P["aw"] / 2 / s, 0), (0.05, seat + 0.55), 1.0, 0.9, mirror)
        else:
            crank = 2 * math.pi * self.freq * t + self.phase
            for k, dx in ((0, -0.14), (1, 0.14)):
                lift = 0.5 * (1 + math.sin(crank + k * math.pi)) if self.rider == BICYCLE else 0.4
                place(P["leg"], (lw / 2 / s, 0), (dx, seat), 0.0, 0.85 - 0.25 * lift, False)
            place(P["torso"], (P["bw"] / 2 / s, P["torso"].shape[0]), (0.0, seat - 0.05), 0.0,
                  0.95, False)
            for dx, ang in ((-0.2, -0.25), (0.2, 0.25)):
                place(P["arm"], (P["aw"] / 2 / s, 0), (dx, seat + 0.5), ang, 0.8, False)
        return self._depth_bias(out)

    @staticmethod
    def _depth_bias(out):
        # later parts are nearer the camera by a few millimetres so that they win the z-test
        res = []
        for i, (tex, O, Ex, Ey) in enumerate(out):
            res.append((tex, O - ZA * 0.004 * i, Ex, Ey))
        return res


# ----------------------------------------------------------------------------------------
# The world
# ----------------------------------------------------------------------------------------
class _World:
    def __init__(self, height, width, num_frames, seed, difficulty):
        self.H, self.W, self.T = height, width, num_frames
        self.difficulty = d = difficulty
        self.seed = seed
        rng = self._stream(0)
        self.f = FOCAL_PER_WIDTH * width
        self.cx = width / 2.0 - 0.5
        self.cy = HORIZON_PER_HEIGHT * height - 0.5
        # texel sizes: sharp at ~8 m for small things, capped for big ones
        self.s_small = max(6.0 / self.f, 0.006)
        self.s_big = max(15.0 / self.f, 0.03)
        self.s_vehicle = max(7.0 / self.f, 0.012)
        # ---- camera path
        self.speed = rng.uniform(4.0, 8.0) * d
        self.yaw_amp = math.radians(rng.uniform(1.0, 2.5)) * d
        self.yaw_period = rng.uniform(3.0, 6.0)
        self.yaw_phase = rng.uniform(0, 2 * math.pi)
        self.lat_amp = rng.uniform(0.1, 0.5) * min(d, 2.0)
        self.lat_period = rng.uniform(3.0, 7.0)
        self.lat_phase = rng.uniform(0, 2 * math.pi)
        self.x0 = LANE_W / 2
        self.duration = (num_frames - 1) / FPS
        z_end = self.speed * self.duration
        # the street reaches beyond the view distance (260 m) at the clip's last frame, plus what
        # pedestrians walking towards the camera cover meanwhile
        self.z_lo, self.z_hi = -40.0, z_end + VIEW_DISTANCE + 10.0 + 2.0 * d * self.duration
        # ---- street layout
        self.parking = True
        self.road_half = LANE_W + 2.2
        self.sidewalk = rng.uniform(2.5, 4.5)
        self.kerb = self.road_half + self.sidewalk
        self.crosswalk_z = rng.uniform(22.0, 34.0)
        self.ground_tex = _periodic_noise(rng, 256, 0.08)
        self.ground_fine = _periodic_noise(rng, 256, 0.35)
        self.sky_tex = self._sky_texture(rng)
        self.asphalt = _jitter(rng, np.array([92.0, 92.0, 96.0]) + rng.uniform(-12, 12), 4)
        self.pavement = _jitter(rng, (150, 140, 138), 12)
        self.grass = _jitter(rng, (95, 125, 60), 12)
        self.sun = {"left": rng.uniform(0.75, 1.0), "right": rng.uniform(0.9, 1.15)}
        self.objects = []  # each has quads(t, [cam_pos]) and zspan(t) or zrange
        self.lots = {}
        # Every part of the street draws from its own random stream and is laid out in order
        # along the road, so a longer clip only adds street at the far end: the first k frames
        # of a clip equal a k-frame clip with the same seed, size and difficulty.
        for side in (-1, 1):
            self._stream(1 if side < 0 else 2)
            self._build_side(side)
        self._stream(3)
        self._build_street_furniture()
        self._build_traffic()
        self._noise_bank = None

    def _stream(self, k):
        """Switches self.rng to random stream k of this clip's seed (and returns it)."""
        self.rng = np.random.default_rng(np.random.SeedSequence([self.seed, 20240517, k]))
        return self.rng

    # -------------------------------------------------------------------------------------
    def _sky_texture(self, rng):
        n = 512
        clouds = _periodic_noise(rng, n, 0.02) + 0.5 * _periodic_noise(rng, n, 0.08)
        cover = rng.uniform(-0.1, 0.4)
        c = np.clip((clouds - 0.1 + cover) * 2.0, 0, 1)
        blue = np.array([120, 160, 210], np.float32) + rng.uniform(-15, 15, 3)
        white = np.array([235, 238, 242], np.float32)
        return (blue * (1 - c[..., None]) + white * c[..., None]).astype(np.float32)

    def camera(self, t):
        """Camera at time t seconds."""
        z = self.speed * t
        x = self.x0 + self.lat_amp * math.sin(2 * math.pi * t / self.lat_period + self.lat_phase)
        x -= self.lat_amp * math.sin(self.lat_phase)
        yaw = self.yaw_amp * (math.sin(2 * math.pi * t / self.yaw_period + self.yaw_phase)
                              - math.sin(self.yaw_phase) * 0.5)
        return _Camera(np.array([x, CAMERA_HEIGHT, z]), yaw, self.f, self.cx, self.cy)

    # -------------------------------------------------------------------------------------
    def _child(self):
        return np.random.default_rng(self.rng.integers(1 << 62))

    def _build_side(self, side):
        """Lots along one side: buildings (facade + side wall) or parks (fence/wall/hedge,
        terrain, trees)."""
        rng = self.rng
        sun = self.sun["right" if side > 0 else "left"]
        z = self.z_lo
        bounds, kinds = [], []
        guaranteed = True
        pending_fence = False
        kb = self.kerb
        while z < self.z_hi:
            length = rng.uniform(10.0, 28.0)
            park = rng.random() < 0.3
            front = ("fence", "wall", "hedge")[rng.integers(3)]
            tall = False
            # the first lot in view of frame 0 on each side is a park with a tall wall (left) or
            # fence (right), terrain and trees, so that these classes are in every clip
            if guaranteed and z + length > 16.0:
                zs = rng.uniform(16.0, 22.0)
                if zs - z > 1.0:
                    length = zs - z
                    park = False
                else:
                    guaranteed = False
                    park, tall = True, True
                    length = rng.uniform(10.0, 15.0)
                    front = "wall"
                    if side < 0:  # the next lot on the left is a park with a fence
                        pending_fence = True
            elif pending_fence:
                pending_fence = False
                park, tall, front = True, True, "fence"
                length = rng.uniform(10.0, 15.0)
            bounds.append(z)
            kinds.append(park)
            if park:
                self._park(side, z, length, sun, kb, force=front, tall=tall)
            else:
                setback = rng.uniform(0.0, 2.0)
                hgt = rng.uniform(10.0, 22.0)
                self._building(side, z, length, hgt, kb + setback, sun)
            z += length
        bounds.append(z)
        self.lots[side] = (np.array(bounds), np.array(kinds, bool))

    def _building(self, side, z0, length, height, xb, sun):
        seed = int(self.rng.integers(1 << 62))
        s = self.s_big

        def facade():
            return _facade_texture(np.random.default_rng(seed), length, height, s, sun)

        if side > 0:
            O, ex = (xb, height, z0 + length), -ZA
        else:
            O, ex = (-xb, height, z0), ZA
        self.objects.append(_Static(facade, O, ex, (z0, z0 + length)))
        depth = 12.0

        def sidewall():
            return _plain_wall_texture(np.random.default_rng(seed + 1), depth, height, s,
                                       sun * 0.8, BUILDING,
                                       base=FACADE_COLOURS[seed % len(FACADE_COLOURS)])
        ox = xb if side > 0 else -xb - depth
        self.objects.append(_Static(sidewall, (ox, height, z0), XA, (z0, z0)))

    def _park(self, side, z0, length, sun, kb, force, tall=False):
        rng = self.rng
        s = self.s_big
        seed = int(rng.integers(1 << 62))
        x_front = kb + 0.3
        O = (x_front * side, 0.0, z0 + length if side > 0 else z0)
        ex = -ZA if side > 0 else ZA
        if force == "fence":
            hgt = rng.uniform(1.2, 2.0) if not tall else rng.uniform(1.8, 2.4)
            fn = lambda: _fence_texture(np.random.default_rng(seed), length, hgt, min(s, 0.02), sun)
        elif force == "wall":
            hgt = rng.uniform(0.9, 2.2) if not tall else rng.uniform(2.0, 2.6)
            fn = lambda: _plain_wall_texture(np.random.default_rng(seed), length, hgt, s, sun, WALL)
        else:
            hgt = rng.uniform(0.8, 1.6)
            fn = lambda: _hedge_texture(np.random.default_rng(seed), length, hgt, s, sun)
        self.objects.append(_Static(fn, (O[0], hgt, O[2]), ex, (z0, z0 + length)))
        # trees in the park, and a building far behind
        for _ in range(int(length / 6.0) + 1):
            zt = rng.uniform(z0 + 1.0, z0 + length - 1.0)
            xt = side * (x_front + rng.uniform(2.0, 12.0))
            self._tree(xt, zt)
        hb = rng.uniform(12.0, 25.0)
        self._building(side, z0 - 5.0, length + 10.0, hb, x_front + rng.uniform(18.0, 30.0),
                       sun * 0.9)

    def _tree(self, x, z):
        seed = int(self.rng.integers(1 << 62))
        s = self.s_big * 0.8
        holder = {}

        def quad_tex():
            tex, w, h = _tree_texture(np.random.default_rng(seed), s)
            holder["wh"] = (w, h)
            return tex

        obj = _Static(quad_tex, (0, 0, z), XA, (z, z))
        # the texture's size is known only once drawn: position it lazily
        orig = obj.quads

        def quads(t, obj=obj, orig=orig):
            if obj.tex is None:
                obj.tex = quad_tex()
                w, h = holder["wh"]
                obj.O = np.array([x - w / 2, h, z])
            return orig(t)
        obj.quads = quads
        self.objects.append(obj)

    def _pole(self, x, z, height, attach=None):
        """A pole with optional traffic light ('light') or sign ('sign') on it."""
        seed = int(self.rng.integers(1 << 62))
        s = self.s_small
        w = 0.16 if attach != "sign" else 0.08
        self.objects.append(_Static(
            lambda: _pole_texture(np.random.default_rng(seed), s, height, w),
            (x - w / 2, height, z), XA, (z, z)))
        if attach == "light":
            self.objects.append(_Static(
                lambda: _traffic_light_texture(np.random.default_rng(seed + 1), s),
                (x - 0.18, height - 0.1, z - 0.12), XA, (z, z)))
        elif attach == "sign":
            self.objects.append(_Static(
                lambda: _sign_texture(np.random.default_rng(seed + 2), s),
                (x - 0.35, height - 0.05, z - 0.05), XA, (z, z)))
        elif attach == "lamp":
            arm_len = 1.4
            sign = -1.0 if x > 0 else 1.0
            self.objects.append(_Static(
                lambda: _pole_texture(np.random.default_rng(seed + 3), s, 0.1, arm_len),
                (x, height, z - 0.01), XA * sign, (z, z)))

    def _build_street_furniture(self):
        rng = self.rng
        kb = self.road_half + 0.4
        # guaranteed in view of frame 0: traffic lights at the crosswalk, signs, poles
        cz = self.crosswalk_z
        self._pole(kb, cz - 1.5, rng.uniform(5.0, 5.8), "light")
        self._pole(-kb, cz + 1.5, rng.uniform(5.0, 5.8), "light")
        self._pole(kb + 0.2, rng.uniform(10.0, 16.0), rng.uniform(2.6, 3.0), "sign")
        self._pole(-kb, rng.uniform(12.0, 20.0), rng.uniform(2.6, 3.0), "sign")
        z = self.z_lo + rng.uniform(0, 10)
        while z < self.z_hi:
            side = 1 if rng.random() < 0.5 else -1
            r = rng.random()
            attach = "sign" if r < 0.3 else ("lamp" if r < 0.7 else None)
            self._pole(side * (kb + rng.uniform(0, 0.3)), z,
                       rng.uniform(2.6, 3.0) if attach == "sign" else rng.uniform(5, 8), attach)
            if rng.random() < 0.3:
                self._tree(side * (kb + 0.5), z + rng.uniform(3, 6))
            z += rng.uniform(8.0, 20.0) / max(0.5, min(self.difficulty, 2.0)) ** 0.3

    def _vehicle(self, kind, x, z, heading, speed):
        rng = self.rng
        if kind == CAR:
            size = (rng.uniform(1.7, 1.9), rng.uniform(1.4, 1.6), rng.uniform(4.0, 4.8))
        elif kind == TRUCK:
            size = (2.45, rng.uniform(3.0, 3.6), rng.uniform(7.0, 9.5))
        elif kind == BUS:
            size = (2.5, 3.1, rng.uniform(11.0, 13.0))
        else:
            size = (2.5, 3.4, rng.uniform(25.0, 32.0))
        seed = int(rng.integers(1 << 62))
        s = self.s_vehicle if kind == CAR else self.s_big * 0.7
        sun = {"back": 0.95, "front": 1.0, "side": self.sun["right" if x < 0 else "left"] * 0.95}
        def fn():
            return _box_faces(np.random.default_rng(seed), kind, size[0], size[1], size[2], s, sun)
        v = _Vehicle(kind, (x, 0.0, z), (0.0, 0.0, heading), speed, size, fn, size[2] / 2 + 1)
        self.objects.append(v)
        return size[2]

    def _build_traffic(self):
        d = self.difficulty
        dens = max(0.0, min(d, 3.0))
        T = self.duration
        # same-direction lane ahead of the ego car: a car, then a tram, then cars and trucks; the
        # lane is never slower than the camera, so it never runs into the lead car
        rng = self._stream(4)
        v_lane = self.speed + rng.uniform(0.0, 3.0) * d
        z = rng.uniform(14.0, 22.0)
        kinds = [CAR, TRAIN]
        i = 0
        while z < self.z_hi + v_lane * T:
            k = kinds[i] if i < len(kinds) else (CAR if rng.random() < 0.85 else TRUCK)
            L = self._vehicle(k, LANE_W / 2 + rng.uniform(-0.15, 0.15), 0.0, 1.0, v_lane)
            self.objects[-1].p0[2] = z + L / 2
            z += L + (rng.uniform(6.0, 12.0) if i == 0 else rng.uniform(6.0, 25.0) / max(dens, 0.3))
            i += 1
        # oncoming lane: a bus first, then cars, trucks, buses, trams
        rng = self._stream(5)
        v_on = rng.uniform(5.0, 10.0) * d
        z = rng.uniform(28.0, 38.0)
        first = True
        while z < self.z_hi + v_on * T + 50:
            k = BUS if first else (CAR if rng.random() < 0.8 else
                                   [TRUCK, BUS, TRAIN][rng.integers(3)])
            first = False
            L = self._vehicle(k, -LANE_W / 2 + rng.uniform(-0.15, 0.15), 0.0, -1.0, v_on)
            self.objects[-1].p0[2] = z + L / 2
            z += L + rng.uniform(5.0, 30.0) / max(dens, 0.3)
        # a delivery truck parked at the right kerb; no parking on the left near the start
        rng = self._stream(6)
        truck_z = rng.uniform(34.0, 46.0)
        truck_l = self._vehicle(TRUCK, self.road_half - 1.3, truck_z, 1.0, 0.0)
        keep_out = {1: (truck_z - truck_l / 2 - 3.0, truck_z + truck_l / 2 + 3.0),
                    -1: (-1.0, 70.0)}
        # parked cars (static) along both kerbs
        for side in (-1, 1):
            rng = self._stream(7 if side < 0 else 8)
            z = self.z_lo + rng.uniform(0, 8)
            lo, hi = keep_out[side]
            while z < self.z_hi:
                if rng.random() < 0.7 and not lo < z < hi:
                    self._vehicle(CAR, side * (self.road_half - 1.1), z, 1.0, 0.0)
                z += rng.uniform(5.5, 9.0)
        # pedestrians on the sidewalks
        rng = self._stream(9)
        sw_lo, sw_hi = self.road_half + 0.5, self.kerb - 0.4
        guaranteed = True
        z = self.z_lo
        while z < self.z_hi:
            side = 1 if rng.random() < 0.5 else -1
            zz = z
            if guaranteed:
                side, zz, guaranteed = 1, rng.uniform(9.0, 15.0), False
            v = rng.uniform(0.9, 1.7) * d * (1 if rng.random() < 0.5 else -1)
            self.objects.append(_Walker(self._child(), self.s_small,
                                        (side * rng.uniform(sw_lo, sw_hi), 0, zz),
                                        (0, 0, v), side=False))
            z += rng.uniform(3.0, 12.0) / max(dens, 0.2)
        # people crossing at the crosswalk (side view, entering from the kerbs)
        rng = self._stream(10)
        n_cross = 1 + int(rng.poisson(2.0 * dens))
        for k in range(n_cross):
            direction = 1 if rng.random() < 0.5 else -1
            speed = rng.uniform(1.1, 1.6) * d
            x_start = -direction * rng.uniform(self.road_half - 2.0, self.kerb + 3.0)
            self.objects.append(_Walker(self._child(), self.s_small,
                                        (x_start, 0, self.crosswalk_z + rng.uniform(-1.2, 1.2)),
                                        (direction * speed, 0, 0), side=True))
        # a crossing cyclist (side view) now and then
        if rng.random() < 0.5 * dens:
            direction = 1 if rng.random() < 0.5 else -1
            v = rng.uniform(3.0, 5.0) * d
            self.objects.append(_Walker(self._child(), self.s_small,
                                        (-direction * (self.kerb + 2), 0, self.crosswalk_z + 3.0),
                                        (direction * v, 0, 0), side=True, rider=BICYCLE))
        # riders: a bicycle ahead at the right edge of the lane and an oncoming motorcycle in
        # view at frame 0, then more along the road (denser with difficulty)
        rng = self._stream(11)
        specs = [(BICYCLE, rng.uniform(11.0, 18.0), 1), (MOTORCYCLE, rng.uniform(12.0, 22.0), -1)]
        for kind, zr, direction in specs:
            self._rider(rng, kind, zr, direction, v_on)
        z = 25.0 + rng.exponential(80.0 / max(dens, 0.1))
        while z < self.z_hi:
            self._rider(rng, BICYCLE if rng.random() < 0.6 else MOTORCYCLE, z, 1, v_on)
            z += rng.exponential(80.0 / max(dens, 0.1))

    def _rider(self, rng, kind, zr, direction, v_on):
        """A cyclist or motorcyclist riding along the road; direction -1: in the oncoming lane.
        Same-direction riders keep to the gap between the lane's cars and the parked cars."""
        d = self.difficulty
        if direction < 0:
            x, v = -LANE_W / 2 + 0.4, -v_on
        elif kind == BICYCLE:
            x, v = LANE_W - 0.25 + rng.uniform(-0.05, 0.05), rng.uniform(3.5, 6.5) * d
        else:
            x, v = LANE_W - 0.25, rng.uniform(6.0, 11.0) * d
        self.objects.append(_Walker(self._child(), self.s_small, (x, 0, zr), (0, 0, v),
                                        side=False, rider=kind))

    # -------------------------------------------------------------------------------------
    # Rendering
    # -------------------------------------------------------------------------------------
    def _ground_material(self, X, Z, ax):
        """Label and base colour index per ground point: 0 road, 1 sidewalk, 2 terrain."""
        mat = np.where(ax < self.road_half, 0, 1).astype(np.uint8)
        beyond = ax >= self.kerb
        if beyond.any():
            for side in (-1, 1):
                bounds, kinds = self.lots[side]
                sel = beyond & ((X > 0) if side > 0 else (X < 0))
                idx = np.clip(np.searchsorted(bounds, Z[sel], side="right") - 1, 0, len(kinds) - 1)
                mat[sel] = np.where(kinds[idx], 2, 1)
        return mat

    def _render_ground(self, cam, cam_prev, image, label, depth, flow, time_s=0.0):
        H, W = self.H, self.W
        f = self.f
        v0 = int(math.floor(self.cy + f * CAMERA_HEIGHT / FAR)) + 1
        v0 = max(v0, 0)
        if v0 >= H:
            return v0
        f32 = np.float32
        b = ((np.arange(v0, H, dtype=np.float64) - self.cy) / f)
        a = ((np.arange(W, dtype=np.float64) - self.cx) / f)
        t = (CAMERA_HEIGHT / b).astype(f32)                          # depth per row
        cy_, sy_ = math.cos(cam.yaw), math.sin(cam.yaw)
        tc = t[:, None]
        X = (tc * (cy_ * a + sy_).astype(f32)[None, :]) + f32(cam.pos[0])
        Z = (tc * (-sy_ * a + cy_).astype(f32)[None, :]) + f32(cam.pos[2])
        ax = np.abs(X)
        mat = self._ground_material(X, Z, ax)
        lab = np.array([ROAD, SIDEWALK, TERRAIN], np.uint8)[mat]
        # coarse and fine noise sampled in world coordinates (periodic tiles)
        mx = X * f32(1 / 0.6)
        mz = Z * f32(1 / 0.6)
        coarse = cv2.remap(self.ground_tex, mx, mz, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        fine = cv2.remap(self.ground_fine, mx * f32(12.0), mz * f32(12.0), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_WRAP)
        foot = (t / f32(f))[:, None]                                 # metres per pixel
        fine_w = np.clip(f32(1.5) - foot * f32(20.0), 0.0, 1.0)
        amp = np.array([0.14, 0.16, 0.40], f32)[mat]
        shade = (coarse * f32(0.6) + fine * fine_w * f32(0.8)) * amp + f32(1.0)
        self._vehicle_shadows(cam, time_s, v0, X, Z, shade)
        # markings: centre dashes, edge lines, crosswalk; paving joints on sidewalks
        inv_fp = f32(1.0) / np.maximum(foot, f32(1e-4))

        def line(coord, centre, half):
            return np.clip((f32(half) - np.abs(coord - f32(centre))) * inv_fp + f32(0.5), 0.0, 1.0)

        road = mat == 0
        paint = line(X, 0.0, 0.07) * (np.mod(Z, f32(9.0)) < 3.0) + line(ax, LANE_W, 0.08)
        if self.parking:
            paint += line(ax, LANE_W + 2.2, 0.06) * (np.mod(Z, f32(6.0)) < 0.15)
        zc = Z - f32(self.crosswalk_z)
        paint += (np.abs(zc) < 2.0) & (np.mod(X + f32(0.25), f32(1.0)) < 0.5)
        paint = np.minimum(paint, f32(1.0)) * road * f32(0.85)
        side = mat == 1
        joint = np.maximum(line(np.mod(X, f32(0.6)), 0.3, 0.015),
                           line(np.mod(Z, f32(0.6)), 0.3, 0.015))
        shade *= f32(1.0) - f32(0.3) * joint * (side & (foot < 0.05))
        kerb = line(ax, self.road_half + 0.08, 0.08) * side * f32(0.6)
        haze = np.exp(-t / f32(350.0))[:, None]
        base = np.stack([self.asphalt, self.pavement, self.grass]).astype(f32)
        white = np.array([225, 225, 220], f32)
        kerb_rgb = np.array([190, 190, 185], f32)
        haze_rgb = np.array([185, 195, 205], f32)
        out = image[v0:]
        keep = (f32(1.0) - paint - kerb) * haze
        keep *= shade
        paint *= haze
        kerb *= haze
        fog = f32(1.0) - haze
        for ch in range(3):
            col = np.take(base[:, ch], mat)
            col *= keep
            col += paint * white[ch]
            col += kerb * kerb_rgb[ch]
            col += fog * haze_rgb[ch]
            np.clip(col, 0, 255, out=col)
            out[..., ch] = col
        label[v0:] = lab
        depth[v0:] = tc
        if cam_prev is not None:
            # the ground plane maps between the two views by a homography
            origin = np.zeros(3)
            G = cam_prev.homography(origin, XA, ZA) @ _inv3(cam.homography(origin, XA, ZA))
            self._apply_homography_flow(G, v0, H, 0, W, flow, None)
        return v0

    def _vehicle_shadows(self, cam, t, v0, X, Z, shade):
        """Darkens the ground under every vehicle (soft contact shadow, sky light occluded)."""
        R = cam.R
        for obj in self.objects:
            if not isinstance(obj, _Vehicle):
                continue
            c = obj.centre(t)
            dz = c[2] - cam.pos[2]
            if dz < -obj.l or dz > 120.0:
                continue
            hw, hl = obj.w / 2 + 0.35, obj.l / 2 + 0.45
            corners = [c + np.array([sx * hw, 0.0, sz * hl]) for sx in (-1, 1) for sz in (-1, 1)]
            pc = np.array([(p - cam.pos) @ R.T for p in corners])
            if (pc[:, 2] <= NEAR).any():
                continue
            xs = cam.f * pc[:, 0] / pc[:, 2] + cam.cx
            ys = cam.f * pc[:, 1] / pc[:, 2] + cam.cy
            x0, x1 = max(0, int(xs.min())), min(self.W, int(math.ceil(xs.max())) + 1)
            y0, y1 = max(v0, int(ys.min())), min(self.H, int(math.ceil(ys.max())) + 1)
            if x0 >= x1 or y0 >= y1:
                continue
            sx = np.abs(X[y0 - v0:y1 - v0, x0:x1] - np.float32(c[0])) / np.float32(hw)
            sz = np.abs(Z[y0 - v0:y1 - v0, x0:x1] - np.float32(c[2])) / np.float32(hl)
            d = np.maximum(sx, sz)
            shade[y0 - v0:y1 - v0, x0:x1] *= np.float32(1.0) - np.float32(0.5) * np.clip(
                (np.float32(1.0) - d) * np.float32(4.0), 0.0, 1.0)

    def _render_sky(self, cam, cam_prev, v1, image, label, depth, flow):
        """Fills the pixels above the horizon that no quad covered (depth still infinite)."""
        if v1 <= 0:
            return
        ys, xs = np.nonzero(np.isinf(depth[:v1]))
        if ys.size == 0:
            return
        f32 = np.float32
        a = (xs.astype(f32) - f32(self.cx)) / f32(self.f)
        b = (ys.astype(f32) - f32(self.cy)) / f32(self.f)
        az = f32(cam.yaw) + np.arctan(a)
        el = -np.arctan2(b, np.sqrt(f32(1.0) + a * a))
        n = self.sky_tex.shape[0]
        N, C = ys.size, 4096
        rows = -(-N // C)
        mx = np.zeros(rows * C, f32)
        my = np.zeros(rows * C, f32)
        mx[:N] = az * f32(n / (2 * math.pi) * 3.0)
        my[:N] = el * f32(n / (math.pi / 2) * 1.5)
        col = cv2.remap(self.sky_tex, mx.reshape(rows, C), my.reshape(rows, C), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_WRAP).reshape(-1, 3)[:N]
        grad = np.clip(el, 0, 1.0)[:, None]
        col = col * (f32(0.92) + f32(0.25) * grad) + np.array([10, 7.5, 2.5], f32) * (1 - grad)
        image[ys, xs] = np.clip(col, 0, 255).astype(np.uint8)
        label[ys, xs] = SKY
        if cam_prev is not None:
            # pure rotation: p_prev = K R_prev R^T K^-1 p
            G = cam_prev.K @ cam_prev.R @ cam.R.T @ _inv3(cam.K)
            G = (G / G[2, 2]).astype(f32)
            xf, yf = xs.astype(f32), ys.astype(f32)
            qz = G[2, 0] * xf + G[2, 1] * yf + G[2, 2]
            flow[ys, xs, 0] = xf - (G[0, 0] * xf + G[0, 1] * yf + G[0, 2]) / qz
            flow[ys, xs, 1] = yf - (G[1, 0] * xf + G[1, 1] * yf + G[1, 2]) / qz

    def _apply_homography_flow(self, G, y0, y1, x0, x1, flow, mask):
        """flow = p - G p over the box (where mask), G mapping this frame's pixels to the last's."""
        f32 = np.float32
        xs = np.arange(x0, x1, dtype=f32)[None, :]
        ys = np.arange(y0, y1, dtype=f32)[:, None]
        G = G / G[2, 2] if abs(G[2, 2]) > 1e-12 else G
        g = G.astype(f32)
        qz = g[2, 0] * xs + (g[2, 1] * ys + g[2, 2])
        qz = np.where(np.abs(qz) < 1e-9, f32(1e-9), qz)
        rz = f32(1.0) / qz
        view = flow[y0:y1, x0:x1]
        dx = xs - (g[0, 0] * xs + (g[0, 1] * ys + g[0, 2])) * rz
        dy = ys - (g[1, 0] * xs + (g[1, 1] * ys + g[1, 2])) * rz
        if mask is None:
            view[..., 0] = dx
            view[..., 1] = dy
        else:
            view[..., 0][mask] = dx[mask]
            view[..., 1][mask] = dy[mask]

    def _render_quad(self, cam, cam_prev, quad, quad_prev, image, label, depth, flow):
        tex, O, Ex, Ey = quad
        th, tw = tex.shape
        R = cam.R
        # corners of the texel rectangle (texel centres at integers, edges at -0.5)
        corners = [O + Ex * u + Ey * v for u, v in ((-0.5, -0.5), (tw - 0.5, -0.5),
                                                     (tw - 0.5, th - 0.5), (-0.5, th - 0.5))]
        pc = [(c - cam.pos) @ R.T for c in corners]
        zs = [p[2] for p in pc]
        if max(zs) <= NEAR:
            return
        # clip the polygon against the near plane, project, take the bounding box
        poly = []
        for i in range(4):
            p, q = pc[i], pc[(i + 1) % 4]
            if p[2] > NEAR:
                poly.append(p)
            if (p[2] > NEAR) != (q[2] > NEAR):
                k = (NEAR - p[2]) / (q[2] - p[2])
                poly.append(p + k * (q - p))
        pts = np.array([[cam.f * p[0] / p[2] + cam.cx, cam.f * p[1] / p[2] + cam.cy]
                        for p in poly])
        x0 = max(0, int(math.floor(pts[:, 0].min())))
        x1 = min(self.W, int(math.ceil(pts[:, 0].max())) + 1)
        y0 = max(0, int(math.floor(pts[:, 1].min())))
        y1 = min(self.H, int(math.ceil(pts[:, 1].max())) + 1)
        if x0 >= x1 or y0 >= y1:
            return
        Hm = cam.homography(O, Ex, Ey)
        T = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1.0]])
        Hs = T @ Hm
        bw, bh = x1 - x0, y1 - y0
        lab_w = cv2.warpPerspective(tex.lab, Hs, (bw, bh), flags=cv2.INTER_NEAREST,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=TRANSPARENT)
        opaque = lab_w != TRANSPARENT
        if not opaque.any():
            return
        Hinv = _inv3(Hm)
        xs = np.arange(x0, x1, dtype=np.float64)[None, :]
        ys = np.arange(y0, y1, dtype=np.float64)[:, None]
        w3 = Hinv[2, 0] * xs + Hinv[2, 1] * ys + Hinv[2, 2]
        with np.errstate(divide="ignore"):
            d = (1.0 / w3).astype(np.float32)
        mask = opaque & (d > NEAR) & (d < depth[y0:y1, x0:x1])
        if not mask.any():
            return
        # mip level: texels per pixel at the nearest visible depth
        zmin = float(d[mask].min())
        tpp = zmin / (cam.f * tex.s)
        lvl = int(max(0, math.floor(math.log2(tpp)))) if tpp > 1.0 else 0
        rgb_src, lvl = tex.level(lvl)
        if lvl:
            k = 2.0 ** lvl
            S = np.array([[k, 0, k / 2 - 0.5], [0, k, k / 2 - 0.5], [0, 0, 1.0]])
            Hs = Hs @ S
        rgb_w = cv2.warpPerspective(rgb_src, Hs, (bw, bh), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
        image[y0:y1, x0:x1][mask] = rgb_w[mask]
        label[y0:y1, x0:x1][mask] = lab_w[mask]
        depth[y0:y1, x0:x1][mask] = d[mask]
        if quad_prev is not None:
            Hp = cam_prev.homography(quad_prev[1], quad_prev[2], quad_prev[3])
            self._apply_homography_flow(Hp @ Hinv, y0, y1, x0, x1, flow, mask)

    def _visible(self, obj, t, cam):
        if hasattr(obj, "zspan"):
            zl, zh = obj.zspan(t)
        else:
            zl, zh = obj.zrange
        return zh > cam.pos[2] + NEAR and zl < cam.pos[2] + VIEW_DISTANCE

    @staticmethod
    def _release(obj, t, cam):
        """Frees the textures of an object left behind the camera (long clips in bounded memory);
        they are redrawn identically from their seed should it come back into view."""
        zl, zh = obj.zspan(t) if hasattr(obj, "zspan") else obj.zrange
        if zh > cam.pos[2] - 20.0:
            return
        if isinstance(obj, _Static):
            obj.tex = None
        elif isinstance(obj, _Vehicle):
            obj.faces = None
            obj.__dict__.pop("_flip", None)
        elif isinstance(obj, _Walker):
            obj.parts = None

    def render(self, index):
        H, W = self.H, self.W
        t = index / FPS
        cam = self.camera(t)
        cam_prev = self.camera((index - 1) / FPS) if index > 0 else None
        image = np.empty((H, W, 3), np.uint8)
        label = np.empty((H, W), np.uint8)
        depth = np.empty((H, W), np.float32)
        flow = np.zeros((H, W, 2), np.float32)
        depth[:] = np.inf
        v0 = self._render_ground(cam, cam_prev, image, label, depth, flow, t)
        tp = (index - 1) / FPS
        for obj in self.objects:
            if not self._visible(obj, t, cam):
                self._release(obj, t, cam)
                continue
            if isinstance(obj, (_Vehicle, _Walker)):
                if isinstance(obj, _Vehicle):
                    quads = obj.quads(t, cam.pos)
                    # the previous frame's faces in the same order
                    prev = obj.quads(tp) if cam_prev is not None else None
                    if prev is not None:
                        prev = [p for p in prev if any(p[0] is q[0] for q in quads)]
                        prev = {id(p[0]): p for p in prev}
                        prev = [prev.get(id(q[0])) for q in quads]
                else:
                    quads = obj.quads(t)
                    prev = obj.quads(tp) if cam_prev is not None else None
            else:
                quads = obj.quads(t)
                prev = quads if cam_prev is not None else None
            for i, q in enumerate(quads):
                self._render_quad(cam, cam_prev, q, prev[i] if prev is not None else None,
                                  image, label, depth, flow)
        self._render_sky(cam, cam_prev, v0, image, label, depth, flow)
        # lens blur: real optics do not alias; edges spread over a pixel or two
        sigma = max(OPTICAL_BLUR_MIN, OPTICAL_BLUR_AT_2048 * self.W / 2048.0)
        image = cv2.GaussianBlur(image, (0, 0), sigma)
        image = self._sensor_noise(image, index)
        if index == 0:
            flow[:] = 0.0
        return Frame(index, image, label, flow)

    def _sensor_noise(self, image, index):
        """Mild photon noise, different in every frame (a real camera's is too)."""
        H, W = self.H, self.W
        if self._noise_bank is None:
            rng = self._stream(12)
            n = np.clip(np.rint(rng.normal(0, 1.6, (H + 32, W + 32, 3)).astype(np.float32)), -6, 6)
            self._noise_bank = (np.maximum(n, 0).astype(np.uint8),
                                np.maximum(-n, 0).astype(np.uint8))
            self._noise_offsets = rng.integers(0, 33, size=(4096, 2))
        oy, ox = self._noise_offsets[index % 4096]
        pos, neg = (b[oy:oy + H, ox:ox + W] for b in self._noise_bank)
        return cv2.subtract(cv2.add(image, np.ascontiguousarray(pos)), np.ascontiguousarray(neg))


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------
def iter_clip(height: int, width: int, num_frames: int, seed: int,
              difficulty: float = 1.0) -> Iterator[Frame]:
    """Renders a clip frame by frame (constant memory for any length and size)."""
    height, width, num_frames, seed, difficulty = _check_args(height, width, num_frames, seed,
                                                              difficulty)
    world = _World(height, width, num_frames, seed, difficulty)
    for i in range(num_frames):
        yield world.render(i)


def generate_clip(height: int, width: int, num_frames: int, seed: int,
                  difficulty: float = 1.0) -> Clip:
    """A whole clip in memory: frames uint8 [T,H,W,3], labels uint8 [T,H,W], flow float32
    [T,H,W,2] (see the module docstring)."""
    height, width, num_frames, seed, difficulty = _check_args(height, width, num_frames, seed,
                                                              difficulty)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    labels = np.empty((num_frames, height, width), np.uint8)
    flow = np.empty((num_frames, height, width, 2), np.float32)
    for fr in iter_clip(height, width, num_frames, seed, difficulty):
        frames[fr.index], labels[fr.index], flow[fr.index] = fr.image, fr.label, fr.flow
    return Clip(frames, labels, flow, seed, difficulty)


# ----------------------------------------------------------------------------------------
# Cityscapes layout, contact sheets, statistics
# ----------------------------------------------------------------------------------------
CITY = "synthtown"
ANNOTATED_FRAME = 19  # Cityscapes annotates frame 19 of each 30-frame snippet


def clip_seed(seed: int, split: str, index: int) -> int:
    """The generate_clip seed of clip `index` of a split (train and val never share a clip)."""
    code = sum((i + 1) * ord(ch) for i, ch in enumerate(split))
    return int(np.random.SeedSequence([int(seed), code, int(index)]).generate_state(1)[0])


def annotated_index(clip_length: int, annotated_frame: int = ANNOTATED_FRAME) -> int:
    """Frame written to leftImg8bit/: `annotated_frame` (19), or the last one of a shorter clip."""
    return min(int(annotated_frame), int(clip_length) - 1)


def _write_png(path, array):
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(path, array):
        raise OSError(f"{path}: could not write the PNG")


def write_cityscapes_tree(output_dir: str, split: str, num_clips: int, clip_length: int,
                          height: int, width: int, seed: int, difficulty: float = 1.0,
                          city: str = CITY, annotated_frame: int = ANNOTATED_FRAME,
                          progress: Optional[Callable[[str], None]] = None) -> dict:
    """Writes clips in the Cityscapes layout under output_dir:

      leftImg8bit_sequence/<split>/<city>/<city>_<seq:06d>_<frame:06d>_leftImg8bit.png  every frame
      gtFine/<split>/<city>/<city>_<seq:06d>_<frame:06d>_gtFine_labelIds.png            every frame
      gtFine/<split>/<city>/<city>_<seq:06d>_<frame:06d>_gtFine_labelTrainIds.png       every frame
      leftImg8bit/<split>/<city>/<city>_<seq:06d>_<frame:06d>_leftImg8bit.png     annotated frame

    The annotated frame is frame 19 when clip_length >= 20, else the clip's last frame. Clip i is
    generate_clip(height, width, clip_length, clip_seed(seed, split, i), difficulty), rendered
    frame by frame. Returns {'split', 'city', 'annotated_frame', 'clips': [{'seq', 'seed',
    'frames': [paths]}]}.
    """
    if not isinstance(output_dir, (str, os.PathLike)) or not os.fspath(output_dir):
        raise ValueError(f"output_dir: must be a non-empty path, got {output_dir!r}")
    if not isinstance(split, str) or not split or any(c in split for c in "/\\ "):
        raise ValueError(f"split: must be a plain name such as 'train' or 'val', got {split!r}")
    if not isinstance(city, str) or not city or any(c in city for c in "/\\ _"):
        raise ValueError(f"city: must be a plain name without '_', got {city!r}")
    num_clips = _check_int("num_clips", num_clips, 1)
    annotated_frame = _check_int("annotated_frame", annotated_frame, 0)
    height, width, clip_length, seed, difficulty = _check_args(height, width, clip_length, seed,
                                                               difficulty, "clip_length")
    root = os.fspath(output_dir)
    dirs = {k: os.path.join(root, k, split, city) for k in ("leftImg8bit_sequence", "gtFine",
                                                            "leftImg8bit")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    ann = annotated_index(clip_length, annotated_frame)
    out = {"split": split, "city": city, "annotated_frame": ann, "clips": []}
    for seq in range(num_clips):
        cs = clip_seed(seed, split, seq)
        paths = []
        for fr in iter_clip(height, width, clip_length, cs, difficulty):
            stem = f"{city}_{seq:06d}_{fr.index:06d}"
            p = os.path.join(dirs["leftImg8bit_sequence"], stem + "_leftImg8bit.png")
            _write_png(p, fr.image)
            paths.append(p)
            _write_png(os.path.join(dirs["gtFine"], stem + "_gtFine_labelTrainIds.png"), fr.label)
            _write_png(os.path.join(dirs["gtFine"], stem + "_gtFine_labelIds.png"),
                       labels_lib.cityscapes_train_ids_to_label_ids(fr.label))
            if fr.index == ann:
                _write_png(os.path.join(dirs["leftImg8bit"], stem + "_leftImg8bit.png"), fr.image)
        out["clips"].append({"seq": seq, "seed": cs, "frames": paths})
        if progress is not None:
            progress(f"{split} clip {seq + 1}/{num_clips} (seed {cs}): {clip_length} frames "
                     f"{height}x{width} -> {dirs['leftImg8bit_sequence']}")
    return out


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


def calibrate(height: int = 1024, width: int = 2048, num_frames: int = 24, seed: int = 0,
              difficulty: float = 1.0, gop: int = 12, qscale: float = 6.0,
              workdir: Optional[str] = None, thr: float = 30.0) -> dict:
    """Encodes a generated clip (MPEG-4 Part 2, fixed GOP, 17 fps) and measures, over P-frames,
    what docs/synthetic.md compares with real Cityscapes footage: mean and max |Mv| (px),
    sum |Res| (over pixels and channels) and the fraction of pixels whose mean-channel |Res| > thr.
    Also returns the ground-truth flow statistics of the same clip.
    """
    import tempfile

    from third_party.compressed_video import encode_video, open_compressed

    height, width, num_frames, seed, difficulty = _check_args(height, width, num_frames, seed,
                                                              difficulty)
    if num_frames < 2:
        raise ValueError(f"num_frames: calibration needs >= 2 frames, got {num_frames}")
    gt_mean, gt_max = [], []

    def frames():
        for fr in iter_clip(height, width, num_frames, seed, difficulty):
            if fr.index % gop:
                m = np.sqrt((fr.flow ** 2).sum(-1))
                gt_mean.append(float(m.mean()))
                gt_max.append(float(m.max()))
            yield fr.image

    own = workdir is None
    tmp = tempfile.mkdtemp(prefix="synthetic_calib_") if own else workdir
    path = os.path.join(tmp, f"synthetic_{height}x{width}_s{seed}.avi")
    try:
        encode_video(frames(), path, gop=gop, fps=FPS, qscale=qscale)
        mv_mean, mv_max, res_sum, frac = [], [], [], []
        with open_compressed(path, rgb=False, residual="summary") as video:
            for fr in video:
                if fr.pict_type != "P":
                    continue
                mv = np.sqrt((np.asarray(fr.motion_vectors, np.float32) ** 2).sum(-1))
                mv_mean.append(float(mv.mean()))
                mv_max.append(float(mv.max()))
                res_sum.append(float(fr.residual_sum))
                frac.append(float(fr.residual_block_counts(thr).sum()) / (height * width))
    finally:
        if own:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    arr = lambda v: np.array(v, np.float64)
    return {
        "size": (height, width), "num_frames": num_frames, "seed": seed,
        "difficulty": difficulty, "gop": gop, "qscale": qscale, "p_frames": len(mv_mean),
        "mv_mean_px": float(arr(mv_mean).mean()), "mv_max_px": float(arr(mv_max).max()),
        "mv_max_px_mean": float(arr(mv_max).mean()),
        "residual_sum": float(arr(res_sum).mean()),
        "residual_sum_range": (float(arr(res_sum).min()), float(arr(res_sum).max())),
        "residual_frac_over_thr": float(arr(frac).mean()), "thr": thr,
        "gt_flow_mean_px": float(arr(gt_mean).mean()), "gt_flow_max_px": float(arr(gt_max).max()),
    }


# Real Cityscapes targets (1024x2048, 17 Hz, MPEG-4 Part 2, GOP 12, qmax 6), per P-frame.
CITYSCAPES_TARGETS = {
    "mv_mean_px": (2.4, 18.0), "mv_max_px": (35.0, 128.0),
    "residual_sum": (5e6, 2.2e7), "residual_frac_over_thr": (0.001, 0.015),
}


def scaled_targets(height: int, width: int) -> dict:
    """CITYSCAPES_TARGETS at another frame size: displacements scale with the width, residual
    sums with the area, fractions not at all."""
    sw = width / 2048.0
    sa = height * width / (1024.0 * 2048.0)
    t = CITYSCAPES_TARGETS
    return {"mv_mean_px": tuple(v * sw for v in t["mv_mean_px"]),
            "mv_max_px": tuple(v * sw for v in t["mv_max_px"]),
            "residual_sum": tuple(v * sa for v in t["residual_sum"]),
            "residual_frac_over_thr": t["residual_frac_over_thr"]}
