"""Synthetic test frames for the reader and encoder tests: textures, pans, rotations."""
import cv2
import numpy as np

H, W = 128, 256


def texture(h, w, seed=0, sigma=2.0):
    """Smoothed noise, luminance-dominated (4:2:0 chroma loses little), values in [30, 225]."""
    rng = np.random.default_rng(seed)
    g = cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8).astype(np.float32),
                         (0, 0), sigma)
    g = cv2.normalize(g, None, 30, 225, cv2.NORM_MINMAX)
    return np.stack([g, g * 0.8 + 20, g * 0.6 + 40], -1).astype(np.uint8)


def pan_frames(n, dx, dy, h=H, w=W, seed=0):
    """Frame t shows the texture shifted by t*(dx, dy): content moves by (dx, dy) per frame."""
    m = 8 + n * max(abs(dx), abs(dy))
    big = texture(h + 2 * m, w + 2 * m, seed)
    return np.stack([big[m - dy * t:m - dy * t + h, m - dx * t:m - dx * t + w] for t in range(n)])


def subpixel_pan_frames(n, dx, dy, h=H, w=W, seed=1):
    big = texture(h + 64, w + 64, seed, sigma=2.5)
    out = []
    for t in range(n):
        m = np.float32([[1, 0, dx * t - 32], [0, 1, dy * t - 32]])
        out.append(cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_CUBIC,
                                  borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def rotating_frames(n, h=H, w=W, seed=3):
    """Rotation + zoom about the centre: non-uniform motion, so the encoder picks 4MV blocks."""
    big = texture(h, w, seed, sigma=1.5)
    return np.stack([cv2.warpAffine(big, cv2.getRotationMatrix2D((w / 2, h / 2), 2.0 * t,
                                                                 1 + 0.03 * t), (w, h),
                                    borderMode=cv2.BORDER_REFLECT) for t in range(n)])
