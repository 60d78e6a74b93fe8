"""Small serializable Keras layers shared by the BL1/BL2/BL3 networks.

All of them work on dynamic spatial sizes (the models take any H, W), and all have get_config so
that a model round-trips through Keras serialization as well as through taplab save/load.
"""
from __future__ import annotations

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="taplab")
class Normalize(tf.keras.layers.Layer):
    """(x - mean) / std per channel: the network's input normalisation, inside the model."""

    def __init__(self, mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]

    def call(self, x):
        x = tf.cast(x, tf.float32)
        return (x - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@tf.keras.utils.register_keras_serializable(package="taplab")
class PadToMultiple(tf.keras.layers.Layer):
    """Zero-pads the bottom and right so that H and W become multiples of `multiple`.

    Applied after Normalize, so the padding is the mean colour. Padding bottom/right keeps logit
    pixel (i, j) centred on input pixel ((i + 0.5) s, (j + 0.5) s), the mv_warp convention.
    """

    def __init__(self, multiple, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        shape = tf.shape(x)
        pad_h = (-shape[1]) % self.multiple
        pad_w = (-shape[2]) % self.multiple
        return tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@tf.keras.utils.register_keras_serializable(package="taplab")
class CropToStride(tf.keras.layers.Layer):
    """[logits, image] -> logits[:, :ceil(H / s), :ceil(W / s)], H, W the image's size."""

    def __init__(self, stride, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, inputs):
        logits, image = inputs
        shape = tf.shape(image)
        h = (shape[1] + self.stride - 1) // self.stride
        w = (shape[2] + self.stride - 1) // self.stride
        return logits[:, :h, :w, :]

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@tf.keras.utils.register_keras_serializable(package="taplab")
class ResizeLike(tf.keras.layers.Layer):
    """[x, ref] -> x bilinearly resized (half-pixel centres) to ref's spatial size."""

    def __init__(self, method="bilinear", **kwargs):
        super().__init__(**kwargs)
        self.method = method

    def call(self, inputs):
        x, ref = inputs
        size = tf.shape(ref)[1:3]
        return tf.cast(tf.image.resize(x, size, method=self.method), x.dtype)

    def get_config(self):
        return {**super().get_config(), "method": self.method}


@tf.keras.utils.register_keras_serializable(package="taplab")
class AdaptiveAvgPool(tf.keras.layers.Layer):
    """Average pooling to a fixed bins x bins grid whatever the input size (PSPNet's pyramid).

    Uses area resampling, i.e. each output cell averages the (fractional) input area it covers,
    which equals adaptive average pooling when the size is a multiple of `bins`.
    """

    def __init__(self, bins, **kwargs):
        super().__init__(**kwargs)
        self.bins = int(bins)

    def call(self, x):
        if self.bins == 1:
            return tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        return tf.cast(tf.image.resize(x, [self.bins, self.bins], method="area"), x.dtype)

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}


def conv_bn_relu(x, filters, kernel_size=3, strides=1, dilation=1, name="conv", relu=True):
    """Conv (no bias) + BatchNorm (+ ReLU), layers named name/conv, name/bn, name/relu."""
    x = tf.keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                               dilation_rate=dilation, use_bias=False,
                               kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-5, name=f"{name}_bn")(x)
    if relu:
        x = tf.keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def sep_conv_bn_relu(x, filters, name="sepconv"):
    """Depthwise 3x3 + BN + ReLU, then pointwise 1x1 + BN + ReLU (MobileNet-style)."""
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = tf.keras.layers.BatchNormalization(epsilon=1e-5, name=f"{name}_dw_bn")(x)
    x = tf.keras.layers.ReLU(name=f"{name}_dw_relu")(x)
    return conv_bn_relu(x, filters, 1, name=f"{name}_pw")


def classifier(x, num_classes, name="logits"):
    """1x1 conv to num_classes, float32 output."""
    return tf.keras.layers.Conv2D(num_classes, 1, dtype="float32", name=name)(x)
