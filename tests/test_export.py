"""SavedModel export of phi: the serving signature agrees with the Keras model, the engine runs
phi from the SavedModel as from the Keras model, and an export never overwrites anything."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from taplab_tf import config as C
from taplab_tf import models
from taplab_tf.models import export as X
from taplab_tf.pipeline import engine as E
from tests.helpers import stream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bl2():
    return models.build_model("bl2", 11, width_multiplier=0.35)


def test_serving_signature_matches_the_keras_model(bl2, tmp_path):
    path = X.export_saved_model(bl2, str(tmp_path / "sm"), {"dataset": "camvid"})
    loaded = tf.saved_model.load(path)
    images = np.random.default_rng(0).integers(0, 256, (2, 70, 90, 3), dtype=np.uint8)
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    ref = bl2(tf.cast(images, tf.float32), training=False).numpy()
    np.testing.assert_allclose(out["logits"].numpy(), ref, atol=1e-4)
    # labels: argmax of the logits upsampled to (h*s, w*s), cropped to the image (the engine's)
    s = bl2.output_stride
    up = tf.image.resize(ref, (ref.shape[1] * s, ref.shape[2] * s), "bilinear")
    expected = tf.argmax(up, -1).numpy()[:, :70, :90]
    assert out["labels"].dtype == tf.uint8 and out["labels"].shape == (2, 70, 90)
    assert (out["labels"].numpy() == expected).mean() > 0.999
    meta = json.load(open(os.path.join(path, "assets.extra", X.METADATA_FILE)))
    assert meta["dataset"] == "camvid" and meta["output_stride"] == s and meta["num_classes"] == 11


def test_the_engine_runs_phi_from_the_savedmodel(tmp_path):
    keras_phi = stream.tiny_model()
    path = X.export_saved_model(keras_phi, str(tmp_path / "sm"))
    saved_phi = X.load_saved_model(path)
    assert saved_phi.output_stride == stream.STRIDE and saved_phi.num_classes == stream.NC
    cfg = C.TapLabConfig(modules="ffw", gop=4)
    a = list(E.TapLabEngine(keras_phi, cfg).segment(stream.clip(6, gop=4)))
    b_engine = E.TapLabEngine(saved_phi, cfg)
    b = list(b_engine.segment(stream.clip(6, gop=4)))
    assert b_engine.phi_graph == "frozen"
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra.labels, rb.labels)


def test_an_existing_target_is_never_overwritten(bl2, tmp_path):
    target = tmp_path / "sm"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    with pytest.raises(ValueError, match="already exists"):
        X.export_saved_model(bl2, str(target))
    assert os.listdir(target) == ["mine.txt"]
    assert sorted(os.listdir(tmp_path)) == ["sm"]  # no temporary folder left


def test_loading_something_else_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="no saved_model.pb"):
        X.load_saved_model(str(tmp_path))
    (tmp_path / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot load") as e:
        X.load_saved_model(str(tmp_path))
    assert "\n" not in str(e.value)


def test_export_app_then_segment_from_the_savedmodel(bl2, tmp_path):
    ckpt = str(tmp_path / "ckpt")
    models.save_model(bl2, ckpt, dataset="camvid")
    env = dict(os.environ)

    def run(*args):
        return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
    out = str(tmp_path / "exported")
    p = run("experiments.export", f"--checkpoint={ckpt}", f"--output={out}")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "serving_default" in p.stdout and os.path.isfile(os.path.join(out, "saved_model.pb"))
    again = run("experiments.export", f"--checkpoint={ckpt}", f"--output={out}")
    assert again.returncode != 0 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    p = run("experiments.segment", f"--checkpoint={out}", "--num_frames=4", "--height=64",
            "--width=128", "--gop=2", f"--workspace={tmp_path}",
            f"--output={tmp_path / 'seg.mp4'}")
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "seg.mp4").is_file() and "frames 4" in p.stdout
