"""Custom ops of TapLab-TF: a C++ op library with a pure-TF fallback.

    mv_warp(features, motion_vectors, feature_stride, block_size=16,
            interpolation='nearest'|'bilinear', border='clamp'|'zeros') -> [N, h, w, C]
        Feature-flow warp with block motion vectors (Eq. 1); see taplab_tf.ops.mv_warp.
    upsample_argmax(logits, size) -> int32 [N, H, W]
        argmax(tf.image.resize(logits, size, 'bilinear')) without the [N, H, W, C] tensor.
    backend() -> 'cpp' | 'tf-fallback'
        Which implementation the calls above use (building the library on first call).

The C++ library (taplab_tf/ops/cc: ops/ = interfaces, kernels/ = CPU kernels) is compiled on first
use into $TAPLAB_TF_CACHE/ops (default ~/.cache/taplab_tf/ops), or explicitly with
`python -m taplab_tf.ops.build`. TAPLAB_TF_OPS_BACKEND=tf forces the fallback, =cpp requires the
compiled library. Importing this package compiles and loads nothing and prints nothing.
Neither op can run inside tf.function(jit_compile=True) with the compiled backend (no XLA
lowering); pass backend='tf' there. No CUDA kernels (see the mv_warp module docstring).
"""
from taplab_tf.ops._loader import backend
from taplab_tf.ops.mv_warp import mv_warp, mv_warp_tf
from taplab_tf.ops.upsample_argmax import upsample_argmax, upsample_argmax_tf

__all__ = ["backend", "mv_warp", "mv_warp_tf", "upsample_argmax", "upsample_argmax_tf"]
