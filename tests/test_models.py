"""BL1/BL2/BL3 builders, output shapes and strides, save_model/load_model round trip and errors."""
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from taplab_tf import models

TINY = {
    "bl1": dict(width_multiplier=0.125, depths=(1, 1, 1, 1)),
    "bl2": dict(width_multiplier=0.35, decoder_channels=16),
    "bl3": dict(width_multiplier=0.125, depths=(1, 1, 1, 1)),
}
STRIDES = {"bl1": 8, "bl2": 4, "bl3": 8}


@pytest.fixture(scope="module")
def tiny_models():
    tf.keras.utils.set_random_seed(0)
    return {name: models.build_model(name, 5, **kw) for name, kw in TINY.items()}


@pytest.mark.parametrize("name", sorted(TINY))
def test_output_shape_and_stride_for_odd_sizes(tiny_models, name):
    model = tiny_models[name]
    s = models.output_stride(name)
    assert s == STRIDES[name] == model.output_stride
    for h, w in [(64, 64), (65, 97), (33, 47), (17, 130)]:
        x = tf.random.uniform((2, h, w, 3), 0, 255, seed=1)
        y = model(x, training=False)
        assert y.dtype == tf.float32
        assert tuple(y.shape) == (2, math.ceil(h / s), math.ceil(w / s), 5), (name, h, w)
        assert np.isfinite(y.numpy()).all()


def test_layers_are_named_and_stride_rules():
    assert models.output_stride("bl3", dilated=False) == 32
    assert models.input_multiple("bl3") == 8 and models.input_multiple("bl2") == 32
    m = models.build_model("bl2", 3, **TINY["bl2"])
    names = [layer.name for layer in m.layers]
    assert {"image", "normalize", "pad", "mobilenetv2", "logits", "crop_logits"} <= set(names)
    # keras.applications' BN momentum (0.999) is overridden: short runs need usable statistics.
    bns = [l for l in m.submodules if isinstance(l, tf.keras.layers.BatchNormalization)]
    assert bns and {l.momentum for l in bns} == {0.99}


def test_bad_arguments_raise_one_line():
    with pytest.raises(ValueError, match="model: unknown 'bl9'"):
        models.build_model("bl9", 19)
    with pytest.raises(ValueError, match=r"takes no argument\(s\) \['depths'\]"):
        models.build_model("bl2", 19, depths=(1, 1, 1, 1))
    with pytest.raises(ValueError, match="num_classes"):
        models.build_model("bl2", 0)


def test_save_load_round_trip(tmp_path, tiny_models):
    model = tiny_models["bl2"]
    x = tf.random.uniform((1, 45, 70, 3), 0, 255, seed=2)
    # Move the BN statistics away from their initial values so that they must be restored too.
    model(x, training=True)
    ref = model(x, training=False).numpy()
    d = str(tmp_path / "ckpt")
    models.save_model(model, d, dataset="synthetic", command="pytest", steps=3, val_miou=0.5)
    meta = json.load(open(os.path.join(d, "model.json")))
    assert meta["model"] == "bl2" and meta["num_classes"] == 5 and meta["steps"] == 3
    loaded, meta2 = models.load_model(d, model="bl2", num_classes=5)
    assert meta2["dataset"] == "synthetic" and meta2["output_stride"] == 4
    np.testing.assert_array_equal(loaded(x, training=False).numpy(), ref)


def test_load_errors(tmp_path, tiny_models):
    d = str(tmp_path / "ckpt")
    models.save_model(tiny_models["bl1"], d, dataset="synthetic")
    with pytest.raises(ValueError, match="trained for 5 classes, not 19"):
        models.load_model(d, num_classes=19)
    with pytest.raises(ValueError, match="holds a bl1 checkpoint, not bl2"):
        models.load_model(d, model="bl2")
    with pytest.raises(ValueError, match="not found"):
        models.load_model(str(tmp_path / "nowhere"))
    # Metadata that claims another class count than the weights hold: shape mismatch.
    meta_path = os.path.join(d, "model.json")
    meta = json.load(open(meta_path))
    bad = dict(meta, num_classes=7)
    json.dump(bad, open(meta_path, "w"))
    with pytest.raises(ValueError, match="cannot load"):
        models.load_model(d)
    # Truncated weights: caught by the checksum.
    json.dump(meta, open(meta_path, "w"))
    w = os.path.join(d, "weights.h5")
    data = open(w, "rb").read()
    open(w, "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        models.load_model(d)
    open(meta_path, "w").write("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        models.load_model(d)
    with pytest.raises(ValueError, match="not made by"):
        models.save_model(tf.keras.Sequential([tf.keras.layers.Dense(1)]), d)
