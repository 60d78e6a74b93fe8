"""Cityscapes / synthetic / CamVid loaders and the make_dataset pipelines."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from taplab_tf.data import camvid, cityscapes, datasets, labels

CAMVID_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"
H, W = 16, 24
# labelIds in the fake gtFine: 7 road -> 0, 26 car -> 13, 33 bicycle -> 18; 0, 1, 3 (unlabeled,
# ego vehicle, out of roi) and 34 (no such id) -> 255.
LABEL_IDS = np.array([7, 26, 33, 0, 1, 3, 34], np.uint8)
TRAIN_IDS = np.array([0, 13, 18, 255, 255, 255, 255], np.uint8)


def _write_rgb(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _write_gray(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr)


def _label_ids(seed):
    rng = np.random.default_rng(seed)
    return LABEL_IDS[rng.integers(0, len(LABEL_IDS), size=(H, W))]


def _make_cityscapes(root, split="val",
                     snippets=(("aachen", "000000", 19), ("bonn", "000003", 119)),
                     label_every_frame=False, clip_frames=30, frames_before=19):
    """Tiny Cityscapes-layout tree: leftImg8bit + gtFine per annotated frame, 30-frame snippets."""
    rng = np.random.default_rng(0)
    for city, seq, f in snippets:
        stem = f"{city}_{seq}_{f:06d}"
        _write_rgb(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
                   rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        for t in range(f - frames_before, f - frames_before + clip_frames):
            fs = f"{city}_{seq}_{t:06d}"
            _write_rgb(root / "leftImg8bit_sequence" / split / city / f"{fs}_leftImg8bit.png",
                       rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
            if label_every_frame or t == f:
                _write_gray(root / "gtFine" / split / city / f"{fs}_gtFine_labelIds.png",
                            _label_ids(t))
    return root


# ------------------------------------------------------------------ Cityscapes layout
def test_cityscapes_pairs_and_label_mapping(tmp_path):
    root = _make_cityscapes(tmp_path)
    pairs = cityscapes.image_label_pairs(str(root), "val")
    assert [os.path.basename(p[0]) for p in pairs] == [
        "aachen_000000_000019_leftImg8bit.png", "bonn_000003_000119_leftImg8bit.png"]
    assert pairs[0][1].endswith("gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png")
    lab = cityscapes.load_label(pairs[0][1])
    ids = _label_ids(19)
    for lid, tid in zip(LABEL_IDS, TRAIN_IDS):
        assert (lab[ids == lid] == tid).all()
    assert set(np.unique(lab)) <= {0, 13, 18, 255} and (lab == 255).any()
    # the TF pipeline maps the same way
    ds = datasets.make_dataset("cityscapes", str(root), "val", training=False, batch_size=1)
    batches = list(ds)
    assert len(batches) == 2
    img, lab_tf = batches[0]
    assert img.dtype.name == "float32" and img.shape == (1, H, W, 3)
    assert lab_tf.dtype.name == "uint8" and lab_tf.shape == (1, H, W)
    np.testing.assert_array_equal(lab_tf[0].numpy(), lab)
    np.testing.assert_array_equal(img[0].numpy(), cityscapes.load_image(pairs[0][0]))


def test_sequence_clips_real_layout(tmp_path):
    root = _make_cityscapes(tmp_path)
    clips = cityscapes.sequence_clips(str(root), "val", require_complete=True)
    assert [c.name for c in clips] == ["aachen_000000_000019", "bonn_000003_000119"]
    c = clips[1]
    assert len(c) == 30 and c.annotated_index == 19
    assert os.path.basename(c.frame_paths[0]) == "bonn_000003_000100_leftImg8bit.png"
    assert os.path.basename(c.frame_paths[19]) == "bonn_000003_000119_leftImg8bit.png"
    assert os.path.basename(c.frame_paths[-1]) == "bonn_000003_000129_leftImg8bit.png"
    assert all("leftImg8bit_sequence" in p for p in c.frame_paths)
    # real Cityscapes: only the annotated frame has a label
    assert [i for i, p in enumerate(c.label_paths) if p is not None] == [19]
    assert c.annotated_label_path.endswith("bonn_000003_000119_gtFine_labelIds.png")


def test_sequence_clips_synthetic_every_frame_labelled(tmp_path):
    root = _make_cityscapes(tmp_path, label_every_frame=True)
    clips = cityscapes.sequence_clips(str(root), "val")
    assert all(len(c) == 30 and c.annotated_index == 19 for c in clips)
    assert all(p is not None and os.path.isfile(p) for c in clips for p in c.label_paths)
    # all labelled sequence frames as training pairs
    pairs = datasets.file_pairs("synthetic", str(root), "val", use_sequence_frames=True)
    assert len(pairs) == 60


def test_sequence_clips_short_snippet(tmp_path):
    # a shorter snippet (e.g. a small synthetic tree): frames 15..22 around annotated frame 19
    root = _make_cityscapes(tmp_path, snippets=(("x", "000001", 19),), clip_frames=8,
                            frames_before=4)
    (c,) = cityscapes.sequence_clips(str(root), "val")
    assert len(c) == 8 and c.annotated_index == 4
    with pytest.raises(FileNotFoundError, match="incomplete"):
        cityscapes.sequence_clips(str(root), "val", require_complete=True)


def test_sequence_clips_longer_snippet_unbounded(tmp_path):
    root = _make_cityscapes(tmp_path, snippets=(("x", "000001", 19),), clip_frames=40)
    (c,) = cityscapes.sequence_clips(str(root), "val")
    assert len(c) == 30 and c.annotated_index == 19
    (c,) = cityscapes.sequence_clips(str(root), "val", frames_after=None)
    assert len(c) == 40 and c.annotated_index == 19


def test_cityscapes_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.make_dataset("cityscapes", str(tmp_path / "nope"), "val", False, 1)
    root = _make_cityscapes(tmp_path / "cs")
    with pytest.raises(FileNotFoundError, match="split 'train' not found"):
        datasets.make_dataset("cityscapes", str(root), "train", True, 1)
    os.remove(root / "gtFine/val/bonn/bonn_000003_000119_gtFine_labelIds.png")
    with pytest.raises(FileNotFoundError, match="has no label"):
        datasets.make_dataset("synthetic", str(root), "val", False, 1)
    with pytest.raises(ValueError, match="unknown 'kitti'"):
        datasets.make_dataset("kitti", str(root), "val", False, 1)
    with pytest.raises(ValueError, match="batch_size"):
        datasets.make_dataset("cityscapes", str(root), "val", False, 0)
    with pytest.raises(ValueError, match="scale_range"):
        datasets.make_dataset("cityscapes", str(root), "val", True, 1, scale_range=(2, 1))


# ------------------------------------------------------------------ augmentation
def test_training_padding_with_ignore_and_mean(tmp_path):
    root = _make_cityscapes(tmp_path, snippets=(("a", "000000", 19),))
    # make every labelled pixel valid (road) so all 255s come from the padding
    _write_gray(root / "gtFine/val/a/a_000000_000019_gtFine_labelIds.png",
                np.full((H, W), 7, np.uint8))
    _write_rgb(root / "leftImg8bit/val/a/a_000000_000019_leftImg8bit.png",
               np.full((H, W, 3), 7, np.uint8))
    ds = datasets.make_dataset("cityscapes", str(root), "val", training=True, batch_size=1,
                               crop_size=(20, 30), scale_range=(1.0, 1.0), shuffle_seed=3)
    img, lab = next(iter(ds))
    assert img.shape == (1, 20, 30, 3) and lab.shape == (1, 20, 30)
    lab = lab[0].numpy()
    img = img[0].numpy()
    assert (lab == 255).sum() == 20 * 30 - H * W and (lab == 0).sum() == H * W
    np.testing.assert_allclose(img[lab == 255], np.broadcast_to(datasets.IMAGENET_MEAN,
                                                                ((lab == 255).sum(), 3)),
                               atol=1e-3)
    np.testing.assert_allclose(img[lab == 0], 7.0)


def test_training_shapes_nearest_labels_and_determinism(tmp_path):
    root = _make_cityscapes(tmp_path, snippets=tuple((c, "000000", 19) for c in "abcdef"))

    def take(seed, n_epochs=1):
        ds = datasets.make_dataset("cityscapes", str(root), "val", training=True, batch_size=2,
                                   crop_size=12, shuffle_seed=seed)
        return [[(i.numpy(), l.numpy()) for i, l in ds] for _ in range(n_epochs)]

    a = take(5, n_epochs=2)
    b = take(5, n_epochs=2)
    c = take(6)
    assert len(a[0]) == 3
    for (ia, la), (ib, lb) in zip(a[0] + a[1], b[0] + b[1]):
        assert ia.shape == (2, 12, 12, 3) and la.shape == (2, 12, 12)
        assert ia.dtype == np.float32 and la.dtype == np.uint8
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(la, lb)
        assert set(np.unique(la)) <= {0, 13, 18, 255}   # nearest neighbour: no blended ids
        assert ia.min() >= 0 and ia.max() <= 255
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a[0], c[0]))
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a[0], a[1]))  # new epoch


def test_training_crop_and_flip_keep_image_and_label_aligned(tmp_path):
    root = _make_cityscapes(tmp_path, snippets=tuple((c, "000000", 19) for c in "abcd"))
    rng = np.random.default_rng(1)
    for city in "abcd":
        ids = np.array([7, 26, 33, 0], np.uint8)[rng.integers(0, 4, size=(H, W))]
        tid = labels.cityscapes_label_ids_to_train_ids(ids)
        red = np.where(tid == 255, 250, tid.astype(np.int32) * 10 + 5).astype(np.uint8)
        _write_gray(root / f"gtFine/val/{city}/{city}_000000_000019_gtFine_labelIds.png", ids)
        _write_rgb(root / f"leftImg8bit/val/{city}/{city}_000000_000019_leftImg8bit.png",
                   np.stack([red, np.zeros_like(red), np.zeros_like(red)], axis=-1))
    ds = datasets.make_dataset("cityscapes", str(root), "val", training=True, batch_size=2,
                               crop_size=(10, 14), scale_range=(1.0, 1.0), shuffle_seed=0)
    crops = [(i.numpy(), l.numpy()) for _ in range(4) for i, l in ds]
    for img, lab in crops:
        expect = np.where(lab == 255, 250, lab.astype(np.int32) * 10 + 5)
        np.testing.assert_array_equal(img[..., 0], expect)
    assert len({img.tobytes() for img, _ in crops}) > 1


def test_training_flip_happens_and_can_be_disabled(tmp_path):
    root = _make_cityscapes(tmp_path, snippets=(("a", "000000", 19),))
    lab = cityscapes.load_label(str(root / "gtFine/val/a/a_000000_000019_gtFine_labelIds.png"))

    def outputs(flip):
        ds = datasets.make_dataset("cityscapes", str(root), "val", training=True, batch_size=1,
                                   crop_size=(H, W), scale_range=(1, 1), shuffle_seed=2,
                                   random_flip=flip)
        return [l[0].numpy() for _ in range(12) for _, l in ds]

    got = outputs(True)
    flipped = [np.array_equal(g, lab[:, ::-1]) for g in got]
    assert all(f or np.array_equal(g, lab) for f, g in zip(flipped, got))
    assert 0 < sum(flipped) < len(got)
    assert all(np.array_equal(g, lab) for g in outputs(False))


# ------------------------------------------------------------------ CamVid
def _make_camvid(root, value=3, split="train"):
    for i in range(2):
        _write_rgb(root / split / f"s_{i:03d}.png", np.zeros((8, 8, 3), np.uint8))
        _write_gray(root / f"{split}annot" / f"s_{i:03d}.png", np.full((8, 8), value, np.uint8))
    return root


def test_camvid_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        camvid.image_label_pairs(str(tmp_path / "nope"), "train")
    root = _make_camvid(tmp_path / "cv")
    with pytest.raises(FileNotFoundError, match="split 'val' is missing"):
        datasets.make_dataset("camvid", str(root), "val", False, 1)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        datasets.make_dataset("camvid", str(root), "dev", False, 1)
    _write_rgb(root / "train" / "orphan.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="orphan.png.*has no label"):
        datasets.make_dataset("camvid", str(root), "train", False, 1)
    bad = _make_camvid(tmp_path / "bad", value=12)
    with pytest.raises(ValueError, match="value 12 out of range"):
        datasets.make_dataset("camvid", str(bad), "train", False, 1)
    with pytest.raises(ValueError, match="value 12 out of range"):
        camvid.load_label(str(bad / "trainannot" / "s_000.png"))
    # a list file with the tutorial's absolute prefix: only the file names are used
    (root / "train.txt").write_text("/SegNet/CamVid/train/s_001.png "
                                    "/SegNet/CamVid/trainannot/s_001.png\n")
    assert [os.path.basename(p) for p, _ in camvid.image_label_pairs(str(root), "train")] == [
        "s_001.png"]


def test_joined_splits_are_the_union(tmp_path):
    root = _make_camvid(tmp_path / "cv")
    _make_camvid(root, value=4, split="val")
    both = datasets.file_pairs("camvid", str(root), "train+val")
    assert both == sorted(datasets.file_pairs("camvid", str(root), "train")
                          + datasets.file_pairs("camvid", str(root), "val"))
    assert len(both) == 4
    freq = datasets.class_frequencies("camvid", str(root), "train+val")
    assert freq[3] == pytest.approx(1.0) and freq[4] == pytest.approx(1.0)
    for bad in ("train+", "train+train", "+val"):
        with pytest.raises(ValueError, match="distinct splits joined by"):
            datasets.file_pairs("camvid", str(root), bad)
    with pytest.raises(FileNotFoundError, match="split 'test' is missing"):
        datasets.file_pairs("camvid", str(root), "train+test")
    ds = datasets.make_dataset("camvid", str(root), "train+val", training=False, batch_size=4)
    assert next(iter(ds))[0].shape[0] == 4


@pytest.mark.needs_camvid
def test_camvid_real_files():
    if not CAMVID_DIR.is_dir():
        pytest.skip(f"CamVid not found at {CAMVID_DIR} (../shared/data/camvid next to the repo)")
    for split, n in (("train", 367), ("val", 101), ("test", 233), ("train+val", 468)):
        assert len(datasets.file_pairs("camvid", str(CAMVID_DIR), split)) == n
    assert datasets.num_classes("camvid") == 11 and datasets.num_classes("synthetic") == 19
    pairs = datasets.file_pairs("camvid", str(CAMVID_DIR), "val")
    ds = datasets.make_dataset("camvid", str(CAMVID_DIR), "val", training=False, batch_size=2,
                               limit=3)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [2, 1]
    img, lab = batches[0]
    assert img.shape == (2, 360, 480, 3) and lab.shape == (2, 360, 480)
    raw = cv2.imread(pairs[0][1], cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(lab[0].numpy(), labels.camvid_to_train_ids(raw))
    assert (lab[0].numpy() == 255).any() and lab.numpy().max() == 255
    assert set(np.unique(lab.numpy())) <= set(range(11)) | {255}
    np.testing.assert_array_equal(img[0].numpy(), camvid.load_image(pairs[0][0]))
    small = datasets.make_dataset("camvid", str(CAMVID_DIR), "val", training=False,
                                  batch_size=3, limit=3, image_size=(90, 120))
    img, lab = next(iter(small))
    assert img.shape == (3, 90, 120, 3) and lab.shape == (3, 90, 120)
    # nearest neighbour with half-pixel centres: output i reads input floor((i + 0.5) * 4)
    np.testing.assert_array_equal(lab[0].numpy(), labels.camvid_to_train_ids(raw[2::4, 2::4]))
    tr = datasets.make_dataset("camvid", str(CAMVID_DIR), "train", training=True, batch_size=2,
                               limit=4, shuffle_seed=0)
    img, lab = next(iter(tr))
    assert img.shape == (2, 600, 600, 3) and lab.shape == (2, 600, 600)


# ------------------------------------------------------------------ experiments.evaluate_image
def test_evaluate_dataset_perfect_and_wrong_predictions():
    import tensorflow as tf

    from taplab_tf.pipeline import evaluate_images as evaluate_image

    lab = np.array([[[0, 1, 2, 255], [2, 2, 1, 0]]], np.uint8)           # [1, 2, 4]
    img = np.repeat((lab.astype(np.float32) % 255)[..., None], 3, axis=-1)  # class id in pixels
    ds = tf.data.Dataset.from_tensors((img, lab)).repeat(3)

    def oracle(x, training=False):  # one-hot logits at stride 1
        return tf.one_hot(tf.cast(x[..., 0], tf.int32), 4)

    cm, n, _ = evaluate_image.evaluate_dataset(oracle, 1, ds, 4, 3, progress=None)
    assert n == 3 and cm.miou() == 1.0 and cm.num_pixels == 21
    assert np.isnan(cm.iou()[3])
    cm, _, _ = evaluate_image.evaluate_dataset(lambda x, training=False: tf.one_hot(
        tf.zeros_like(x[..., 0], tf.int32), 4), 1, ds, 4, progress=None)
    np.testing.assert_allclose(cm.iou()[:3], [2 / 7, 0, 0])


def test_evaluate_dataset_at_an_input_scale_resizes_as_the_engine_does():
    """input_scale: phi sees the image at config.phi_input_size (the engine's rule), and its
    logits are labelled at the snapped stride on the image's own size."""
    import tensorflow as tf

    from taplab_tf import config
    from taplab_tf.pipeline import evaluate_images as evaluate_image

    lab = np.zeros((1, 32, 48), np.uint8)
    lab[:, :, 24:] = 1  # two halves, left class 0, right class 1
    img = np.repeat(lab[..., None].astype(np.float32) * 200, 3, axis=-1)
    ds = tf.data.Dataset.from_tensors((img, lab))
    seen = []

    def phi(x, training=False):  # stride 4: one-hot of the pooled brightness
        seen.append(tuple(x.shape[1:3]))
        pooled = tf.nn.avg_pool2d(x[..., :1], 4, 4, "SAME")[..., 0]  # ceil, as BL2
        return tf.one_hot(tf.cast(pooled > 100, tf.int32), 2) * 10.0

    for scale, stride in ((1.0, 4), (0.5, 8), (2.0, 2), (0.45, 9)):
        seen.clear()
        cm, n, _ = evaluate_image.evaluate_dataset(phi, 4, ds, 2, progress=None,
                                                   input_scale=scale)
        assert config.frame_stride(4, scale) == stride
        assert seen[0] == config.phi_input_size(32, 48, 4, stride), (scale, seen)
        assert n == 1 and cm.num_pixels == 32 * 48  # labels at the image's own size
        assert cm.miou() > 0.8, (scale, cm.iou())


def test_evaluate_image_app(tmp_path, monkeypatch):
    """The app end to end with a stand-in for load_model (building a real network takes seconds;
    the real path is exercised by `python -m experiments.evaluate_image`, see the module)."""
    import json

    import tensorflow as tf

    from experiments import common, evaluate_image  # the app's run(), as the command line calls it
    from taplab_tf.pipeline.evaluate_images import check_checkpoint

    root = _make_cityscapes(tmp_path / "data")
    meta = {"model": "fake", "num_classes": 19, "dataset": "synthetic", "output_stride": 4}

    def fake_model(x, training=False):  # predicts road (trainId 0) everywhere, stride 4
        shape = tf.shape(x)
        return tf.one_hot(tf.zeros([shape[0], (shape[1] + 3) // 4, (shape[2] + 3) // 4],
                                   tf.int32), 19)

    monkeypatch.setattr(common, "load_checkpoint", lambda path, *a: (fake_model, dict(meta)))
    with pytest.raises(ValueError, match="trained on synthetic, not cityscapes.*allow_other"):
        check_checkpoint(meta, "cityscapes")
    with pytest.raises(ValueError, match="predicts 19 classes.*camvid has 11"):
        check_checkpoint(meta, "camvid", allow_other_dataset=True)
    check_checkpoint(meta, "cityscapes", allow_other_dataset=True)
    out = tmp_path / "r.json"
    res = evaluate_image.run("synthetic", str(root), "val", str(tmp_path / "ckpt"), str(out))
    saved = json.loads(out.read_text())
    assert saved["num_images"] == 2 and saved["dataset"] == "synthetic"
    assert saved["checkpoint"] == str(tmp_path / "ckpt") and saved["miou"] == res["miou"]
    gts = [cityscapes.load_label(p) for _, p in cityscapes.image_label_pairs(str(root), "val")]
    valid = sum(int((g != 255).sum()) for g in gts)
    road = sum(int((g == 0).sum()) for g in gts)
    assert saved["num_pixels"] == valid
    assert saved["per_class_iou"]["road"] == pytest.approx(road / valid)
    assert saved["per_class_iou"]["car"] == 0.0 and saved["per_class_iou"]["sky"] is None
    assert saved["miou"] == pytest.approx(road / valid / 3)   # road, car, bicycle present
    with pytest.raises(SystemExit, match="trained on synthetic, not cityscapes"):
        evaluate_image.run("cityscapes", str(root), "val", None, str(out))
    # --use_sequence_frames: every labelled frame of the sequences, not only the annotated ones
    seq_root = _make_cityscapes(tmp_path / "seq", label_every_frame=True)
    want = len(datasets.file_pairs("synthetic", str(seq_root), "val", use_sequence_frames=True))
    assert want > len(datasets.file_pairs("synthetic", str(seq_root), "val"))
    evaluate_image.run("synthetic", str(seq_root), "val", str(tmp_path / "ckpt"), str(out),
                       use_sequence_frames=True)
    saved = json.loads(out.read_text())
    assert saved["num_images"] == want and saved["use_sequence_frames"] is True
