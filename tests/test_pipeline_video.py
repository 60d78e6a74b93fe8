"""The engine end to end on real MPEG-4 streams: reader -> Algorithm 1 -> labels / overlay video,
and the video-evaluation protocol on a small Cityscapes-layout tree made here."""
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from taplab_tf import config as C
from taplab_tf.pipeline import engine as E
from taplab_tf.pipeline import evaluate as V
from taplab_tf.pipeline import segment as S
from third_party.compressed_video import encode_video, open_compressed
from tests.helpers.stream import interrupt_output_after
from tests.helpers.video import H, NC, W, encoded_pan, tiny_model, write_tree
from tests.helpers.video import textured_pan  # noqa: F401  (test_rgfs_online imports it from here)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return encoded_pan(tmp_path_factory.mktemp("v"), 14)


@pytest.mark.parametrize("modules", ["none", "ffw", "ffw,rgc", "ffw,rgfs", "ffw,rgc,rgfs"])
def test_engine_runs_every_module_set_on_a_real_stream(video, modules):
    cfg = C.TapLabConfig(modules=modules, gop=6, thr_rgfs=1e9)
    engine = E.TapLabEngine(tiny_model(), cfg)
    results = list(engine.segment_video(video))
    assert len(results) == 14
    assert [r.pict_type for r in results] == ["I" if i % 6 == 0 else "P" for i in range(14)]
    assert all(r.labels.shape == (H, W) and r.labels.dtype == np.uint8 for r in results)
    if modules == "none":
        assert all(r.action == "phi" for r in results)
    else:
        assert [r.action for r in results if r.pict_type == "P"] == ["ffw"] * 11
    assert all((r.rgc_region is not None) == ("rgc" in modules and r.action == "ffw")
               for r in results)
    summary = E.summarize(results)
    assert summary["frames"] == 14 and summary["i_frames"] == 3 and summary["fps"] > 0


def test_ffw_tracks_the_pan(video):
    """Warped logits of the last P-frame of a GOP equal phi's logits on that frame, inside."""
    model = tiny_model()
    engine = E.TapLabEngine(model, C.TapLabConfig(modules="ffw", gop=6))
    results = list(engine.segment_video(video, keep_logits=True))
    with open_compressed(video, residual=None) as v:
        images = [f.image for f in v]
    last = results[5]
    direct = model(tf.cast(images[5], tf.float32)[None]).numpy()
    # Columns that came into view during the GOP (the left 5*4 px) cannot be propagated.
    inner = slice(8, None)
    err = np.abs(last.logits[:, :, inner] - direct[:, :, inner]).mean()
    drift = np.abs(results[0].logits[:, :, inner] - direct[:, :, inner]).mean()
    assert err < 0.5 * drift, (err, drift)


def test_rgfs_threshold_drives_the_keyframes(video):
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw,rgfs", gop=6, thr_rgfs=0.0))
    results = list(engine.segment_video(video))
    assert all(r.action == "rgfs" for r in results if r.pict_type == "P" and r.rgfs_score > 0)


def test_segment_file_writes_a_complete_overlay(video, tmp_path):
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(gop=6, scale_to_frame=True))
    out = str(tmp_path / "out.mp4")
    summary = S.segment_file(engine, video, out, labels_dir=str(tmp_path / "labels"),
                             draw_regions=True, mark_keyframes=True, progress=False)
    assert summary["frames"] == 14 and os.path.isfile(out)
    with open_compressed(out, residual=None) as v:
        assert v.num_frames == 14 and (v.height, v.width) == (H, W)
    assert len(os.listdir(tmp_path / "labels")) == 14
    assert not any("partial" in f for f in os.listdir(tmp_path))


def test_failed_run_leaves_no_output(video, tmp_path, monkeypatch):
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw", gop=6))
    interrupt_output_after(monkeypatch, engine, 3)
    with pytest.raises(KeyboardInterrupt):
        S.segment_file(engine, video, str(tmp_path / "out.mp4"), progress=False)
    assert os.listdir(tmp_path) == []


def test_video_evaluation_protocol(tmp_path):
    write_tree(str(tmp_path))
    clips = V.list_clips("synthetic", str(tmp_path), "val")
    assert len(clips) == 2
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw", gop=6))
    res = V.evaluate_clips(engine, clips, "synthetic", gop=6, seed=3, progress=None)
    assert 0.0 <= res["miou"] <= 1.0 and res["clips"] == 2
    assert len(res["per_distance_miou"]) == 6
    assert all(0 <= p < 6 for p in res["annotated_gop_positions"])
    # every frame is labelled: distance 0 (I-frames) is phi itself on every clip
    assert res["per_distance_miou"][0] is not None and res["miou_all_frames"] is not None
    again = V.evaluate_clips(engine, clips, "synthetic", gop=6, seed=3, progress=None)
    assert again["annotated_gop_positions"] == res["annotated_gop_positions"]
    assert again["miou"] == res["miou"]


def test_evaluation_refuses_a_checkpoint_of_another_class_count(tmp_path):
    write_tree(str(tmp_path), n_clips=1)
    inp = tf.keras.Input((None, None, 3))
    model = tf.keras.Model(inp, tf.keras.layers.Conv2D(11, 4, strides=4)(inp))
    engine = E.TapLabEngine(model, C.TapLabConfig(modules="ffw", gop=6), output_stride=4)
    with pytest.raises(ValueError, match="11 classes"):
        V.evaluate_clips(engine, V.list_clips("synthetic", str(tmp_path), "val"), "synthetic", 6)


def test_odd_frame_size_runs_with_every_module():
    """Sizes that are multiples of neither 16 nor phi's stride: the model pads and the labels are
    cropped back; RGC regions start on phi's logit grid."""
    from taplab_tf import models
    import tempfile
    rng = np.random.default_rng(1)
    big = cv2.GaussianBlur(rng.integers(0, 256, (70, 200, 3)).astype(np.uint8), (5, 5), 0)
    frames = np.stack([np.ascontiguousarray(big[:, 40 - 3 * i:40 - 3 * i + 134])
                       for i in range(8)])
    model = models.build_model("bl2", NC, width_multiplier=0.35)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "odd.avi")
        encode_video(frames, path, gop=4)
        cfg = C.TapLabConfig(modules="ffw,rgc,rgfs", gop=4, region_shape=(48, 48),
                             region_stride=24, scale_to_frame=False)
        engine = E.TapLabEngine(model, cfg)
        results = list(engine.segment_video(path))
    assert len(results) == 8 and all(r.labels.shape == (70, 134) for r in results)
    s = model.output_stride
    for r in results:
        if r.rgc_region is not None:
            y, x, h, w = r.rgc_region
            assert y % s == 0 and x % s == 0 and y + h <= 70 and x + w <= 134


def test_ffw_engine_reads_the_pixels_of_keyframes_only(video, monkeypatch):
    from third_party.compressed_video import reader as R
    converted = []
    original = R.CompressedVideo._to_rgb

    def counting(self, f):
        converted.append(f.pict_type)
        return original(self, f)
    monkeypatch.setattr(R.CompressedVideo, "_to_rgb", counting)
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw", gop=6))
    results = list(engine.segment_video(video))
    assert len(results) == 14 and len(converted) == 3  # the three I-frames
    # Per-frame phi and RGC read every frame.
    converted.clear()
    list(E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="none", gop=6)).segment_video(video))
    assert len(converted) == 14


def test_accumulated_rgfs_calibration_replays_the_trigger():
    from taplab_tf.pipeline import calibrate
    # GOP 4, every P-frame scores 10: the accumulated sum passes 25 at every third P-frame
    # since the last reset, so per GOP [I P P P] one of three P-frames fires.
    is_p = np.array([False, True, True, True] * 3)
    scores = np.where(is_p, 10.0, 0.0)
    seq = [(is_p, scores)]
    assert calibrate.fired_fraction(seq, 25.0, accumulate=True) == pytest.approx(1 / 3)
    assert calibrate.fired_fraction(seq, 25.0, accumulate=False) == 0.0
    assert calibrate.fired_fraction(seq, 15.0, accumulate=True) == pytest.approx(1 / 3)
    assert calibrate.fired_fraction(seq, 5.0, accumulate=True) == 1.0
    thr = calibrate.threshold_for_fraction_accumulated(seq, 1 / 3)
    # Below 10 every P-frame fires; from 10 on, only the second of each GOP (sum 20).
    assert thr == pytest.approx(10.0, abs=1e-6)
    assert calibrate.fired_fraction(seq, thr, accumulate=True) <= 1 / 3
    assert calibrate.threshold_for_fraction_accumulated(seq, 0.0) >= 30.0
    with pytest.raises(ValueError, match="no P-frames"):
        calibrate.threshold_for_fraction_accumulated([(np.array([False]), np.zeros(1))], 0.1)


def test_rgfs_calibration_reads_residuals_on_the_engines_vector_grid(tmp_path):
    """A 4MV stream compensated with its own 8x8 vectors (what the engine reads at
    mv_block_size=8) leaves smaller residuals than with each macroblock's mean vector: the
    calibration must read the grid the engine reads."""
    from taplab_tf.pipeline import calibrate
    from tests.helpers.frames import rotating_frames
    from third_party.compressed_video import encode_video
    path = str(tmp_path / "mv4.avi")
    encode_video(rotating_frames(6), path, gop=12, qscale=3, mv4=True)
    fine = calibrate.p_frame_scores(path, mv_block_size=8)
    coarse = calibrate.p_frame_scores(path)
    assert fine.shape == coarse.shape == (5,) and fine.sum() < coarse.sum()
    with open_compressed(path, rgb=False, residual="summary", mv_block_size=8) as v:
        raw = [f.residual_sum for f in v if f.pict_type == "P"]
    h, w = v.height, v.width
    np.testing.assert_allclose(fine, np.array(raw) * (1024 * 2048) / (h * w))
    assert calibrate.threshold_for_video(path, 0.2, mv_block_size=8) == \
        calibrate.threshold_for_fraction(fine, 0.2)


def test_rgfs_calibration_scores_and_threshold(video):
    from taplab_tf.pipeline import calibrate
    scores = calibrate.p_frame_scores(video)
    assert scores.shape == (11,) and (scores > 0).all()
    with open_compressed(video, rgb=False, residual="summary") as v:
        raw = [f.residual_sum for f in v if f.pict_type == "P"]
    np.testing.assert_allclose(scores, np.array(raw) * (1024 * 2048) / (H * W))
    assert calibrate.threshold_for_fraction(list(range(1, 11)), 0.2) == 8  # 9 and 10 above it
    assert calibrate.threshold_for_fraction([5.0], 0.0) == 5.0
    with pytest.raises(ValueError, match="fraction"):
        calibrate.threshold_for_fraction([1.0], 1.5)
