"""Cheap checks of (image, label) file pairs before training: one line naming the bad file.

check_pairs(pairs, owner) reads only each file's header (PIL opens lazily) and its last 12 bytes,
so it costs milliseconds per pair, and raises ValueError on the first of:
  * a label that is not a single-channel id image (RGB, palette, grey+alpha);
  * a label whose size differs from its image's;
  * a PNG (image or label) cut short: it does not end with the IEND chunk (a truncated file);
  * a file that is not a readable image at all.
Without it these surface inside tf.data at the step that reads the file, as a TF traceback.
"""
from __future__ import annotations

import os
from typing import Sequence, Tuple

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _header(path: str, owner: str, what: str):
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            size, bands, mode = img.size, img.getbands(), img.mode
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise ValueError(f"{owner}: {what} {path} is not a readable image ({e})") from None
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
            f.seek(max(0, os.path.getsize(path) - len(_PNG_END)))
            tail = f.read()
    except OSError as e:
        raise ValueError(f"{owner}: cannot read {what} {path} ({e})") from None
    if magic == _PNG_MAGIC and tail != _PNG_END:
        raise ValueError(f"{owner}: {what} {path} is truncated (the PNG does not end with its "
                         f"IEND chunk)")
    return size, bands, mode


def check_pairs(pairs: Sequence[Tuple[str, str]], owner: str) -> None:
    """ValueError naming the first bad file of the (image path, label path) pairs."""
    for image_path, label_path in pairs:
        (w, h), _, _ = _header(image_path, owner, "image")
        (lw, lh), bands, mode = _header(label_path, owner, "label")
        if len(bands) != 1 or mode == "P":
            raise ValueError(f"{owner}: label {label_path} is not a single-channel id image "
                             f"(PNG mode {mode}, {len(bands)} channel(s))")
        if (lw, lh) != (w, h):
            raise ValueError(f"{owner}: label {label_path} is {lw}x{lh} but its image "
                             f"{image_path} is {w}x{h}")
