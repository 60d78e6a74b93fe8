"""World objects: each yields textured quads (texture, O, Ex, Ey) at a time t (seconds)."""
from __future__ import annotations

import math

import cv2
import numpy as np

from taplab_tf.data.synthetic.base import BICYCLE, MOTORCYCLE, PERSON, RIDER, TRANSPARENT
from taplab_tf.data.synthetic.camera import UP, XA, ZA
from taplab_tf.data.synthetic.textures import (
    CAR_COLOURS,
    CLOTH_COLOURS,
    SKIN_COLOURS,
    Texture,
    _Canvas,
    _jitter,
)


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
