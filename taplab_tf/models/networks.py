"""The three segmentation networks phi of the paper (Sec. 4.1), built from small block functions.

Each builder maps the (already normalised and padded) input tensor to logits at the network's
output stride; taplab_tf.models.build_model wraps them with normalisation, padding and cropping.

BL1  ICNet-style (Zhao et al. 2018) on a light ResNet-50 (half width by default): three branches,
     sub1 = 3 strided convs on the full image (1/8), sub2 = the ResNet stem + stages 1-2 on the
     half-resolution image (1/16), sub4 = ResNet stages 3-4 (dilated) on sub2's features pooled by
     2 (1/32) + pyramid pooling (summed, as in ICNet); two cascade feature fusion (CFF) units merge
     1/32 -> 1/16 -> 1/8. Logits at stride 8; input padded to a multiple of 32.
BL2  MobileNetV2 (tf.keras.applications, weights=None, alpha=width_multiplier) + an FPN/U-Net
     decoder: 1x1 laterals on the 1/4, 1/8, 1/16, 1/32 block outputs, a top-down path with 2x
     bilinear upsampling and a separable 3x3 smoothing at each merge. Logits at stride 4; input
     padded to a multiple of 32. Purely local (no global pooling).
BL3  PSPNet on a ResNet-101 (bottleneck v1.5, depths 3-4-23-3), dilated in stages 3-4 (output
     stride 8; dilated=False gives stride 32), pyramid pooling module with bins 1, 2, 3, 6.
     Input padded to a multiple of 8 (32 when not dilated).

Crops vs full frame (RGC): all three are fully convolutional, so the same Keras model runs on a
512x512 crop and on the full frame. BL2's receptive field is local, so its crop logits match the
full-frame logits away from the crop border. BL1 and BL3 contain pyramid pooling, whose bins pool
over the whole *input*: on a crop they pool over the crop only, so crop logits differ from the
full-frame logits everywhere, not only near the border (the paper accepts this for RGC).

Cost at 1024x2048, 19 classes, default widths: parameters and FLOPs (fixed by the architecture;
`python -m experiments.model_info` prints them with the forward time, whose measured figures
live in README.md's Table 2 section, not here):
  bl1  6.19 M params,   39.4 GFLOPs     (paper Table 2, 1080 Ti: 33.2 FPS)
  bl2  1.98 M params,   36.1 GFLOPs     (29.3 FPS)
  bl3 65.71 M params, 4095.0 GFLOPs     (7.2 FPS)
BL3 as built here (ResNet-101 dilated to stride 8 at full resolution) is ~100x BL2 in FLOPs,
far more than the paper's 4x FPS gap; dilated=False (stride 32) is much cheaper.
"""
from __future__ import annotations

import tensorflow as tf

from taplab_tf.data.datasets import IMAGENET_MEAN
from taplab_tf.models import layers as L

IMAGENET_STD = (58.395, 57.12, 57.375)


# -- ResNet blocks ---------------------------------------------------------------------------
def bottleneck(x, width, strides=1, dilation=1, name="block"):
    """ResNet bottleneck (stride on the 3x3, v1.5): 1x1 width -> 3x3 width -> 1x1 4*width."""
    out_ch = 4 * width
    shortcut = x
    if strides != 1 or x.shape[-1] != out_ch:
        shortcut = L.conv_bn_relu(x, out_ch, 1, strides=strides, name=f"{name}_proj", relu=False)
    y = L.conv_bn_relu(x, width, 1, name=f"{name}_1")
    y = L.conv_bn_relu(y, width, 3, strides=strides, dilation=dilation, name=f"{name}_2")
    y = L.conv_bn_relu(y, out_ch, 1, name=f"{name}_3", relu=False)
    y = tf.keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return tf.keras.layers.ReLU(name=f"{name}_out")(y)


def resnet_stage(x, depth, width, strides=1, dilation=1, name="stage"):
    """`depth` bottlenecks; the first one strides (dilation 1 there when it strides)."""
    for i in range(depth):
        x = bottleneck(x, width, strides=strides if i == 0 else 1,
                       dilation=dilation if (i > 0 or strides == 1) else 1,
                       name=f"{name}_block{i + 1}")
    return x


def resnet_stem(x, width, name="stem"):
    """Three 3x3 convs (the first strided) and a 3x3/2 max pool: stride 4."""
    x = L.conv_bn_relu(x, width // 2, 3, strides=2, name=f"{name}_conv1")
    x = L.conv_bn_relu(x, width // 2, 3, name=f"{name}_conv2")
    x = L.conv_bn_relu(x, width, 3, name=f"{name}_conv3")
    return tf.keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)


def _ch(c, w):
    return max(8, int(round(c * w / 8.0)) * 8)


# -- pyramid pooling and cascade fusion -----------------------------------------------------
def pyramid_pooling(x, bins=(1, 2, 3, 6), branch_channels=None, mode="concat", name="ppm"):
    """PSPNet's pyramid pooling: pool to bins x bins, (1x1 conv,) upsample, concat or sum."""
    branches = [x]
    for b in bins:
        y = L.AdaptiveAvgPool(b, name=f"{name}_pool{b}")(x)
        if mode == "concat":
            y = L.conv_bn_relu(y, branch_channels, 1, name=f"{name}_bin{b}")
        y = L.ResizeLike(name=f"{name}_up{b}")([y, x])
        branches.append(y)
    if mode == "concat":
        return tf.keras.layers.Concatenate(name=f"{name}_concat")(branches)
    return tf.keras.layers.Add(name=f"{name}_sum")(branches)


def cascade_feature_fusion(small, large, channels, name="cff"):
    """ICNet CFF: 2x-upsampled coarse features (3x3 dilated conv) + fine features (1x1 conv)."""
    up = tf.keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up")(small)
    up = L.conv_bn_relu(up, channels, 3, dilation=2, name=f"{name}_coarse", relu=False)
    fine = L.conv_bn_relu(large, channels, 1, name=f"{name}_fine", relu=False)
    y = tf.keras.layers.Add(name=f"{name}_add")([up, fine])
    return tf.keras.layers.ReLU(name=f"{name}_relu")(y)


# -- BL1 -------------------------------------------------------------------------------------
BL1_DEFAULTS = dict(width_multiplier=0.5, depths=(3, 4, 6, 3))


def bl1_logits(x, num_classes, width_multiplier=0.5, depths=(3, 4, 6, 3)):
    w = float(width_multiplier)
    d1, d2, d3, d4 = (int(v) for v in depths)
    # sub1: full resolution, three strided convs -> 1/8.
    s1 = L.conv_bn_relu(x, _ch(32, w), 3, strides=2, name="sub1_conv1")
    s1 = L.conv_bn_relu(s1, _ch(32, w), 3, strides=2, name="sub1_conv2")
    s1 = L.conv_bn_relu(s1, _ch(64, w), 3, strides=2, name="sub1_conv3")
    # sub2: half resolution through the ResNet stem and stages 1-2 -> 1/16.
    half = tf.keras.layers.AveragePooling2D(2, name="sub2_downsample")(x)
    s2 = resnet_stem(half, _ch(64, w), name="sub2_stem")
    s2 = resnet_stage(s2, d1, _ch(64, w), name="sub2_stage1")
    s2 = resnet_stage(s2, d2, _ch(128, w), strides=2, name="sub2_stage2")
    # sub4: sub2's features pooled to 1/32, ResNet stages 3-4 dilated, pyramid pooling (sum).
    s4 = tf.keras.layers.AveragePooling2D(2, name="sub4_downsample")(s2)
    s4 = resnet_stage(s4, d3, _ch(256, w), dilation=2, name="sub4_stage3")
    s4 = resnet_stage(s4, d4, _ch(512, w), dilation=4, name="sub4_stage4")
    s4 = pyramid_pooling(s4, mode="sum", name="sub4_ppm")
    s4 = L.conv_bn_relu(s4, _ch(256, w), 1, name="sub4_reduce")
    # Cascade feature fusion 1/32 -> 1/16 -> 1/8.
    y = cascade_feature_fusion(s4, s2, _ch(128, w), name="cff_sub24")
    y = cascade_feature_fusion(y, s1, _ch(128, w), name="cff_sub12")
    return L.classifier(y, num_classes), 8


# -- BL2 -------------------------------------------------------------------------------------
BL2_DEFAULTS = dict(width_multiplier=1.0, decoder_channels=128)
_MOBILENET_TAPS = ("block_2_add", "block_5_add", "block_12_add", "block_16_project_BN")


def mobilenet_v2_features(x, width_multiplier):
    """MobileNetV2 (no weights, trained from scratch) block outputs at strides 4, 8, 16, 32."""
    base = tf.keras.applications.MobileNetV2(input_shape=(None, None, 3), alpha=width_multiplier,
                                             include_top=False, weights=None)
    taps = [base.get_layer(n).output for n in _MOBILENET_TAPS]
    backbone = tf.keras.Model(base.input, taps, name="mobilenetv2")
    return backbone(x)


def bl2_logits(x, num_classes, width_multiplier=1.0, decoder_channels=128):
    c2, c3, c4, c5 = mobilenet_v2_features(x, float(width_multiplier))
    d = int(decoder_channels)
    p = L.conv_bn_relu(c5, d, 1, name="fpn_lateral5")
    for level, c in ((4, c4), (3, c3), (2, c2)):
        up = tf.keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"fpn_up{level}")(p)
        lat = L.conv_bn_relu(c, d, 1, name=f"fpn_lateral{level}")
        p = tf.keras.layers.Add(name=f"fpn_merge{level}")([up, lat])
        p = L.sep_conv_bn_relu(p, d, name=f"fpn_smooth{level}")
    p = L.sep_conv_bn_relu(p, d, name="head")
    return L.classifier(p, num_classes), 4


# -- BL3 -------------------------------------------------------------------------------------
BL3_DEFAULTS = dict(width_multiplier=1.0, depths=(3, 4, 23, 3), dilated=True, dropout=0.1)


def bl3_logits(x, num_classes, width_multiplier=1.0, depths=(3, 4, 23, 3), dilated=True,
               dropout=0.1):
    w = float(width_multiplier)
    d1, d2, d3, d4 = (int(v) for v in depths)
    y = resnet_stem(x, _ch(64, w), name="stem")
    y = resnet_stage(y, d1, _ch(64, w), name="stage1")
    y = resnet_stage(y, d2, _ch(128, w), strides=2, name="stage2")
    if dilated:
        y = resnet_stage(y, d3, _ch(256, w), dilation=2, name="stage3")
        y = resnet_stage(y, d4, _ch(512, w), dilation=4, name="stage4")
        stride = 8
    else:
        y = resnet_stage(y, d3, _ch(256, w), strides=2, name="stage3")
        y = resnet_stage(y, d4, _ch(512, w), strides=2, name="stage4")
        stride = 32
    y = pyramid_pooling(y, branch_channels=_ch(512, w), mode="concat", name="ppm")
    y = L.conv_bn_relu(y, _ch(512, w), 3, name="ppm_fuse")
    if dropout:
        y = tf.keras.layers.Dropout(float(dropout), name="ppm_dropout")(y)
    return L.classifier(y, num_classes), stride


NETWORKS = {
    # name: (builder, defaults, normalisation mean, std, input multiple for output stride s)
    "bl1": (bl1_logits, BL1_DEFAULTS, IMAGENET_MEAN, IMAGENET_STD),
    "bl2": (bl2_logits, BL2_DEFAULTS, (127.5,) * 3, (127.5,) * 3),
    "bl3": (bl3_logits, BL3_DEFAULTS, IMAGENET_MEAN, IMAGENET_STD),
}
