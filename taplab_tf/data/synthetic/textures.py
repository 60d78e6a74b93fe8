"""Procedural textures: value noise, texel canvases drawn in metres, facades, vegetation,
street furniture and vehicle faces."""
from __future__ import annotations

import cv2
import numpy as np

from taplab_tf.data.synthetic.base import (
    BUILDING,
    BUS,
    CAR,
    FENCE,
    POLE,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    TRAIN,
    TRANSPARENT,
    TRUCK,
    VEGETATION,
)


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
        for _ in range(int(rng.integers(2, 8))):
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
