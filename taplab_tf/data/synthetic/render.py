"""Rendering a scene frame by frame (ground by inverse perspective, sky, quads by their
homographies, z-buffer, exact flow) and the public clip API."""
from __future__ import annotations

import math
from typing import Iterator

import cv2
import numpy as np

from taplab_tf.data.synthetic.base import (
    CAMERA_HEIGHT,
    FAR,
    FPS,
    LANE_W,
    NEAR,
    OPTICAL_BLUR_AT_2048,
    OPTICAL_BLUR_MIN,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    TRANSPARENT,
    VIEW_DISTANCE,
    Clip,
    Frame,
    _check_args,
)
from taplab_tf.data.synthetic.camera import XA, ZA, _inv3
from taplab_tf.data.synthetic.objects import _Static, _Vehicle, _Walker
from taplab_tf.data.synthetic.scene import _Scene


class _World(_Scene):
    """The scene of scene.py, rendered frame by frame."""

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
