"""upsample_argmax: fused bilinear upsampling + argmax of logits (the per-frame output step).

    upsample_argmax(logits, size) == tf.argmax(tf.image.resize(logits, size, 'bilinear'), -1)

with TF2's half-pixel-centre ResizeBilinear arithmetic reproduced operation for operation (results
are bit-identical on this build; ties go to the first maximal channel, like tf.argmax), but the
upsampled [N, H, W, C] tensor is never materialised. The kernel (method='cells') works per source
cell, the output pixels that interpolate the same four source logits vectors: where all four have
the same argmax k with a margin that float rounding cannot overturn, every mix of them has its
argmax at k (a convex combination keeps each v[k] - v[j] >= the smallest margin), so the cell is
filled with k without interpolating; elsewhere each pixel is interpolated in full, in tiles of 8
columns, with a running argmax over channels (cc/kernels/upsample_argmax.h gives the error bound
behind the margin). Trained models' logits agree over most cells, so the output step costs little
more than writing the labels; noise logits (random weights) take the full path almost everywhere.
method='rows' is the earlier kernel (every pixel interpolated), kept as a cross-check and for
experiments/benchmark_output_step.py; both give the same labels. NaN logits: a NaN is never
greater than the running maximum, so NaN channels lose (unless channel 0 is NaN, which then
wins), and a cell with a NaN or Inf never takes the shortcut; tf.argmax's NaN handling is not
promised to match.
Not differentiable (integer output). Like mv_warp it is a custom op, so it cannot be
compiled by XLA (jit_compile=True); use backend='tf' there.
"""
from typing import NamedTuple

import tensorflow as tf

from taplab_tf.ops import _loader


METHODS = ("cells", "rows")


def upsample_argmax(logits, size, name=None, backend=None, output_dtype=tf.int32, method="cells"):
    """int32 (or uint8) [N, H, W] labels = argmax over C of bilinear-resized logits [N, h, w, C].

    Args:
      logits: float32 [N, h, w, C] (float16/float64 are cast to float32, as tf.image.resize does).
      size: (H, W) ints or an int32 [2] tensor.
      name: name scope.
      backend: None (env / auto), 'cpp' or 'tf' (plain tf.image.resize + tf.argmax).
      output_dtype: tf.int32 (default) or tf.uint8 (C <= 256; a quarter of the output bytes,
        written directly by the kernel: what the engine's output step uses).
      method: the compiled kernel's algorithm, 'cells' (default: with the exact shortcut) or
        'rows' (the earlier kernel); the labels are the same. The 'tf' backend ignores it.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    output_dtype = tf.as_dtype(output_dtype)
    if output_dtype not in (tf.int32, tf.uint8):
        raise ValueError(f"output_dtype must be tf.int32 or tf.uint8, got {output_dtype.name}")
    direct = _loader.direct(backend, (logits, tf.float32), (size, tf.int32))
    with _loader.scope(name or "upsample_argmax", direct):
        if not direct:
            logits = tf.convert_to_tensor(logits, dtype_hint=tf.float32, name="logits")
            if not logits.dtype.is_floating:
                raise TypeError(f"logits must be floating point, got {logits.dtype.name}")
            if logits.dtype != tf.float32:
                logits = tf.cast(logits, tf.float32)
            size = tf.convert_to_tensor(size, dtype=tf.int32, name="size")
        if logits.shape.rank is not None and logits.shape.rank != 4:
            raise tf.errors.InvalidArgumentError(
                None, None, f"logits must be rank 4 [N, h, w, C], got shape {logits.shape}")
        if size.shape.rank is not None and size.shape != [2]:
            raise tf.errors.InvalidArgumentError(
                None, None, f"size must be a vector of 2 int32 (H, W), got shape {size.shape}")
        if direct or _loader.resolve(backend) == _loader.CPP:
            return _loader.library().tap_lab_upsample_argmax(logits, size, out_type=output_dtype,
                                                             method=method)
        if output_dtype == tf.uint8 and logits.shape[-1] is not None and logits.shape[-1] > 256:
            raise tf.errors.InvalidArgumentError(
                None, None, f"logits has {logits.shape[-1]} channels, too many for uint8 labels "
                            f"(output_dtype)")
        return tf.cast(upsample_argmax_tf(logits, size), output_dtype)


def upsample_argmax_with_stats(logits, size, name=None, backend=None, output_dtype=tf.int32):
    """(upsample_argmax(logits, size), argmax_stats(logits)) in one pass over the logits
    (TapLab>UpsampleArgmaxWithStats: the cells kernel computes each source row's statistics for
    its shortcut anyway). For a keyframe whose labels are wanted now and whose logits start FFW's
    indexed chain (upsample_argmax_indexed reads the statistics). The 'tf' backend calls the two
    functions."""
    output_dtype = tf.as_dtype(output_dtype)
    if output_dtype not in (tf.int32, tf.uint8):
        raise ValueError(f"output_dtype must be tf.int32 or tf.uint8, got {output_dtype.name}")
    direct = _loader.direct(backend, (logits, tf.float32), (size, tf.int32))
    with _loader.scope(name or "upsample_argmax_with_stats", direct):
        if not direct:
            logits = tf.convert_to_tensor(logits, dtype=tf.float32, name="logits")
            size = tf.convert_to_tensor(size, dtype=tf.int32, name="size")
            if _loader.resolve(backend) != _loader.CPP:
                return (upsample_argmax(logits, size, backend="tf", output_dtype=output_dtype),
                        argmax_stats(logits, backend="tf"))
        labels, arg, margin, magnitude = _loader.library().tap_lab_upsample_argmax_with_stats(
            logits, size, out_type=output_dtype)
        return labels, (arg, margin, magnitude)


def upsample_argmax_tf(logits, size):
    """The reference / fallback: tf.argmax(tf.image.resize(logits, size, 'bilinear'), -1)."""
    resized = tf.image.resize(logits, size, method="bilinear")
    return tf.argmax(resized, axis=-1, output_type=tf.int32)


_SIZES = {}  # (H, W) -> its int32 [2] tensor, for eager calls (one per frame size)


def _size_constant(height: int, width: int):
    """(height, width) as the ops' size input: eagerly, one tensor per size, made once (a new
    constant every propagated frame cost ~20 us); in a graph, the tuple."""
    if not tf.executing_eagerly():
        return (height, width)
    size = _SIZES.get((height, width))
    if size is None:
        size = _SIZES[(height, width)] = tf.constant([height, width], tf.int32)
    return size


def _stride_frame(logits, output_stride, height, width):
    """(size, uncropped) for the output step of logits [N, h, w, C] at this stride: the size of
    the frame they tile, (h * s, w * s), as the ops take it, and whether that frame is already
    height x width (no crop). Known sizes (eagerly, every frame of the engine) give a cached
    tensor (_size_constant) and plain integers to compare: each eager op saved is ~0.1 ms a
    frame right after phi; otherwise the size comes from the dynamic shape."""
    s = int(output_stride)
    h, w = (logits.shape[1], logits.shape[2]) if logits.shape.rank == 4 else (None, None)
    if h is None or w is None:
        shape = tf.shape(logits)
        return tf.stack([shape[1] * s, shape[2] * s]), False
    full_size = (h * s, w * s)
    uncropped = isinstance(height, int) and isinstance(width, int) and (height, width) == full_size
    return _size_constant(*full_size), uncropped


def logits_to_labels(logits, height, width, output_stride, backend=None,
                     output_dtype=tf.int32, name=None, with_stats=False):
    """The one rule from logits to labels, used by the engine, evaluation, training validation
    and the SavedModel's serving signature: upsample the logits [N, h, w, C] bilinearly to
    (h * s, w * s), the frame they tile at output stride s, take the argmax over C and crop to
    height x width. (Resizing straight to height x width would stretch the logits by up to one
    cell where the size is not a multiple of s; this keeps every logit cell on its own pixels.)
    with_stats: returns (labels, argmax_stats(logits)), both from one pass over the logits
    (upsample_argmax_with_stats).
    """
    # (eagerly a scope names nothing; the ops below decide their own direct path)
    with _loader.scope(name or "logits_to_labels", tf.executing_eagerly()):
        if not isinstance(logits, tf.Tensor):
            logits = tf.convert_to_tensor(logits, dtype_hint=tf.float32)
        size, uncropped = _stride_frame(logits, output_stride, height, width)
        if with_stats:
            full, stats = upsample_argmax_with_stats(logits, size, backend=backend,
                                                     output_dtype=output_dtype)
            return (full if uncropped else full[:, :height, :width]), stats
        full = upsample_argmax(logits, size, backend=backend, output_dtype=output_dtype)
        return full if uncropped else full[:, :height, :width]


def argmax_stats(logits, name=None, backend=None):
    """(arg int32, margin float32, magnitude float32), each [N, h, w]: per pixel of logits
    [N, h, w, C], what the cells kernel's exact shortcut reads (argmax, or -1 where a pixel may
    never take the shortcut: NaN, Inf or |logit| > 2^100; the margin of the largest channel over
    the second; the largest |logit|). Computed once for logits that upsample_argmax_indexed then
    reads through many index maps. The 'tf' backend computes the same values in TF."""
    direct = _loader.direct(backend, (logits, tf.float32))
    with _loader.scope(name or "argmax_stats", direct):
        if not direct:
            logits = tf.convert_to_tensor(logits, dtype=tf.float32, name="logits")
        if direct or _loader.resolve(backend) == _loader.CPP:
            return tuple(_loader.library().tap_lab_argmax_stats(logits))
        arg = tf.argmax(logits, axis=-1, output_type=tf.int32)
        channels = tf.shape(logits)[-1]
        top = tf.math.top_k(logits, k=tf.minimum(channels, 2)).values
        margin = tf.cond(channels > 1, lambda: top[..., 0] - top[..., -1],
                         lambda: tf.fill(tf.shape(arg), float("inf")))
        magnitude = tf.reduce_max(tf.abs(logits), axis=-1)
        ok = tf.reduce_all(tf.abs(logits) <= 2.0 ** 100, axis=-1)  # False for NaN and Inf
        return tf.where(ok, arg, -1), margin, magnitude


SOURCE_SHIFT = 20  # an index value is source << SOURCE_SHIFT | position (kernels: kSourceShift)
MAX_SOURCES = 16


def upsample_argmax_indexed(source, index, size, stats=None, key_labels=None, name=None,
                            backend=None, output_dtype=tf.int32, prev=None):
    """upsample_argmax of the map gathered from source by index, without materialising it:

        upsample_argmax_indexed(source, index, size)
            == upsample_argmax(gather_indexed(source, index), size)

    source: logits [N, h, w, C], or a list of up to MAX_SOURCES such tensors, the first of the
    map's shape and the others of any height and width (h_i * w_i <= 2^20). index: int32
    [N, h, w] (or [N, h, w, 1], as mv_warp moves it); pixel p of batch item n of the map is
    sources[i][n, q] for index[n, p] = i << SOURCE_SHIFT | q, q a flat position in the item (a
    single source: index = q). stats:
    argmax_stats of each source (a tuple, or a list of them), computed here when not given.
    key_labels: optionally upsample_argmax(sources[0], size) itself, cropped to [N, <= H, <= W]
    (a keyframe's output): where the index maps a cell's four source pixels onto four adjacent
    ones of source 0 and the upsampling is by an exact power of two, the cell copies those labels
    (the same arithmetic on the same values) instead of computing them. The compiled kernel
    takes the shortcut from the gathered statistics and reads the sources' values only for the
    cells that need interpolating; the 'tf' backend gathers the map and calls
    upsample_argmax_tf (ignoring key_labels and prev).
    prev: optionally the previous frame of a chain of nearest warps (PrevFrame: its index map,
    its labels as key_labels are, the block motion vectors that warped that map into `index` and
    the warp's feature_stride and block_size): where a cell's four values came over together
    (compared, so never a wrong copy), its labels are copied from the previous labels. Deep in a
    chain, where few cells still keep four adjacent keyframe pixels, this copies most cells."""
    output_dtype = tf.as_dtype(output_dtype)
    if output_dtype not in (tf.int32, tf.uint8):
        raise ValueError(f"output_dtype must be tf.int32 or tf.uint8, got {output_dtype.name}")
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    if not 1 <= len(sources) <= MAX_SOURCES:
        raise ValueError(f"source: 1 to {MAX_SOURCES} tensors, got {len(sources)}")
    # (this runs once a propagated frame: the engine's tensors, already of their types, take
    # the direct path)
    typed = [(s, tf.float32) for s in sources] + [(index, tf.int32), (size, tf.int32)]
    if key_labels is not None:
        typed.append((key_labels, output_dtype))
    if prev is not None:
        typed += [(prev.index, tf.int32), (prev.labels, output_dtype), (prev.motion, tf.float32)]
    direct = _loader.direct(backend, *typed)
    with _loader.scope(name or "upsample_argmax_indexed", direct):
        if not direct:
            sources = [tf.convert_to_tensor(s, dtype=tf.float32, name="source") for s in sources]
            index = tf.convert_to_tensor(index, dtype=tf.int32, name="index")
            size = tf.convert_to_tensor(size, dtype=tf.int32, name="size")
        if direct or _loader.resolve(backend) == _loader.CPP:
            if stats is None:
                stats = [argmax_stats(s, backend=backend) for s in sources]
            elif not isinstance(stats, list):
                stats = [stats]
            if len(stats) != len(sources):
                raise ValueError(f"stats: one (arg, margin, magnitude) per source, got "
                                 f"{len(stats)} for {len(sources)}")
            if key_labels is None:
                key_labels = _empty(output_dtype)
            if prev is None:
                prev_index, prev_labels, motion = _empty(tf.int32), _empty(output_dtype), \
                    _empty(tf.float32)
                stride = block = 0
            else:
                prev_index, prev_labels, motion = prev.index, prev.labels, prev.motion
                stride, block = prev.feature_stride, prev.block_size
            if not direct:  # their type is the labels' (out_type)
                key_labels = tf.cast(key_labels, output_dtype)
                prev_labels = tf.cast(prev_labels, output_dtype)
            return _loader.library().tap_lab_upsample_argmax_indexed(
                sources, [st[0] for st in stats], [st[1] for st in stats],
                [st[2] for st in stats], index, size, key_labels, prev_index, prev_labels,
                motion, feature_stride=int(stride), block_size=int(block))
        return tf.cast(upsample_argmax_tf(gather_indexed(sources, index), size), output_dtype)


class PrevFrame(NamedTuple):
    """The previous frame of a chain of nearest warps, for upsample_argmax_indexed(prev=):
    index [N, h, w(, 1)] int32 (its map), labels [N, <= H, <= W] (its output, cropped), motion
    [N, grid_h, grid_w, 2] float32 (the block vectors mv_warp moved its map by, in frame pixels),
    feature_stride and block_size (mv_warp's)."""
    index: tf.Tensor
    labels: tf.Tensor
    motion: tf.Tensor
    feature_stride: int
    block_size: int


_EMPTY: dict = {}


def _empty(dtype) -> tf.Tensor:
    """A [0, 0, 0] tensor of `dtype` (an absent optional input of the indexed op), made once."""
    t = _EMPTY.get(dtype)
    if t is None:
        t = _EMPTY[dtype] = tf.zeros([0, 0, 0], dtype)
    return t


def gather_indexed(source, index):
    """The map [N, h, w, C] whose pixel p of batch item n is sources[i][n, q] for index[n, p] =
    i << SOURCE_SHIFT | q (source: one tensor, the map's shape, or a list; see
    upsample_argmax_indexed)."""
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    shape = tf.shape(sources[0])
    flat = [tf.reshape(s, [shape[0], -1, shape[3]]) for s in sources]
    index = tf.reshape(tf.convert_to_tensor(index, tf.int32), [shape[0], -1])
    if len(flat) == 1:
        return tf.reshape(tf.gather(flat[0], index, batch_dims=1), shape)
    # one pool: each source's positions offset by the cells of the sources before it
    offsets = tf.math.cumsum([tf.shape(f)[1] for f in flat], exclusive=True)
    pooled = tf.gather(offsets, tf.bitwise.right_shift(index, SOURCE_SHIFT)) + \
        tf.bitwise.bitwise_and(index, (1 << SOURCE_SHIFT) - 1)
    return tf.reshape(tf.gather(tf.concat(flat, axis=1), pooled, batch_dims=1), shape)


def index_take_region(index, top, left, region_height, region_width, source, backend=None,
                      motion=None, feature_stride=0, block_size=0):
    """int32 index map (as index, [N, h, w] or [N, h, w, 1]) whose region [top, top +
    region_height) x [left, left + region_width) reads source number `source` (the cell (r, c)
    of the region: source << SOURCE_SHIFT | r * region_width + c), the rest as index: RGC's
    take-over (Eq. 6 at alpha = 1) on FFW's index map, in one pass (TapLab>IndexTakeRegion).
    motion ([N, grid_h, grid_w, 2] block vectors, with mv_warp's feature_stride and block_size):
    the map is first warped by them as mv_warp(index, motion, interpolation='nearest',
    border='clamp') warps it (index [N, h, w, 1]), in the same pass: a propagated frame's FFW
    (Eq. 1) and RGC's take-over on its map at once.
    A region outside the map, or a source outside [0, MAX_SOURCES), is an InvalidArgumentError."""
    args = [top, left, region_height, region_width, source]
    direct = _loader.direct(backend, (index, tf.int32),
                            *([] if motion is None else [(motion, tf.float32)]))
    if not direct:  # (directly, the op's wrapper makes the region's int32 scalars)
        index = tf.convert_to_tensor(index, tf.int32)
        args = [tf.convert_to_tensor(v, tf.int32) for v in args]
    if direct or _loader.resolve(backend) == _loader.CPP:
        warp = (_empty(tf.float32) if motion is None
                else motion if direct else tf.convert_to_tensor(motion, tf.float32))
        return _loader.library().tap_lab_index_take_region(
            index, *args, warp, feature_stride=int(feature_stride), block_size=int(block_size))
    if motion is not None:
        import importlib  # pylint: disable=import-outside-toplevel
        warp = importlib.import_module("taplab_tf.ops.mv_warp").mv_warp
        index = warp(index, motion, feature_stride=feature_stride, block_size=block_size,
                     interpolation="nearest", border="clamp", backend=backend)
    top, left, rh, rw, src = args
    shape = tf.shape(index)
    h, w = shape[1], shape[2]
    tf.debugging.assert_non_negative(tf.stack([top, left, rh, rw, src]),
                                     message="index_take_region: negative region or source")
    tf.debugging.assert_less_equal(tf.stack([top + rh, left + rw]), tf.stack([h, w]),
                                   message="index_take_region: the region does not fit the map")
    tf.debugging.assert_less(src, MAX_SOURCES, message="index_take_region: source too large")
    ys = tf.range(h)[:, None]
    xs = tf.range(w)[None, :]
    inside = (ys >= top) & (ys < top + rh) & (xs >= left) & (xs < left + rw)
    region = tf.bitwise.left_shift(src, SOURCE_SHIFT) + (ys - top) * rw + (xs - left)
    flat = tf.reshape(index, [shape[0], h, w])
    out = tf.where(inside[None], region[None], flat)
    return tf.reshape(out, shape)


def indexed_logits_to_labels(source, index, height, width, output_stride, stats=None,
                             key_labels=None, backend=None, output_dtype=tf.int32, name=None,
                             prev=None):
    """logits_to_labels(gather_indexed(source, index), ...) through upsample_argmax_indexed: the
    same rule (upsample to the stride's frame, argmax, crop) for logits held as a gather.
    key_labels: logits_to_labels(source, height, width, output_stride), to copy from."""
    with _loader.scope(name or "indexed_logits_to_labels", tf.executing_eagerly()):
        first = source[0] if isinstance(source, (list, tuple)) else source
        size, uncropped = _stride_frame(first, output_stride, height, width)
        full = upsample_argmax_indexed(source, index, size, stats=stats, key_labels=key_labels,
                                       backend=backend, output_dtype=output_dtype, prev=prev)
        return full if uncropped else full[:, :height, :width]


tf.no_gradient("TapLab>UpsampleArgmax")
tf.no_gradient("TapLab>UpsampleArgmaxIndexed")
tf.no_gradient("TapLab>ArgmaxStats")
