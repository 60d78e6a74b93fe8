"""Synthetic clips written in the Cityscapes layout (what experiments.make_synthetic writes)."""
from __future__ import annotations

import os
from typing import Callable, Optional

import numpy as np

from taplab_tf.data import labels as labels_lib
from taplab_tf.data.synthetic.base import _check_args, _check_int, _write_png
from taplab_tf.data.synthetic.render import iter_clip

CITY = "synthtown"
ANNOTATED_FRAME = 19  # Cityscapes annotates frame 19 of each 30-frame snippet


def clip_seed(seed: int, split: str, index: int) -> int:
    """The generate_clip seed of clip `index` of a split (train and val never share a clip)."""
    code = sum((i + 1) * ord(ch) for i, ch in enumerate(split))
    return int(np.random.SeedSequence([int(seed), code, int(index)]).generate_state(1)[0])


def annotated_index(clip_length: int, annotated_frame: int = ANNOTATED_FRAME) -> int:
    """Frame written to leftImg8bit/: `annotated_frame` (19), or the last one of a shorter clip."""
    return min(int(annotated_frame), int(clip_length) - 1)



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
