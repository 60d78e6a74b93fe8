"""Fault suite (issue 13), training data: a label of another size than its image, an RGB label
and a truncated PNG are named in one line before training, not a TF traceback at a step."""
import os

import cv2
import numpy as np
import pytest

from taplab_tf.data.datasets import file_pairs
from taplab_tf.train import train
from tests.helpers.training import TINY, tiny_config

H, W = 64, 64


def make_tree(root, n=2):
    """A tiny Cityscapes-layout tree (train and val, n annotated frames each)."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(n):
            stem = f"c_{i:06d}_000019"
            img = root / "leftImg8bit" / split / "c" / f"{stem}_leftImg8bit.png"
            lab = root / "gtFine" / split / "c" / f"{stem}_gtFine_labelIds.png"
            img.parent.mkdir(parents=True, exist_ok=True)
            lab.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(img), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
            assert cv2.imwrite(str(lab), rng.choice([7, 26, 33], (H, W)).astype(np.uint8))
    return root


def bad_label(root):
    return str(root / "gtFine" / "train" / "c" / "c_000001_000019_gtFine_labelIds.png")


def damage(kind, path):
    if kind == "other size":
        assert cv2.imwrite(path, np.full((H // 2, W), 7, np.uint8))
    elif kind == "rgb":
        assert cv2.imwrite(path, np.full((H, W, 3), 7, np.uint8))
    else:  # truncated
        data = open(path, "rb").read()
        open(path, "wb").write(data[:len(data) * 2 // 3])


MESSAGES = {"other size": r"is 64x32 but its image .*c_000001_000019_leftImg8bit\.png is 64x64",
            "rgb": r"is not a single-channel id image",
            "truncated": r"is truncated"}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_bad_training_label_is_named_before_training(tmp_path, kind):
    root = make_tree(tmp_path / "data")
    damage(kind, bad_label(root))
    cfg = tiny_config(tmp_path / "run", dataset="synthetic", data_dir=str(root), num_classes=19,
                      model_kwargs=TINY)
    with pytest.raises(ValueError, match=MESSAGES[kind]) as e:
        train(cfg)
    assert bad_label(root) in str(e.value) and "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_intact_tree_passes_the_checks(tmp_path):
    from taplab_tf.data import checks
    root = make_tree(tmp_path / "data")
    for split in ("train", "val"):
        checks.check_pairs(file_pairs("synthetic", str(root), split), "synthetic")


def test_unreadable_image_is_named(tmp_path):
    from taplab_tf.data import checks
    root = make_tree(tmp_path / "data")
    pairs = file_pairs("synthetic", str(root), "train")
    with open(pairs[0][0], "wb") as f:
        f.write(b"not an image")
    with pytest.raises(ValueError, match=f"image {pairs[0][0]} is not a readable image"):
        checks.check_pairs(pairs, "synthetic train")
