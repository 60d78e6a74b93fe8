"""mv_warp: feature-flow warp with compressed-domain block motion vectors (TapLab Eq. 1).

    F_t[p] = F_{t-1}[p - Mv_t[p]]

Semantics (identical in the C++ kernel and the pure-TF fallback):
  * features [N, h, w, C] (float16/32/64; or an int32 index map, nearest warp only) is the
    previous frame's feature map or logits at stride s = feature_stride relative to the input
    frame (the frame the motion vectors describe: if the network ran on a resized frame, pass
    the effective stride). motion_vectors [N, Hb, Wb, 2] float32 holds one (dx, dy) = dst - src
    per block_size x block_size block, in input pixels, as the reader gives it.
  * Feature pixel (i, j) has centre ((i + .5) s, (j + .5) s) in input pixels. Its block is
    (floor((i + .5) s / B), floor((j + .5) s / B)), computed exactly in integers and clamped to
    [0, Hb-1] x [0, Wb-1]. No dense per-pixel motion map is built: the kernel looks the block up.
  * With that block's (dx, dy), it reads features at (i - dy/s, j - dx/s):
      nearest:  round half up (floor(q + 0.5)) on each axis, evaluated as i + floor(0.5 - dy/s)
                (the same number in exact arithmetic; computed once per block);
      bilinear: the tfa.image.dense_image_warp convention and arithmetic (top = tl + ax (tr - tl),
                ...), so results agree with dense_image_warp to float rounding; floor and
                fraction are likewise taken from -dy/s once per block.
    (-d/s is clamped to +-(size + 1) first: no result changes, huge motion stays defined.)
  * border='clamp': coordinates are clamped into [0, size-1] (for bilinear what dense_image_warp's
    clamping of the floor to [0, size-2] and of the fraction to [0, 1] amounts to); unlike
    dense_image_warp, integer coordinates (e.g. zero motion) reproduce pixels bit-exactly.
    border='zeros': taps outside the map read 0 (for bilinear each of the 4 taps separately, so
    values fade to 0 across the last pixel; dense_image_warp has no such mode).
  * Feature sizes that are not an exact multiple of the block grid (ceil(H/s) rows against
    H/16 or ceil(H/16) blocks, padded feature maps, partial edge blocks): handled by the clamping
    of the block index; the grid must describe the same frame as the feature map,
    |h s - Hb B| < s + B (and the same for widths), otherwise InvalidArgumentError.
  * Non-finite motion (NaN, Inf) raises InvalidArgumentError (checked before any read).

Gradient: w.r.t. features only, a scatter-add through the same taps: the C++ op
TapLab>MvWarpGrad (deterministic, sharded over batch item x channel slice) for the compiled path,
TF autodiff of the gathers for the fallback. Motion vectors get None.

XLA: TapLab>MvWarp is a custom op with no XLA lowering, so it cannot run inside
tf.function(jit_compile=True) (XLA reports the op as unsupported / with no kernel for XLA_CPU_JIT).
The TapLab engine calls the warp eagerly / in plain tf.function, outside jit-compiled code; if a
warp is needed inside a jit-compiled function, pass backend='tf' (the fallback is made of gathers
and compiles with XLA).

CUDA: there is no GPU kernel (none could be tested here). It would go in
taplab_tf/ops/cc/kernels/mv_warp_kernels.cu.cc under #if GOOGLE_CUDA, specialising
MvWarpFunctor/MvWarpGradFunctor<GPUDevice, T> from mv_warp.h (its sampling arithmetic is plain
inline code; marked __host__ __device__ it would serve a kernel with one thread per output
element, atomicAdd for the gradient) and registered with Device(DEVICE_GPU). On a GPU machine
today the op runs on the CPU (TF places it there, copying the tensors) or one uses backend='tf'.
"""
import operator

import numpy as np
import tensorflow as tf

from taplab_tf.ops import _loader

_INTERPOLATIONS = ("nearest", "bilinear")
_BORDERS = ("clamp", "zeros")
_FLOAT_TYPES = (tf.float16, tf.float32, tf.float64)


def _invalid(message):
    return tf.errors.InvalidArgumentError(None, None, message)


def _positive_int(value, name):
    try:
        result = operator.index(value)  # int, numpy integers; not floats, not tensors
    except TypeError:
        result = None
    if result is None or isinstance(value, bool) or result < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return result


def _check_args(feature_stride, block_size, interpolation, border):
    """Validates the Python arguments; returns (feature_stride, block_size) as ints."""
    feature_stride = _positive_int(feature_stride, "feature_stride")
    block_size = _positive_int(block_size, "block_size")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    if border not in _BORDERS:
        raise ValueError(f"border must be one of {_BORDERS}, got {border!r}")
    return feature_stride, block_size


def _check_real(motion_vectors):
    """Complex motion would lose its imaginary part in the float32 conversion, silently (a
    NumPy array too: convert_to_tensor with a float hint drops it): refuse it, and bool or
    string input, with a TypeError naming the argument. Call before any conversion."""
    dtype = getattr(motion_vectors, "dtype", None)
    if dtype is None:
        dtype = np.asarray(motion_vectors).dtype
    try:
        dtype = tf.as_dtype(dtype)
    except TypeError:
        raise TypeError(f"motion_vectors must be real (float or int), got {dtype}") from None
    if dtype.is_complex or dtype.is_bool or not (dtype.is_floating or dtype.is_integer):
        raise TypeError(f"motion_vectors must be real (float or int), got {dtype.name}")


def _check_features_dtype(features, interpolation):
    """float16/32/64 features; an int32 map (an index, e.g. FFW's chain held as positions into a
    keyframe's logits) with the nearest warp only, which copies values without mixing them."""
    if features.dtype == tf.int32:
        if interpolation != "nearest":
            raise TypeError("features: an int32 map warps with interpolation='nearest' only")
        return
    if features.dtype not in _FLOAT_TYPES:
        raise TypeError(f"features must be float16, float32, float64 or (nearest) int32, got "
                        f"{features.dtype.name}")


def _check_static(features, motion_vectors, fname="features"):
    """Errors knowable from static shapes, raised the same way in every mode and backend."""
    fs, ms = features.shape, motion_vectors.shape
    if fs.rank is not None and fs.rank != 4:
        raise _invalid(f"{fname} must be rank 4 [N, h, w, C], got shape {fs}")
    if ms.rank is not None and ms.rank != 4:
        raise _invalid(f"motion_vectors must be rank 4 [N, H/block_size, W/block_size, 2], "
                       f"got shape {ms}")
    if ms.rank == 4 and ms[3] is not None and ms[3] != 2:
        raise _invalid(f"motion_vectors last dimension must be 2 (dx, dy), got shape {ms}")
    if fs.rank == 4 and ms.rank == 4 and fs[0] is not None and ms[0] is not None and fs[0] != ms[0]:
        raise _invalid(f"motion_vectors batch size {ms[0]} does not match {fname} batch size "
                       f"{fs[0]}")


def mv_warp(features, motion_vectors, feature_stride, block_size=16, interpolation="nearest",
            border="clamp", name=None, backend=None):
    """Warps features [N,h,w,C] by block motion vectors [N,Hb,Wb,2]; returns [N,h,w,C].

    Args:
      features: float16/float32/float64 [N, h, w, C] at stride feature_stride, or an int32 map
        (an index) with interpolation='nearest'.
      motion_vectors: float32 [N, Hb, Wb, 2], (dx, dy) = dst - src in input pixels per block.
      feature_stride: int s (4, 8, 16, 32 in TapLab) of the features relative to the input frame.
      block_size: int B, motion block size in input pixels (16 for MPEG-4).
      interpolation: 'nearest' (round half up) or 'bilinear' (dense_image_warp arithmetic).
      border: 'clamp' or 'zeros' (see the module docstring).
      name: name scope.
      backend: None (env TAPLAB_TF_OPS_BACKEND / auto), 'cpp' (compiled kernel, error if it cannot
        load) or 'tf' (pure-TF gathers; the one to use inside jit_compile=True functions).

    Raises:
      tf.errors.InvalidArgumentError: wrong ranks, batch mismatch, last motion dim != 2, a motion
        grid that does not cover the feature map, non-finite motion (message names the argument).
      ValueError: bad Python arguments (stride, block size, mode names).
      TypeError: features not float16/32/64 (or int32 with 'nearest'), or motion_vectors not
        real (complex, bool).
    """
    feature_stride, block_size = _check_args(feature_stride, block_size, interpolation, border)
    # eagerly, tensors of their types: the same checks and op, no scope or conversion
    direct = isinstance(features, tf.Tensor) and _loader.direct(backend,
                                                                (motion_vectors, tf.float32))
    with _loader.scope(name or "mv_warp", direct):
        if not direct:
            features = tf.convert_to_tensor(features, name="features")
        _check_features_dtype(features, interpolation)
        if not direct:
            _check_real(motion_vectors)
            motion_vectors = tf.convert_to_tensor(motion_vectors, dtype_hint=tf.float32,
                                                  name="motion_vectors")
            if motion_vectors.dtype != tf.float32:
                motion_vectors = tf.cast(motion_vectors, tf.float32)
        _check_static(features, motion_vectors)
        if direct or _loader.resolve(backend) == _loader.CPP:
            return _loader.library().tap_lab_mv_warp(
                features, motion_vectors, feature_stride=feature_stride, block_size=block_size,
                interpolation=interpolation, border=border)
        return mv_warp_tf(features, motion_vectors, feature_stride, block_size, interpolation,
                          border)


def _assert_valid(features, motion_vectors, s, b):
    """Run-time checks of the fallback (InvalidArgumentError naming the argument).

    Returns (features, motion_vectors) gated on the checks."""
    ranks = [
        tf.debugging.assert_rank(features, 4, message="features must be rank 4 [N, h, w, C]"),
        tf.debugging.assert_rank(motion_vectors, 4, message=(
            "motion_vectors must be rank 4 [N, H/block_size, W/block_size, 2]")),
    ]
    with tf.control_dependencies(ranks):
        features = tf.identity(features)
        motion_vectors = tf.identity(motion_vectors)
    fshape = tf.shape(features, out_type=tf.int64)
    mshape = tf.shape(motion_vectors, out_type=tf.int64)
    h, w, hb, wb = fshape[1], fshape[2], mshape[1], mshape[2]
    tol = tf.constant(s + b, tf.int64)
    checks = [
        tf.debugging.assert_equal(mshape[0], fshape[0], message=(
            "motion_vectors batch size does not match features batch size")),
        tf.debugging.assert_equal(mshape[3], tf.constant(2, tf.int64), message=(
            "motion_vectors last dimension must be 2 (dx, dy)")),
        tf.debugging.assert_positive(fshape[1:3], message=(
            "features height and width must be positive")),
        tf.debugging.assert_positive(mshape[1:3], message="motion_vectors grid must be non-empty"),
        tf.debugging.assert_less(tf.abs(h * s - hb * b), tol, message=(
            f"motion_vectors grid does not cover features height at feature_stride {s} and "
            f"block_size {b}; grid*block_size and height*feature_stride must agree to within "
            f"feature_stride + block_size")),
        tf.debugging.assert_less(tf.abs(w * s - wb * b), tol, message=(
            f"motion_vectors grid does not cover features width at feature_stride {s} and "
            f"block_size {b}; grid*block_size and width*feature_stride must agree to within "
            f"feature_stride + block_size")),
    ]
    with tf.control_dependencies(checks):
        motion_vectors = tf.debugging.assert_all_finite(
            motion_vectors, "motion_vectors contains a non-finite value (NaN or Inf)")
        return tf.identity(features), motion_vectors


def _axis_shift(d, stride, size):
    """t = -d/s clamped to +-(size + 1) (as in the kernel); returns (t, floor(t))."""
    bound = tf.cast(size + 1, tf.float32)
    t = tf.clip_by_value(-d / tf.constant(float(stride), tf.float32), -bound, bound)
    return t, tf.floor(t)


def _axis_nearest(i, t, size, border):
    v = i + tf.cast(tf.floor(t + 0.5), tf.int32)  # round half up of q = i + t
    if border == "clamp":
        return tf.clip_by_value(v, 0, size - 1), None
    valid = (v >= 0) & (v < size)
    return tf.where(valid, v, 0), valid


def _axis_bilinear(i, t, f, size, border):
    v = i + tf.cast(f, tf.int32)  # floor(q)
    frac = t - f
    if border == "clamp":
        below, above = v < 0, v >= size - 1
        i0 = tf.where(below, 0, tf.where(above, size - 1, v))
        i1 = tf.where(below, tf.minimum(1, size - 1), tf.where(above, size - 1, v + 1))
        alpha = tf.where(below | above, tf.zeros_like(frac), frac)
        return i0, i1, alpha, None, None
    v0 = (v >= 0) & (v < size)
    v1 = (v + 1 >= 0) & (v + 1 < size)
    return tf.where(v0, v, 0), tf.where(v1, v + 1, 0), frac, v0, v1


def mv_warp_tf(features, motion_vectors, feature_stride, block_size=16, interpolation="nearest",
               border="clamp"):
    """The pure-TF implementation (gathers on a flattened index); the fallback of mv_warp.

    Same semantics as the C++ kernel; differentiable w.r.t. features by TF autodiff (motion is
    wrapped in stop_gradient). XLA-compilable. Computes in float32 (float64 for float64 input).
    """
    feature_stride, block_size = _check_args(feature_stride, block_size, interpolation, border)
    features = tf.convert_to_tensor(features)
    _check_features_dtype(features, interpolation)
    _check_real(motion_vectors)
    motion_vectors = tf.cast(tf.convert_to_tensor(motion_vectors), tf.float32)
    _check_static(features, motion_vectors)
    s, b = feature_stride, block_size
    features, motion_vectors = _assert_valid(features, motion_vectors, s, b)
    motion_vectors = tf.stop_gradient(motion_vectors)
    out_dtype = features.dtype
    # An int32 map is gathered as it is (nearest copies values; a float32 cast would round
    # values above 2^24).
    x = features if out_dtype == tf.int32 else tf.cast(
        features, tf.float64 if out_dtype == tf.float64 else tf.float32)
    shape = tf.shape(x)
    n, h, w, c = shape[0], shape[1], shape[2], shape[3]
    mshape = tf.shape(motion_vectors)
    rows, cols = tf.range(h), tf.range(w)
    block_y = tf.clip_by_value(((2 * rows + 1) * s) // (2 * b), 0, mshape[1] - 1)
    block_x = tf.clip_by_value(((2 * cols + 1) * s) // (2 * b), 0, mshape[2] - 1)
    mv = tf.gather(tf.gather(motion_vectors, block_y, axis=1), block_x, axis=2)  # [N,h,w,2]
    # Source coordinate q = i + t with t = -d/s; see mv_warp.h for why the integer part of the
    # offset and the fraction are taken from t alone (what the kernel computes once per block).
    ty, fy = _axis_shift(mv[..., 1], s, h)
    tx, fx = _axis_shift(mv[..., 0], s, w)
    ii = rows[None, :, None]
    jj = cols[None, None, :]
    flat = tf.reshape(x, [-1, c])
    base = (tf.range(n) * h)[:, None, None]

    def tap(y, xx, valid):
        values = tf.gather(flat, (base + y) * w + xx)
        if valid is None:
            return values
        return tf.where(valid[..., None], values, tf.zeros([], values.dtype))

    def both(a, bb):
        if a is None:
            return bb
        if bb is None:
            return a
        return a & bb

    if interpolation == "nearest":
        y, vy = _axis_nearest(ii, ty, h, border)
        xx, vx = _axis_nearest(jj, tx, w, border)
        out = tap(y, xx, both(vy, vx))
    else:
        y0, y1, ay, vy0, vy1 = _axis_bilinear(ii, ty, fy, h, border)
        x0, x1, ax, vx0, vx1 = _axis_bilinear(jj, tx, fx, w, border)
        ay = tf.cast(ay, x.dtype)[..., None]
        ax = tf.cast(ax, x.dtype)[..., None]
        tl = tap(y0, x0, both(vy0, vx0))
        tr = tap(y0, x1, both(vy0, vx1))
        bl = tap(y1, x0, both(vy1, vx0))
        br = tap(y1, x1, both(vy1, vx1))
        top = ax * (tr - tl) + tl
        bottom = ax * (br - bl) + bl
        out = ay * (bottom - top) + top
    return tf.cast(out, out_dtype)


def _attrs(op):
    return dict(feature_stride=op.get_attr("feature_stride"), block_size=op.get_attr("block_size"),
                interpolation=op.get_attr("interpolation").decode(),
                border=op.get_attr("border").decode())


@tf.RegisterGradient("TapLab>MvWarp")
def _mv_warp_grad(op, grad):
    lib = _loader.library(required=True)
    return [lib.tap_lab_mv_warp_grad(grad, op.inputs[1], **_attrs(op)), None]


@tf.RegisterGradient("TapLab>MvWarpGrad")
def _mv_warp_grad_grad(op, grad):
    # MvWarpGrad is the adjoint of the (linear) warp, so its gradient is the warp itself.
    lib = _loader.library(required=True)
    return [lib.tap_lab_mv_warp(grad, op.inputs[1], **_attrs(op)), None]
