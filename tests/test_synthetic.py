"""Tests of the synthetic street-video generator (taplab_tf.data.synthetic), at 128x256."""
import os

import cv2
import numpy as np
import pytest

from taplab_tf.data import labels as labels_lib
from taplab_tf.data import synthetic as S

H, W = 128, 256


@pytest.fixture(scope="module")
def clip():
    return S.generate_clip(H, W, 6, seed=0)


# ---------------------------------------------------------------------------------------------
# shapes, determinism
# ---------------------------------------------------------------------------------------------
def test_shapes_and_dtypes(clip):
    assert clip.frames.shape == (6, H, W, 3) and clip.frames.dtype == np.uint8
    assert clip.labels.shape == (6, H, W) and clip.labels.dtype == np.uint8
    assert clip.flow.shape == (6, H, W, 2) and clip.flow.dtype == np.float32
    assert clip.labels.max() < S.NUM_CLASSES
    assert not clip.flow[0].any(), "frame 0 has no previous frame: zero flow"
    assert np.isfinite(clip.flow).all()
    # frames are textured, not flat: every frame has plenty of grey-level variation
    for f in clip.frames:
        assert cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_32F).std() > 5


def test_same_seed_same_bytes_different_seed_differs(clip):
    again = S.generate_clip(H, W, 6, seed=0)
    for name in ("frames", "labels", "flow"):
        assert getattr(again, name).tobytes() == getattr(clip, name).tobytes(), name
    # a longer clip only adds street at the far end: its first frames are the shorter clip
    short = S.generate_clip(H, W, 3, seed=0)
    for name in ("frames", "labels", "flow"):
        assert getattr(short, name).tobytes() == getattr(clip, name)[:3].tobytes(), name
    other = S.generate_clip(H, W, 2, seed=1)
    assert other.frames.tobytes() != clip.frames[:2].tobytes()
    assert other.labels.tobytes() != clip.labels[:2].tobytes()


def test_iterator_matches_generate_clip(clip):
    it = S.iter_clip(H, W, 6, seed=0)
    first = next(it)
    assert first.index == 0
    np.testing.assert_array_equal(first.image, clip.frames[0])
    rest = list(it)
    assert [f.index for f in rest] == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(rest[-1].label, clip.labels[5])
    np.testing.assert_array_equal(rest[-1].flow, clip.flow[5])


def test_any_size_not_multiple_of_16():
    c = S.generate_clip(70, 131, 2, seed=3)
    assert c.frames.shape == (2, 70, 131, 3) and c.labels.shape == (2, 70, 131)


# ---------------------------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_claimed_class_appears(seed, clip):
    c = clip if seed == 0 else S.generate_clip(H, W, S.CLASSES_WITHIN_FRAMES, seed=seed)
    present = set(np.unique(c.labels[:S.CLASSES_WITHIN_FRAMES]).tolist())
    missing = sorted(set(S.CLAIMED_CLASSES) - present)
    assert not missing, [labels_lib.CITYSCAPES_CLASSES[k] for k in missing]


def test_label_regions_coincide_with_their_colours(clip):
    """Colour statistics per label must be explained by the label: sky pixels are bluish-bright,
    vegetation greenish, road grey, and the label map predicts pixel colours far better than a
    one-pixel-shifted label map does (misaligned labels would not)."""
    f = clip.frames[2].astype(np.float32)
    lab = clip.labels[2]

    def label_fit(l):
        # fraction of colour variance explained by per-label mean colours
        means = np.zeros((256, 3), np.float32)
        for k in np.unique(l):
            means[k] = f[l == k].mean(0)
        return 1.0 - ((f - means[l]) ** 2).mean() / f.var(axis=(0, 1)).mean()

    fit = label_fit(lab)
    for dx, dy in ((3, 0), (0, 3), (-3, 0)):
        shifted = np.roll(lab, (dy, dx), axis=(0, 1))
        assert fit > label_fit(shifted) + 0.02, (dx, dy)
    sky = f[lab == S.SKY].mean(0)
    assert sky[2] > sky[0] and sky.mean() > 120
    veg = f[lab == S.VEGETATION].mean(0)
    assert veg[1] > veg[2]
    road = f[lab == S.ROAD].mean(0)
    assert road.max() - road.min() < 25


def test_object_interior_colour_matches_its_texture():
    """Render one car alone-ish: the pixels labelled car are exactly where the car's texture
    lands, so the car region's colour differs from the road around it."""
    c = S.generate_clip(H, W, 1, seed=5)
    lab, img = c.labels[0], c.frames[0].astype(np.float32)
    car = lab == S.CAR
    assert car.sum() > 200
    ring = cv2.dilate(car.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~car
    ring &= lab == S.ROAD
    inner = cv2.erode(car.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    # inside the car the colour is not the road's; the one-pixel boundary is where they meet
    d_in = np.abs(img[inner].mean(0) - img[ring].mean(0)).sum()
    assert d_in > 15


# ---------------------------------------------------------------------------------------------
# motion
# ---------------------------------------------------------------------------------------------
def test_flow_warps_previous_labels_onto_current(clip):
    """Backward warping of frame t-1 with the ground-truth flow reproduces frame t's labels
    (except at occlusions and edges) much better than no motion does."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    for t in range(1, 6):
        mx, my = xs - clip.flow[t, ..., 0], ys - clip.flow[t, ..., 1]
        inside = (mx >= 0) & (mx <= W - 1) & (my >= 0) & (my <= H - 1)
        warped = cv2.remap(clip.labels[t - 1], mx, my, cv2.INTER_NEAREST)
        agree = (warped == clip.labels[t])[inside].mean()
        identity = (clip.labels[t - 1] == clip.labels[t]).mean()
        assert agree > 0.94, agree
        assert agree > identity + 0.02, (agree, identity)
        # and the frames: warped previous frame is much closer than the previous frame itself
        wimg = cv2.remap(clip.frames[t - 1], mx, my, cv2.INTER_LINEAR).astype(np.float32)
        err = np.abs(wimg - clip.frames[t])[inside].mean()
        err0 = np.abs(clip.frames[t - 1].astype(np.float32) - clip.frames[t]).mean()
        assert err < 0.7 * err0, (err, err0)


def test_motion_statistics_in_claimed_range(clip):
    st = S.motion_statistics(clip.flow)
    lo, hi = S.FLOW_MEAN_RANGE_AT_2048
    scale = W / 2048.0
    assert lo * scale <= st["mean"] <= hi * scale, st["mean"]
    assert st["max"] > 3 * st["mean"], "independently moving / near objects move faster"


def test_block_matching_on_frames_agrees_with_ground_truth(clip):
    """Motion measured on the pixels alone (exhaustive block matching) matches the ground truth
    on blocks whose true motion is uniform and whose texture is informative."""
    t = 3
    bm = S.block_matching(clip.frames[t - 1], clip.frames[t], block=16, search=12)
    f = clip.flow[t].reshape(H // 16, 16, W // 16, 16, 2)
    gt = f.mean((1, 3))
    uniform = f.std((1, 3)).max(-1) < 0.5
    grey = cv2.cvtColor(clip.frames[t], cv2.COLOR_RGB2GRAY).astype(np.float32)
    tex = grey.reshape(H // 16, 16, W // 16, 16).std((1, 3)) > 4
    sel = uniform & tex & (np.abs(gt).max(-1) < 11)
    assert sel.sum() >= 15
    err = np.linalg.norm(bm - gt, axis=-1)[sel]
    assert np.median(err) < 1.0, np.median(err)
    # the measured motion has the ground truth's magnitude (not zero: the scene moves)
    assert np.linalg.norm(bm, axis=-1)[sel].mean() > 0.5 * np.linalg.norm(gt, axis=-1)[sel].mean()


def test_difficulty_scales_motion():
    still = S.generate_clip(64, 128, 3, seed=4, difficulty=0.0)
    assert np.abs(still.flow).max() < 1e-3
    assert still.labels[1].tobytes() == still.labels[2].tobytes()
    slow = S.motion_statistics(S.generate_clip(64, 128, 3, seed=4, difficulty=0.5).flow)["mean"]
    fast = S.motion_statistics(S.generate_clip(64, 128, 3, seed=4, difficulty=1.5).flow)["mean"]
    assert fast > 2 * slow


# ---------------------------------------------------------------------------------------------
# Cityscapes tree, contact sheet
# ---------------------------------------------------------------------------------------------
def test_write_cityscapes_tree_layout(tmp_path):
    out = S.write_cityscapes_tree(str(tmp_path), "val", num_clips=2, clip_length=3, height=48,
                                  width=96, seed=7)
    city = S.CITY
    assert out["annotated_frame"] == 2  # shorter than 20 frames: the last frame
    seq_dir = tmp_path / "leftImg8bit_sequence" / "val" / city
    gt_dir = tmp_path / "gtFine" / "val" / city
    ann_dir = tmp_path / "leftImg8bit" / "val" / city
    assert len(os.listdir(seq_dir)) == 6
    assert len(os.listdir(gt_dir)) == 12
    assert sorted(os.listdir(ann_dir)) == [f"{city}_000000_000002_leftImg8bit.png",
                                           f"{city}_000001_000002_leftImg8bit.png"]
    img = cv2.imread(str(seq_dir / f"{city}_000001_000001_leftImg8bit.png"))
    assert img.shape == (48, 96, 3)
    train = cv2.imread(str(gt_dir / f"{city}_000001_000001_gtFine_labelTrainIds.png"),
                       cv2.IMREAD_UNCHANGED)
    ids = cv2.imread(str(gt_dir / f"{city}_000001_000001_gtFine_labelIds.png"),
                     cv2.IMREAD_UNCHANGED)
    assert train.dtype == np.uint8 and train.shape == (48, 96)
    np.testing.assert_array_equal(labels_lib.cityscapes_label_ids_to_train_ids(ids), train)
    # the files hold exactly the clip that generate_clip makes from the clip seed
    c = S.generate_clip(48, 96, 3, out["clips"][1]["seed"])
    np.testing.assert_array_equal(train, c.labels[1])
    np.testing.assert_array_equal(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), c.frames[1])
    assert S.clip_seed(7, "val", 0) != S.clip_seed(7, "train", 0)
    assert S.annotated_index(30) == 19 and S.annotated_index(20) == 19


def test_contact_sheet(tmp_path, clip):
    p = tmp_path / "sheet.png"
    sheet = S.contact_sheet(clip, path=str(p), max_frames=3)
    assert sheet.shape == (3 * H, 2 * W, 3)
    assert cv2.imread(str(p)).shape == sheet.shape
    np.testing.assert_array_equal(sheet[:H, W:], labels_lib.colorize(clip.labels[0]))


# ---------------------------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, name", [
    (dict(height=0), "height"), (dict(width=-5), "width"), (dict(num_frames=0), "num_frames"),
    (dict(seed=-1), "seed"), (dict(difficulty=-0.1), "difficulty"),
    (dict(difficulty=float("nan")), "difficulty"), (dict(height=12.5), "height"),
    (dict(seed="a"), "seed"),
])
def test_bad_arguments_raise_clear_errors(kwargs, name):
    args = dict(height=64, width=128, num_frames=2, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        S.generate_clip(**args)
    with pytest.raises(ValueError, match=name):
        next(S.iter_clip(**args))


def test_bad_tree_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_clips"):
        S.write_cityscapes_tree(str(tmp_path), "train", 0, 3, 32, 64, 0)
    with pytest.raises(ValueError, match="split"):
        S.write_cityscapes_tree(str(tmp_path), "a/b", 1, 3, 32, 64, 0)
    with pytest.raises(ValueError, match="clip_length"):
        S.write_cityscapes_tree(str(tmp_path), "train", 1, 0, 32, 64, 0)


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def _run_app(*args):
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, "-m", "experiments.make_synthetic", *args], cwd=root,
                          capture_output=True, text=True, timeout=120)


def test_make_synthetic_app(tmp_path):
    sheet = tmp_path / "sheet.png"
    r = _run_app(f"--output_dir={tmp_path / 'd'}", "--num_clips=1", "--clip_length=2",
                 "--height=32", "--width=64", "--seed=1", "--split=train",
                 f"--contact_sheet={sheet}")
    assert r.returncode == 0, r.stderr
    assert "train clip 1/1" in r.stdout
    names = os.listdir(tmp_path / "d" / "leftImg8bit_sequence" / "train" / S.CITY)
    assert sorted(names) == [f"{S.CITY}_000000_00000{i}_leftImg8bit.png" for i in (0, 1)]
    assert cv2.imread(str(sheet)).shape == (2 * 32, 2 * 64, 3)
    r = _run_app(f"--output_dir={tmp_path / 'e'}", "stray")
    assert r.returncode != 0 and "unexpected arguments: stray" in r.stderr
    assert not (tmp_path / "e").exists()


def test_calibrate_encodes_and_measures():
    """End to end with the compressed-stream reader: vectors and residuals are measured on
    P-frames only and are of the order of the ground-truth motion."""
    pytest.importorskip("av")
    r = S.calibrate(64, 128, 6, seed=0)
    assert r["p_frames"] == 5
    assert 0.0 < r["mv_mean_px"] <= r["mv_max_px"]
    assert r["mv_mean_px"] < 3 * r["gt_flow_mean_px"]
    assert r["residual_sum"] > 0 and 0.0 <= r["residual_frac_over_thr"] <= 1.0
    t = S.scaled_targets(1024, 2048)
    assert t["mv_mean_px"] == S.CITYSCAPES_TARGETS["mv_mean_px"]
    assert S.scaled_targets(512, 1024)["residual_sum"][1] == pytest.approx(2.2e7 / 4)


def test_encode_clip_is_the_generated_clip_encoded(tmp_path):
    """The one synthetic clip encoder: every rendered frame is handed to on_frame and encoded
    (GOP, frame count, size), the decoded frames are the generated ones up to MPEG-4 loss, and
    bad arguments fail before a file exists."""
    pytest.importorskip("av")
    from third_party.compressed_video import open_compressed
    ref = S.generate_clip(64, 128, 5, seed=2)
    seen = []
    path = S.encode_clip(str(tmp_path / "c.avi"), 64, 128, 5, seed=2, gop=3, qscale=2,
                         on_frame=seen.append)
    assert path == str(tmp_path / "c.avi")
    assert [f.index for f in seen] == list(range(5))
    np.testing.assert_array_equal(np.stack([f.label for f in seen]), ref.labels)
    np.testing.assert_array_equal(np.stack([f.flow for f in seen]), ref.flow)
    with open_compressed(path, residual=None) as video:
        decoded = [(f.pict_type, f.image) for f in video]
    assert [t for t, _ in decoded] == ["I", "P", "P", "I", "P"]
    images = np.stack([im for _, im in decoded]).astype(np.float64)
    assert images.shape == ref.frames.shape
    psnr = 10 * np.log10(255.0 ** 2 / ((images - ref.frames) ** 2).mean())
    assert psnr > 25, psnr
    with pytest.raises(ValueError, match="seed"):
        S.encode_clip(str(tmp_path / "bad.avi"), 64, 128, 5, seed=-1)
    assert not (tmp_path / "bad.avi").exists()


def test_package_modules_stay_small():
    """One idea per module: no part of taplab_tf.data.synthetic grows past about 600 lines."""
    folder = os.path.dirname(S.__file__)
    sizes = {n: sum(1 for _ in open(os.path.join(folder, n)))
             for n in os.listdir(folder) if n.endswith(".py")}
    assert len(sizes) >= 10 and max(sizes.values()) <= 600, sizes
