"""build_model / output_stride: the one place a network name becomes a Keras model."""
from __future__ import annotations

import tensorflow as tf

from taplab_tf.config import MODEL_NAMES
from taplab_tf.models import layers as L
from taplab_tf.models import networks
# MODEL_NAMES lives in taplab_tf.config (importable without TF); networks.NETWORKS implements
# exactly those names (tests/test_constants.py).
BN_MOMENTUM = 0.99


def _check_name(name):
    if name not in networks.NETWORKS:
        raise ValueError(f"model: unknown {name!r}; choose from {list(MODEL_NAMES)}")


def model_kwargs(name: str, **kwargs) -> dict:
    """The full keyword set of network `name`: its defaults updated with kwargs (validated)."""
    _check_name(name)
    defaults = networks.NETWORKS[name][1]
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise ValueError(f"build_model: {name} takes no argument(s) {unknown}; "
                         f"it takes {sorted(defaults)}")
    out = dict(defaults)
    out.update(kwargs)
    if float(out["width_multiplier"]) <= 0:
        raise ValueError(f"width_multiplier: must be > 0, got {out['width_multiplier']}")
    if "depths" in out:
        out["depths"] = [int(v) for v in out["depths"]]
        if len(out["depths"]) != 4 or min(out["depths"]) < 1:
            raise ValueError(f"depths: must be four integers >= 1, got {out['depths']}")
    return out


def output_stride(name: str, **kwargs) -> int:
    """Logits stride s: bl1 8, bl2 4, bl3 8 (32 with dilated=False)."""
    kw = model_kwargs(name, **kwargs)
    if name == "bl2":
        return 4
    if name == "bl3" and not kw["dilated"]:
        return 32
    return 8


def input_multiple(name: str, **kwargs) -> int:
    """Inputs are zero-padded (after normalisation) to a multiple of this inside the model."""
    kw = model_kwargs(name, **kwargs)
    if name == "bl3" and kw["dilated"]:
        return 8
    return 32


def build_model(name: str = "bl2", num_classes: int = 19, **kwargs) -> tf.keras.Model:
    """The segmentation network phi.

    Input 'image': float32 RGB in [0, 255], [N, H, W, 3], any H and W. Output: float32 logits
    [N, ceil(H / s), ceil(W / s), num_classes] with s = output_stride(name, **kwargs); logit (i, j)
    is centred on input pixel ((i + 0.5) s, (j + 0.5) s). Normalisation happens inside; the input
    is padded bottom/right to input_multiple(name) and the logits cropped back.

    kwargs: width_multiplier (all), depths (bl1, bl3), decoder_channels (bl2), dilated and
    dropout (bl3); see taplab_tf.models.networks for the defaults.
    The model carries .output_stride, .taplab_name and .taplab_spec (what save_model writes).
    """
    kw = model_kwargs(name, **kwargs)
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes: must be an integer >= 1, got {num_classes}")
    builder, _, mean, std = networks.NETWORKS[name]
    stride = output_stride(name, **kw)
    image = tf.keras.Input(shape=(None, None, 3), dtype=tf.float32, name="image")
    x = L.Normalize(mean, std, name="normalize")(image)
    x = L.PadToMultiple(input_multiple(name, **kw), name="pad")(x)
    logits, s = builder(x, int(num_classes), **kw)
    assert s == stride, (s, stride)
    logits = L.CropToStride(stride, name="crop_logits")([logits, image])
    model = tf.keras.Model(image, logits, name=name)
    # One BatchNorm momentum everywhere: keras.applications' MobileNetV2 uses 0.999, whose
    # moving statistics need ~5000 steps to forget their initial values, far more than a short
    # from-scratch run (inference-mode outputs were garbage after 1000 steps).
    for layer in model.submodules:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    model.output_stride = stride
    model.taplab_name = name
    model.taplab_spec = {"model": name, "num_classes": int(num_classes), "kwargs": kw,
                         "output_stride": stride}
    return model
