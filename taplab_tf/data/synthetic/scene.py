"""The world of one clip: camera path, buildings and parks, street furniture and traffic."""
from __future__ import annotations

import math

import numpy as np

from taplab_tf.data.synthetic.base import (
    BICYCLE,
    BUILDING,
    BUS,
    CAMERA_HEIGHT,
    CAR,
    FOCAL_PER_WIDTH,
    FPS,
    HORIZON_PER_HEIGHT,
    LANE_W,
    MOTORCYCLE,
    TRAIN,
    TRUCK,
    VIEW_DISTANCE,
    WALL,
)
from taplab_tf.data.synthetic.camera import XA, ZA, _Camera
from taplab_tf.data.synthetic.objects import _Static, _Vehicle, _Walker
from taplab_tf.data.synthetic.textures import (
    FACADE_COLOURS,
    _box_faces,
    _facade_texture,
    _fence_texture,
    _hedge_texture,
    _jitter,
    _periodic_noise,
    _plain_wall_texture,
    _pole_texture,
    _sign_texture,
    _traffic_light_texture,
    _tree_texture,
)


class _Scene:
    """The world of one clip: camera path, street layout, traffic (no drawing)."""

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
        for _ in range(n_cross):
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
