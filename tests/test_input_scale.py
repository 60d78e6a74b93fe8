"""phi at another input scale (TapLabConfig.input_scale): phi runs on the resized frame, FFW, RGC
and the output work at stride output_stride / input_scale of the video, and the labels come back
at the video's size."""
import cv2
import numpy as np
import pytest
import tensorflow as tf

from taplab_tf import config as C
from taplab_tf.data import labels as L
from taplab_tf.pipeline import engine as E
from tests.helpers.stream import FakeFrame as Frame

H, W, STRIDE, NC = 96, 160, 4, 5


def model_(seed=0):
    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((None, None, 3))
    x = tf.keras.layers.Rescaling(1 / 255.0)(inp)
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = tf.keras.layers.AveragePooling2D(STRIDE, padding="same")(x)
    x = tf.keras.layers.Conv2D(NC, 1)(x)
    m = tf.keras.Model(inp, x)
    m.output_stride = STRIDE
    return m


def frames_(n, mv=None, seed=0):
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8), (W, H))
    out = []
    for i in range(n):
        out.append(Frame(i, "I" if i == 0 else "P", i, base.copy(),
                         None if i == 0 else (np.zeros((H // 16, W // 16, 2), np.float32)
                                              if mv is None else mv)))
    return out


def phi_half(model, image):
    """phi on the image at half size, as the engine must run it at input_scale 0.5."""
    small = cv2.resize(image, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
    return model(tf.cast(small, tf.float32)[None]).numpy()


def test_phi_runs_on_the_half_size_frame_and_labels_come_back_full_size():
    model = model_()
    engine = E.TapLabEngine(model, C.TapLabConfig(modules="none", input_scale=0.5))
    assert engine.frame_stride == 8 and engine.input_scale == 0.5
    f = frames_(1)[0]
    (r,) = list(engine.segment([f], keep_logits=True))
    expected = phi_half(model, f.image)
    np.testing.assert_allclose(r.logits, expected, atol=1e-5)
    assert r.labels.shape == (H, W)
    up = tf.image.resize(expected, (expected.shape[1] * 8, expected.shape[2] * 8), "bilinear")
    np.testing.assert_array_equal(r.labels, tf.argmax(up, -1)[0, :H, :W].numpy())


def test_ffw_moves_the_logits_by_the_motion_over_the_video_stride():
    mv = np.zeros((H // 16, W // 16, 2), np.float32)
    mv[..., 0] = 16.0  # 16 video pixels right = 2 logit cells at frame stride 8
    engine = E.TapLabEngine(model_(), C.TapLabConfig(modules="ffw", input_scale=0.5))
    r0, r1 = list(engine.segment(frames_(2, mv=mv), keep_logits=True))
    np.testing.assert_allclose(r1.logits[:, :, 2:], r0.logits[:, :, :-2])


def test_rgc_region_snaps_to_the_video_stride_and_blends_phi_on_the_resized_crop():
    model = model_()
    cfg = C.TapLabConfig(modules="ffw,rgc", region_shape=(38, 38), region_stride=20,
                         input_scale=0.5, scale_to_frame=False)
    engine = E.TapLabEngine(model, cfg)
    fr = frames_(2)
    counts = np.zeros((H // 16, W // 16), np.int32)
    counts[3, 7] = 200
    fr[1].counts = counts
    r0, r1 = list(engine.segment(fr, keep_logits=True))
    y, x, h, w = r1.rgc_region
    assert h % 8 == 0 and w % 8 == 0 and y % 8 == 0 and x % 8 == 0 and (h, w) == (40, 40)
    crop = fr[1].image[y:y + h, x:x + w]
    small = cv2.resize(crop, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    expected = model(tf.cast(small, tf.float32)[None]).numpy()
    np.testing.assert_allclose(r1.logits[:, y // 8:(y + h) // 8, x // 8:(x + w) // 8], expected,
                               atol=1e-5)


def test_scale_one_is_the_paper_path():
    engine = E.TapLabEngine(model_(), C.TapLabConfig(modules="none"))
    assert engine.frame_stride == STRIDE and engine.input_scale == 1.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), 5.0])
def test_bad_input_scale_is_one_config_error(bad):
    with pytest.raises(C.ConfigError, match="input_scale"):
        C.TapLabConfig(input_scale=bad)


def test_auto_scale_from_the_training_size():
    camvid = L.training_frame_height({"dataset": "camvid"})
    assert camvid == 360
    assert C.auto_input_scale(camvid, 720, 4) == 0.5            # 720p phone video
    assert C.auto_input_scale(camvid, 360, 4) == 1.0            # CamVid's own size
    s = C.auto_input_scale(camvid, 1024, 4)                     # Cityscapes-size street video
    assert 4 / s == int(round(4 / s)) and abs(s - 360 / 1024) < 0.02
    assert C.auto_input_scale(512, 512, 4) == 1.0               # the shipped synthetic default
    assert C.auto_input_scale(None, 720, 4) == 1.0              # unknown: no resize
    assert L.training_frame_height({"dataset": "x", "train_frame_height": 480}) == 480


def test_auto_scale_keeps_the_models_evaluation_scale():
    """A model evaluated with phi at 4/3 of its training frames (model.json input_scale, the
    trainer's eval_input_scale) is matched to a video at that size: 720p at 2/3, not 1/2."""
    meta = {"dataset": "camvid", "input_scale": 4 / 3}
    assert L.phi_frame_height(meta) == 480
    assert L.phi_frame_height({"dataset": "camvid"}) == 360
    assert L.phi_frame_height({"dataset": "x"}) is None
    s = C.auto_input_scale(L.phi_frame_height(meta), 720, 4)
    assert 4 / s == 6 and abs(s - 2 / 3) < 1e-12
    for bad in ("big", float("nan"), 0, 9):
        with pytest.raises(ValueError, match="input_scale"):
            L.phi_frame_height({"dataset": "camvid", "input_scale": bad})


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 64)])
def test_a_frame_smaller_than_one_logit_cell_says_so(size):
    engine = E.TapLabEngine(model_(), C.TapLabConfig())
    with pytest.raises(E.EngineError, match="smaller than the model's minimum of 4x4"):
        engine.settings_for(*size)
    half = E.TapLabEngine(model_(), C.TapLabConfig(input_scale=0.5))
    with pytest.raises(E.EngineError, match="minimum of 8x8"):
        half.settings_for(6, 64)
