"""A panning textured video, a tiny phi for it and a Cityscapes-layout tree of such clips (the
pipeline, benchmark and app tests)."""
import os

import cv2
import numpy as np
import tensorflow as tf

from third_party.compressed_video import encode_video

H, W, NC = 64, 128, 19


def textured_pan(n, dx=4, seed=0):
    """A smooth random texture panning right by dx pixels a frame, and its 'labels' (stripes)."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.integers(0, 256, (H, W + dx * n, 3)).astype(np.uint8), (5, 5), 0)
    frames = [np.ascontiguousarray(big[:, dx * (n - i):dx * (n - i) + W]) for i in range(n)]
    stripes = ((np.arange(W + dx * n) // 32) % NC).astype(np.uint8)
    labels = [np.tile(stripes[dx * (n - i):dx * (n - i) + W], (H, 1)) for i in range(n)]
    return np.stack(frames), np.stack(labels)


def tiny_model(seed=0):
    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((None, None, 3))
    x = tf.keras.layers.Rescaling(1 / 255.0)(inp)
    x = tf.keras.layers.AveragePooling2D(4)(x)
    x = tf.keras.layers.Conv2D(NC, 1)(x)
    model = tf.keras.Model(inp, x)
    model.output_stride = 4
    return model


def encoded_pan(directory, n, gop=6):
    """textured_pan(n) encoded to MPEG-4 Part 2 with the given GOP; returns the path."""
    frames, _ = textured_pan(n)
    path = str(directory / "pan.avi")
    encode_video(frames, path, gop=gop)
    return path


def write_tree(root, n_clips=2, length=24):
    """A Cityscapes-layout tree with labels on every frame, as the synthetic generator writes."""
    from taplab_tf.data import labels as L
    for c in range(n_clips):
        frames, labels = textured_pan(length, seed=c)
        for d in ("leftImg8bit_sequence", "gtFine", "leftImg8bit"):
            os.makedirs(os.path.join(root, d, "val", "town"), exist_ok=True)
        for f in range(length):
            stem = f"town_{c:06d}_{f:06d}"
            img = cv2.cvtColor(frames[f], cv2.COLOR_RGB2BGR)
            cv2.imwrite(os.path.join(root, "leftImg8bit_sequence", "val", "town",
                                     stem + "_leftImg8bit.png"), img)
            cv2.imwrite(os.path.join(root, "gtFine", "val", "town", stem + "_gtFine_labelIds.png"),
                        L.cityscapes_train_ids_to_label_ids(labels[f]))
            if f == 19:
                cv2.imwrite(os.path.join(root, "leftImg8bit", "val", "town",
                                         stem + "_leftImg8bit.png"), img)
