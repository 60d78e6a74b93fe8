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
    # An evaluation scale that is not a number in (0, 4] (segment's automatic scale reads it).
    for scale in ("4/3", None, 0, 9.0, True):
        json.dump(dict(meta, input_scale=scale), open(meta_path, "w"))
        with pytest.raises(ValueError, match="input_scale must be a number in"):
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


def _dw_model():
    """Depthwise conv + BN (folded), a Conv2D + BN (left to TF's own fusion), and a depthwise
    conv whose output also feeds a second consumer (left alone)."""
    tf.keras.utils.set_random_seed(3)
    L = tf.keras.layers
    inp = tf.keras.Input((None, None, 3))
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0)(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, depth_multiplier=2)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0)(x)
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    z = L.BatchNormalization()(y)
    out = L.Conv2D(4, 1)(L.Concatenate()([z, y]))
    model = tf.keras.Model(inp, out)
    for layer in model.layers:  # statistics that are not the identity
        if isinstance(layer, L.BatchNormalization):
            for v in (layer.moving_mean, layer.moving_variance, layer.gamma, layer.beta):
                v.assign(tf.random.uniform(v.shape, 0.5, 1.5))
    return model


def test_frozen_forward_folds_depthwise_batchnorm_and_agrees():
    from tensorflow.python.framework import convert_to_constants
    model = _dw_model()
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, None, None, 3], tf.float32))
    frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
    graph_def, folded = models.inference.fold_depthwise_batchnorm(frozen.graph.as_graph_def())
    assert folded == 1  # not after the Conv2D, not where the conv output is read twice
    ops = [n.op for n in graph_def.node]
    assert ops.count("FusedBatchNormV3") == 2 and ops.count("BiasAdd") >= 1
    x = tf.random.uniform((1, 19, 23, 3), 0, 255, seed=1)
    want = model(x, training=False).numpy()
    for fold in (True, False):
        got = models.frozen_forward(model, fold_batchnorm=fold)(x).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # BL2 (a depthwise conv in each MobileNetV2 block and each separable decoder conv, every
    # one followed by BatchNorm) folds all of them.
    bl2 = models.build_model("bl2", 5, width_multiplier=0.35)
    concrete = tf.function(lambda x: bl2(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, None, None, 3], tf.float32))
    graph_def = convert_to_constants.convert_variables_to_constants_v2(concrete).graph.as_graph_def()
    _, folded = models.inference.fold_depthwise_batchnorm(graph_def)
    assert folded == sum(n.op == "DepthwiseConv2dNative" for n in graph_def.node) >= 17
