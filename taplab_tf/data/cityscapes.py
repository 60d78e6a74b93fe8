"""Cityscapes file layout: annotated images, their labels, and the 30-frame video snippets.

Layout (the official one; the synthetic generator, taplab_tf/data/synthetic.py, writes the same):

  <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png          annotated frames
  <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png            their labels
  <root>/leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame:06d>_leftImg8bit.png   snippets

Labels: the `_gtFine_labelIds.png` files are the source of truth; they are mapped to the 19
trainIds (everything else -> 255, ignore) with taplab_tf.data.labels. `_gtFine_labelTrainIds.png`
files, when present, are NOT read: they are a derived product (cityscapesScripts'
createTrainIdLabelImgs) that may be missing or produced by another label-table version, while
labelIds are what the official evaluation compares against.

Video snippets: each annotated image is frame 19 (0-based) of a 30-frame snippet in
leftImg8bit_sequence, i.e. the snippet holds frames <frame>-19 .. <frame>+10 of the same
<city>_<seq>. Real Cityscapes has labels only for the annotated frame; the synthetic tree has a
gtFine labelIds file for EVERY sequence frame. `sequence_clips` returns, per annotated image, the
ordered frame paths, a per-frame label path (or None where no gtFine file exists) and the index
of the annotated frame.

API:
  image_label_pairs(root, split, use_sequence_frames=False) -> [(image_path, label_path)]
  sequence_clips(root, split, frames_before=19, frames_after=10, require_complete=False)
      -> [Clip] (None: no limit on that side)
  load_image(path) -> uint8 [H,W,3] RGB;  load_label(path) -> uint8 [H,W] trainIds (255 ignore)
  label_path_for(root, split, city, seq, frame) -> path of the labelIds file (exists or not)
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from taplab_tf.data import image_io
from taplab_tf.data import labels as labels_lib

IMAGE_DIR = "leftImg8bit"
SEQUENCE_DIR = "leftImg8bit_sequence"
LABEL_DIR = "gtFine"
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
ANNOTATED_INDEX = 19          # 0-based position of the annotated frame in its 30-frame snippet
CLIP_LENGTH = 30

_NAME_RE = re.compile(r"^(?P<city>.+)_(?P<seq>\d+)_(?P<frame>\d+)" + re.escape(IMAGE_SUFFIX) + "$")


@dataclasses.dataclass(frozen=True)
class Clip:
    """One snippet around an annotated image."""
    name: str                              # <city>_<seq>_<frame> of the annotated image
    frame_paths: Tuple[str, ...]           # ordered sequence frames
    label_paths: Tuple[Optional[str], ...]  # gtFine labelIds per frame, None where unlabelled
    annotated_index: int                   # position of the annotated frame in frame_paths
    image_path: str                        # the leftImg8bit (annotated) image

    @property
    def annotated_label_path(self) -> Optional[str]:
        return self.label_paths[self.annotated_index]

    def __len__(self):
        return len(self.frame_paths)


def _check_root(root: str, sub: str, split: str) -> str:
    if not root or not os.path.isdir(root):
        raise FileNotFoundError(f"Cityscapes: data directory {root!r} does not exist")
    path = os.path.join(root, sub, split)
    if not os.path.isdir(path):
        base = os.path.join(root, sub)
        if not os.path.isdir(base):
            raise FileNotFoundError(f"Cityscapes: {base!r} does not exist (is {root!r} a "
                                    f"Cityscapes-layout root with {sub}/<split>/<city>/?)")
        have = sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))
        raise FileNotFoundError(f"Cityscapes: split {split!r} not found: {path!r} does not exist "
                                f"(splits present: {have})")
    return path


def _parse(name: str):
    m = _NAME_RE.match(name)
    if not m:
        return None
    return m.group("city"), m.group("seq"), m.group("frame")


def _list_images(directory: str, what: str) -> List[Tuple[str, str, str, str]]:
    """(path, city, seq, frame) for every *_leftImg8bit.png under directory/<city>/, sorted."""
    out = []
    for city in sorted(os.listdir(directory)):
        city_dir = os.path.join(directory, city)
        if not os.path.isdir(city_dir):
            continue
        for name in sorted(os.listdir(city_dir)):
            if not name.endswith(IMAGE_SUFFIX):
                continue
            parsed = _parse(name)
            if parsed is None:
                raise ValueError(f"Cityscapes: unexpected {what} file name {name!r} in "
                                 f"{city_dir!r} (want <city>_<seq>_<frame>{IMAGE_SUFFIX})")
            out.append((os.path.join(city_dir, name),) + parsed)
    return out


def label_path_for(root: str, split: str, city: str, seq: str, frame: str) -> str:
    return os.path.join(root, LABEL_DIR, split, city, f"{city}_{seq}_{frame}{LABEL_SUFFIX}")


def image_label_pairs(root: str, split: str,
                      use_sequence_frames: bool = False) -> List[Tuple[str, str]]:
    """Sorted (image, gtFine labelIds) path pairs of a split.

    use_sequence_frames=False: the annotated leftImg8bit images; every one must have a label.
    use_sequence_frames=True: every leftImg8bit_sequence frame that has a gtFine labelIds file
    (the synthetic tree labels all frames; real Cityscapes only frame 19 of each snippet).
    """
    if use_sequence_frames:
        directory = _check_root(root, SEQUENCE_DIR, split)
        pairs = []
        for path, city, seq, frame in _list_images(directory, "sequence"):
            lab = label_path_for(root, split, city, seq, frame)
            if os.path.isfile(lab):
                pairs.append((path, lab))
        if not pairs:
            raise FileNotFoundError(f"Cityscapes: no labelled sequence frames under "
                                    f"{directory!r} (no matching {LABEL_DIR}/{split} labelIds)")
        return pairs
    directory = _check_root(root, IMAGE_DIR, split)
    images = _list_images(directory, "image")
    if not images:
        raise FileNotFoundError(f"Cityscapes: no *{IMAGE_SUFFIX} images under {directory!r}")
    pairs = []
    for path, city, seq, frame in images:
        lab = label_path_for(root, split, city, seq, frame)
        if not os.path.isfile(lab):
            raise FileNotFoundError(f"Cityscapes: image {path!r} has no label: {lab!r} is "
                                    f"missing")
        pairs.append((path, lab))
    return pairs


def sequence_clips(root: str, split: str, frames_before: Optional[int] = ANNOTATED_INDEX,
                   frames_after: Optional[int] = CLIP_LENGTH - 1 - ANNOTATED_INDEX,
                   require_complete: bool = False) -> List[Clip]:
    """Per annotated image of `split` (leftImg8bit), the snippet frames around it.

    The snippet is frames <frame>-frames_before .. <frame>+frames_after of the same
    <city>_<seq> in leftImg8bit_sequence (frame numbers zero-padded like the annotated one),
    trimmed to the contiguous run of existing files that contains the annotated frame (so a
    shorter synthetic snippet works); require_complete=True demands every frame of the window.
    None for frames_before / frames_after: no limit on that side (the whole contiguous run, e.g.
    for longer synthetic clips). The annotated frame itself must exist in leftImg8bit_sequence.
    """
    if require_complete and (frames_before is None or frames_after is None):
        raise ValueError("sequence_clips: require_complete needs finite frames_before/after")
    big = 10 ** 9
    frames_before = big if frames_before is None else int(frames_before)
    frames_after = big if frames_after is None else int(frames_after)
    if frames_before < 0 or frames_after < 0:
        raise ValueError("sequence_clips: frames_before and frames_after must be >= 0")
    image_dir = _check_root(root, IMAGE_DIR, split)
    seq_dir = _check_root(root, SEQUENCE_DIR, split)
    images = _list_images(image_dir, "image")
    if not images:
        raise FileNotFoundError(f"Cityscapes: no *{IMAGE_SUFFIX} images under {image_dir!r}")
    listing: Dict[str, set] = {}
    clips = []
    for image_path, city, seq, frame in images:
        if city not in listing:
            city_dir = os.path.join(seq_dir, city)
            listing[city] = set(os.listdir(city_dir)) if os.path.isdir(city_dir) else set()
        names = listing[city]
        width = len(frame)
        f0 = int(frame)

        def fname(f, city=city, seq=seq, width=width):
            return f"{city}_{seq}_{f:0{width}d}{IMAGE_SUFFIX}"

        if fname(f0) not in names:
            raise FileNotFoundError(
                f"Cityscapes: annotated image {os.path.basename(image_path)!r} has no snippet: "
                f"{os.path.join(seq_dir, city, fname(f0))!r} is missing")
        lo = f0
        while lo - 1 >= max(0, f0 - frames_before) and fname(lo - 1) in names:
            lo -= 1
        hi = f0
        while hi + 1 <= f0 + frames_after and fname(hi + 1) in names:
            hi += 1
        if require_complete and (lo != f0 - frames_before or hi != f0 + frames_after):
            raise FileNotFoundError(
                f"Cityscapes: snippet of {os.path.basename(image_path)!r} is incomplete: frames "
                f"{lo}..{hi} present, {f0 - frames_before}..{f0 + frames_after} required")
        frame_paths, label_paths = [], []
        for f in range(lo, hi + 1):
            frame_paths.append(os.path.join(seq_dir, city, fname(f)))
            lab = label_path_for(root, split, city, seq, f"{f:0{width}d}")
            label_paths.append(lab if os.path.isfile(lab) else None)
        clips.append(Clip(name=f"{city}_{seq}_{frame}", frame_paths=tuple(frame_paths),
                          label_paths=tuple(label_paths), annotated_index=f0 - lo,
                          image_path=image_path))
    return clips


def load_image(path: str) -> np.ndarray:
    """uint8 [H, W, 3] RGB."""
    return image_io.read_rgb(path, "Cityscapes")


def load_label(path: str) -> np.ndarray:
    """gtFine labelIds file -> uint8 [H, W] trainIds 0-18, 255 ignore."""
    lab = image_io.read_label(path, "Cityscapes")
    if lab.ndim != 2 or lab.dtype != np.uint8:
        raise ValueError(f"Cityscapes: label {path!r} must be a single-channel 8-bit labelIds "
                         f"PNG, got shape {lab.shape} dtype {lab.dtype}")
    return labels_lib.cityscapes_label_ids_to_train_ids(lab)
