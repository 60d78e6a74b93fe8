"""TapLab-TF: real-time semantic video segmentation that taps into the compressed domain.

Feng, Li, Li, Wu, Tian, Yang, Ling, "TapLab: A Fast Framework for Semantic Video Segmentation
Tapping into Compressed-Domain Knowledge", TPAMI.

Packages:
  taplab_tf.config    TapLabConfig: gop, modules, region_shape, region_stride, thr_rgc, thr_rgfs, alpha
  taplab_tf.data      synthetic street-video generator, Cityscapes / CamVid loaders, tf.data pipelines
  taplab_tf.ops       mv_warp (FFW, Eq. 1) and fused output kernels, C++ with a pure-TF fallback
  taplab_tf.models    BL1 / BL2 / BL3 segmentation networks (phi)
  taplab_tf.train     training loop, losses, metrics
  taplab_tf.pipeline  the TapLab engine (Algorithm 1) and video evaluation
third_party.compressed_video reads I-frames, motion vectors and residuals from MPEG-4 Part 2.
"""
from taplab_tf.config import ConfigError, TapLabConfig

__all__ = ["TapLabConfig", "ConfigError", "load_model", "segment_video", "__version__"]


def __getattr__(name):
    # load_model and segment_video import TensorFlow: resolved on first use, so that
    # `import taplab_tf` stays light (the apps parse their flags before TF loads).
    if name in ("load_model", "segment_video"):
        from taplab_tf import api
        return getattr(api, name)
    raise AttributeError(f"module 'taplab_tf' has no attribute {name!r}")


__version__ = "0.1.0"
