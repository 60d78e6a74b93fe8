"""Custom ops of TapLab-TF: a C++ op library with a pure-TF fallback.

    mv_warp(features, motion_vectors, feature_stride, block_size=16,
            interpolation='nearest'|'bilinear', border='clamp'|'zeros') -> [N, h, w, C]
        Feature-flow warp with block motion vectors (Eq. 1); see taplab_tf.ops.mv_warp.
    upsample_argmax(logits, size) -> int32 [N, H, W]
        argmax(tf.image.resize(logits, size, 'bilinear')) without the [N, H, W, C] tensor; the
        kernel fills cells whose four source argmaxes agree (with a margin rounding cannot
        overturn) without interpolating, so the labels stay exactly equal.
    logits_to_labels(logits, height, width, output_stride) -> [N, height, width]
        The one logits-to-labels rule (upsample to the stride's frame, argmax, crop).
    upsample_argmax_with_stats(logits, size) -> (labels, argmax_stats(logits))
        Both in one pass over the logits (a keyframe that starts FFW's indexed chain).
    upsample_argmax_indexed(source, index, size, stats) -> [N, H, W]
        upsample_argmax of the map gathered from source by a flat index map, without
        materialising it: the shortcut reads argmax_stats(source) through the index (what FFW's
        chained nearest warps of a keyframe's logits amount to: pipeline.propagation); with
        prev=PrevFrame(...) it copies the previous frame's labels where the warp carried a
        cell's values over together.
    index_take_region(index, top, left, region_height, region_width, source) -> int32 map
        RGC's take-over (Eq. 6 at alpha = 1) on FFW's index map: the region reads source
        `source` (a crop's logits), in one pass.
    mv_fill(motion_vectors, intra, moving_px, passes, majority) -> (refined, still_intra)
        The 'fill' refinement of a block motion field before FFW (numpy arrays in and out; the
        fallback is its numpy reference in taplab_tf.pipeline.motion_field).
    region_blend(logits, crop_logits, top, left, alpha) -> [N, h, w, C]
        RGC's blend (Eq. 6) on one region, in one pass (in place where TF forwards the buffer).
    backend() -> 'cpp' | 'tf-fallback'
        Which implementation the calls above use (building the library on first call).

The C++ library (taplab_tf/ops/cc: ops/ = interfaces, kernels/ = CPU kernels) is compiled on first
use into $TAPLAB_TF_CACHE/ops (default ~/.cache/taplab_tf/ops), or explicitly with
`python -m taplab_tf.ops.build`. TAPLAB_TF_OPS_BACKEND=tf forces the fallback, =cpp requires the
compiled library. Importing this package compiles and loads nothing and prints nothing.
Neither op can run inside tf.function(jit_compile=True) with the compiled backend (no XLA
lowering); pass backend='tf' there.

CUDA: the mv_warp kernels exist as CUDA C++ (cc/kernels/*.cu.cc) with a TF-free C API, tested on
an H100 through taplab_tf.ops.cuda (tests/gpu/); they are not yet registered as the op's GPU
kernel (that needs a CUDA build of TF 2.15 to test against), so on a GPU the op runs its TF path.

The names below are resolved on first access, so `import taplab_tf.ops.cuda` (or .build) works
without TensorFlow installed (the GPU test machine has none).
"""
import importlib
import sys
import types

_EXPORTS = {
    "backend": "taplab_tf.ops._loader",
    "mv_warp": "taplab_tf.ops.mv_warp",
    "mv_warp_tf": "taplab_tf.ops.mv_warp",
    "upsample_argmax": "taplab_tf.ops.upsample_argmax",
    "upsample_argmax_tf": "taplab_tf.ops.upsample_argmax",
    "upsample_argmax_with_stats": "taplab_tf.ops.upsample_argmax",
    "logits_to_labels": "taplab_tf.ops.upsample_argmax",
    "argmax_stats": "taplab_tf.ops.upsample_argmax",
    "upsample_argmax_indexed": "taplab_tf.ops.upsample_argmax",
    "gather_indexed": "taplab_tf.ops.upsample_argmax",
    "indexed_logits_to_labels": "taplab_tf.ops.upsample_argmax",
    "PrevFrame": "taplab_tf.ops.upsample_argmax",
    "index_take_region": "taplab_tf.ops.upsample_argmax",
    "mv_fill": "taplab_tf.ops.mv_fill",
    "region_blend": "taplab_tf.ops.region_blend",
    "region_blend_tf": "taplab_tf.ops.region_blend",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'taplab_tf.ops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)


class _OpsPackage(types.ModuleType):
    """Keeps the functions mv_warp and upsample_argmax on the package when their submodules of
    the same names are imported directly (`from taplab_tf.ops.mv_warp import ...`): the import
    system would otherwise bind the submodule over the function."""

    def __setattr__(self, name, value):
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _OpsPackage
