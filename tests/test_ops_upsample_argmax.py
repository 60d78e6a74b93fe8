"""upsample_argmax's cells kernel (with the exact shortcut) against the reference, label for label.

The reference is the TF path (tf.argmax of tf.image.resize, bilinear), and the earlier rows kernel
(method='rows'), which interpolates every pixel. Every comparison is exact equality: the shortcut
must never change a label, including at ties and near-ties (see cc/kernels/upsample_argmax.h).
"""
import importlib
import os
import pathlib
import shutil
import subprocess
import zlib

import numpy as np
import pytest
import tensorflow as tf

from taplab_tf import ops
from taplab_tf.ops import build

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                                reason="no C++ compiler: the compiled kernels cannot be built")


def _noise(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def _smooth(rng, shape):
    """Blurred noise, scaled: large regions of one class with boundaries between them (like a
    trained model's logits)."""
    n, h, w, c = shape
    x = rng.standard_normal((n, h + 6, w + 6, c)).astype(np.float32)
    return (8.0 * tf.nn.avg_pool2d(x, 7, 1, "VALID")).numpy()


def _regions(rng, shape):
    """Piecewise-constant class maps (one-hot times a margin, plus small noise): most cells agree
    by a wide margin, so the shortcut covers most pixels."""
    n, h, w, c = shape
    blocks = rng.integers(0, c, (n, -(-h // 4), -(-w // 4)))
    cls = np.repeat(np.repeat(blocks, 4, 1), 4, 2)[:, :h, :w]
    return (4.0 * np.eye(c, dtype=np.float32)[cls]
            + 0.1 * rng.standard_normal(shape)).astype(np.float32)


def _ties(rng, shape):
    """Integer logits: many exact ties in the source vectors and in the interpolated ones."""
    return np.round(rng.standard_normal(shape)).astype(np.float32)


KINDS = {"noise": _noise, "smooth": _smooth, "regions": _regions, "ties": _ties}


def _reference(logits, size):
    return ops.upsample_argmax_tf(tf.constant(logits), size).numpy()


def _check(logits, size):
    want = _reference(logits, size)
    for dtype in (tf.int32, tf.uint8):
        for method in ("cells", "rows"):
            got = ops.upsample_argmax(logits, size, backend="cpp", output_dtype=dtype,
                                      method=method).numpy()
            assert got.dtype == dtype.as_numpy_dtype and got.shape == want.shape
            diff = int(np.sum(got != want))
            assert diff == 0, f"{method} {dtype.name}: {diff} labels differ from the TF reference"


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("shape,size", [
    ((1, 16, 32, 19), (128, 256)),   # x8, Cityscapes classes
    ((1, 32, 40, 11), (128, 160)),   # x4, CamVid classes
    ((2, 13, 17, 11), (100, 131)),   # odd sizes, non-integer scale, batch 2
    ((1, 7, 5, 2), (23, 17)),        # C = 2, tiny, odd
    ((1, 9, 11, 1), (20, 30)),       # C = 1
    ((1, 30, 40, 5), (17, 23)),      # downsampling
    ((1, 6, 9, 19), (45, 70)),       # sizes that are not multiples of the stride
    ((1, 1, 1, 3), (5, 9)),          # a single source pixel
])
def test_cells_kernel_equals_reference(kind, shape, size):
    rng = np.random.default_rng(zlib.crc32(repr((kind, shape)).encode()))
    _check(KINDS[kind](rng, shape), size)


def test_logits_to_labels_crop_equals_reference():
    """The engine's rule (upsample to the stride's frame, argmax, crop) at a frame size off the
    stride grid, for both label types."""
    logits = _smooth(np.random.default_rng(3), (1, 23, 31, 19))
    want = _reference(logits, (23 * 8, 31 * 8))[:, :181, :243]
    for dtype in (tf.int32, tf.uint8):
        got = ops.logits_to_labels(logits, 181, 243, 8, backend="cpp", output_dtype=dtype)
        np.testing.assert_array_equal(got.numpy(), want)


def _near_ties(seed, count=64):
    """2x2 sources, C = 2, where channel 0 beats channel 1 by one float32 ulp at all four source
    pixels: the four argmaxes agree, yet the rounded bilinear mix ranks channel 1 first at some
    output pixels. A shortcut on agreement alone (no margin) gets those pixels wrong."""
    rng = np.random.default_rng(seed)
    scale = rng.choice([1.0, 100.0, 1e4], (count, 1, 1, 1)).astype(np.float32)
    c1 = (rng.uniform(-1, 1, (count, 2, 2, 1)) * scale).astype(np.float32)
    c0 = np.nextafter(c1, np.float32(np.inf)).astype(np.float32)
    return np.concatenate([c0, c1], -1)


def test_near_ties_that_agree_everywhere_take_the_full_path():
    logits = _near_ties(0)
    assert np.all(np.argmax(logits, -1) == 0)  # all four source argmaxes agree on channel 0
    want = _reference(logits, (16, 16))
    assert np.any(want != 0), "the case no longer discriminates: no mix ranks channel 1 first"
    _check(logits, (16, 16))


def test_huge_nan_and_inf_logits_cells_equal_rows():
    """Where intermediate values could overflow, or a NaN/Inf is present, no shortcut is taken:
    the cells kernel gives the rows kernel's labels (tf.argmax's NaN rule is not promised)."""
    rng = np.random.default_rng(5)
    logits = _regions(rng, (1, 12, 16, 19))
    logits[0, 2, 3, 4] = np.nan
    logits[0, 5, 6, :] = np.nan
    logits[0, 7, 8, 2] = np.inf
    logits[0, 9, 1, 0] = -np.inf
    logits[0, 3, 10] = 3e38          # every channel huge: (r - l) would overflow
    logits[0, 3, 11, 7] = -3e38
    logits[0, 10, 12] *= 1e31        # over the shortcut's 2^100 bound, still finite
    for dtype in (tf.int32, tf.uint8):
        cells = ops.upsample_argmax(logits, (96, 128), backend="cpp", output_dtype=dtype)
        rows = ops.upsample_argmax(logits, (96, 128), backend="cpp", output_dtype=dtype,
                                   method="rows")
        np.testing.assert_array_equal(cells.numpy(), rows.numpy())
    finite = _regions(rng, (1, 12, 16, 19)) * np.float32(1e31)
    _check(finite, (96, 128))


def test_full_resolution_smooth_and_noise_exact():
    """1024x2048 from stride-8 logits, as in the engine: exact on smooth and on noise logits."""
    rng = np.random.default_rng(11)
    for make in (_smooth, _noise):
        logits = make(rng, (1, 128, 256, 19))
        want = _reference(logits, (1024, 2048))
        got = ops.upsample_argmax(logits, (1024, 2048), backend="cpp", output_dtype=tf.uint8)
        np.testing.assert_array_equal(got.numpy(), want)


def test_bad_method_is_one_clear_error():
    with pytest.raises(ValueError, match="method must be one of"):
        ops.upsample_argmax(np.zeros((1, 2, 2, 3), np.float32), (4, 4), method="fast")


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("shape,size", [
    ((1, 16, 32, 19), (64, 128)),    # x4
    ((2, 10, 12, 11), (80, 96)),     # x8, batch 2
    ((2, 13, 17, 11), (100, 131)),   # odd sizes, non-integer scale, batch 2
    ((1, 9, 11, 1), (20, 30)),       # C = 1
    ((1, 1, 1, 3), (5, 9)),          # a single source pixel
])
def test_indexed_equals_upsample_argmax_of_the_gathered_map(kind, shape, size):
    """upsample_argmax_indexed (statistics gathered, values read only on the full path) gives
    upsample_argmax's labels of the gathered map, for random and block-copy index maps; its TF
    fallback gives the reference's; argmax_stats agrees with its TF version."""
    rng = np.random.default_rng(zlib.crc32(repr(("indexed", kind, shape)).encode()))
    source = KINDS[kind](rng, shape)
    n, h, w, _ = shape
    shifted = np.arange(h * w).reshape(h, w)
    shifted = np.roll(shifted, (1, -2), (0, 1))  # what a uniform nearest warp makes
    for index in (rng.integers(0, h * w, (n, h, w)),
                  np.broadcast_to(shifted, (n, h, w))):
        index = np.ascontiguousarray(index, np.int32)
        gathered = ops.gather_indexed(source, index).numpy()
        np.testing.assert_array_equal(
            gathered, np.take_along_axis(source.reshape(n, h * w, -1),
                                         index.reshape(n, -1, 1), 1).reshape(source.shape))
        for dtype in (tf.int32, tf.uint8):
            got = ops.upsample_argmax_indexed(source, index, size, backend="cpp",
                                              output_dtype=dtype).numpy()
            want = ops.upsample_argmax(gathered, size, backend="cpp", output_dtype=dtype)
            np.testing.assert_array_equal(got, want.numpy())
            want = ops.upsample_argmax(source, size, backend="cpp", output_dtype=dtype)
            # with the source's own labels to copy from (cropped, as the engine's are)
            key = want.numpy()[:, :max(1, size[0] - 1), :]
            got = ops.upsample_argmax_indexed(source, index, size, key_labels=key,
                                              backend="cpp", output_dtype=dtype).numpy()
            np.testing.assert_array_equal(got, ops.upsample_argmax(gathered, size,
                                                                  output_dtype=dtype).numpy())
        fallback = ops.upsample_argmax_indexed(source, index, size, backend="tf")
        np.testing.assert_array_equal(fallback.numpy(), _reference(gathered, size))
    arg, margin, mag = (t.numpy() for t in ops.argmax_stats(source, backend="cpp"))
    arg_tf, margin_tf, mag_tf = (t.numpy() for t in ops.argmax_stats(source, backend="tf"))
    np.testing.assert_array_equal(arg, arg_tf)
    np.testing.assert_array_equal(mag, mag_tf)
    if shape[-1] > 1:
        np.testing.assert_array_equal(margin, margin_tf)


def test_indexed_rejects_an_index_outside_the_map():
    ua = importlib.import_module("taplab_tf.ops.upsample_argmax")
    source = np.zeros((1, 2, 3, 4), np.float32)
    index = np.zeros((1, 2, 3), np.int32)
    index[0, 1, 2] = 6
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"index\[5\] = 6 \(source 0, position 6\) is outside"):
        ops.upsample_argmax_indexed(source, index, (4, 6), backend="cpp")
    index[0, 1, 2] = 1 << ua.SOURCE_SHIFT  # source 1, of which there is none
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\(source 1, position 0\)"):
        ops.upsample_argmax_indexed(source, index, (4, 6), backend="cpp")
    with pytest.raises(tf.errors.InvalidArgumentError, match="index must be \\[N, h, w\\]"):
        ops.upsample_argmax_indexed(source, index[:, :1], (4, 6), backend="cpp")
    with pytest.raises(tf.errors.InvalidArgumentError, match="source 1 must be"):
        ops.upsample_argmax_indexed([source, source[..., :2]], index, (4, 6), backend="cpp")


@pytest.mark.parametrize("kind", ["smooth", "regions", "ties"])
def test_indexed_reads_several_sources(kind):
    """A map read partly from other sources of other sizes (RGC's crops in FFW's map), with the
    first source's labels to copy from: the labels of the gathered map, compiled and fallback."""
    ua = importlib.import_module("taplab_tf.ops.upsample_argmax")
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    make = KINDS[kind]
    sources = [make(rng, (1, 16, 24, 11)), make(rng, (1, 8, 8, 11)), make(rng, (1, 3, 5, 11))]
    h, w = 16, 24
    index = np.broadcast_to(np.roll(np.arange(h * w).reshape(h, w), (2, 3), (0, 1)),
                            (1, h, w)).astype(np.int32).copy()
    index[0, 4:12, 8:16] = (1 << ua.SOURCE_SHIFT) + np.arange(64).reshape(8, 8)  # a crop, whole
    picks = rng.random((h, w)) < 0.1
    picks[4:12, 8:16] = False
    index[0][picks] = (2 << ua.SOURCE_SHIFT) + rng.integers(0, 15, int(picks.sum()))
    gathered = ops.gather_indexed(sources, index).numpy()
    np.testing.assert_array_equal(gathered[0, 4:12, 8:16], sources[1][0])
    for size in ((64, 96), (48, 72)):  # x4 (copies) and x3 (no copies)
        key = ops.upsample_argmax(sources[0], size, output_dtype=tf.uint8)
        want = _reference(gathered, size)
        got = ops.upsample_argmax_indexed(sources, index, size, key_labels=key, backend="cpp",
                                          output_dtype=tf.uint8)
        np.testing.assert_array_equal(got.numpy(), want)
        fallback = ops.upsample_argmax_indexed(sources, index, size, backend="tf")
        np.testing.assert_array_equal(fallback.numpy(), want)


@pytest.mark.parametrize("variant", [[], ["-DTAPLAB_NO_AVX512"], ["-DTAPLAB_BASELINE_ONLY"]],
                         ids=["dispatch", "no_avx512", "baseline"])
def test_kernel_header_alone_under_sanitizers(tmp_path, variant):
    """The cells kernel's header without TensorFlow (tests/cc/upsample_argmax_check.cc): random
    cases against a per-pixel reference of TF's arithmetic, with the AVX-512 and AVX2 paths the
    CPU has, without AVX-512, and without either (the portable code the Python tests never
    reach on an AVX2 machine), under
    AddressSanitizer and UBSan (reads past a row or a tile would show)."""
    source = pathlib.Path(__file__).parent / "cc" / "upsample_argmax_check.cc"
    binary = tmp_path / "check"
    cxx = os.environ.get("CXX", "g++")
    command = [cxx, "-std=c++17", "-O1", "-ffp-contract=off", "-fsanitize=address,undefined",
               "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", *variant,
               "-I", str(build.SOURCE_DIR / "kernels"), str(source), "-o", str(binary), "-lpthread"]
    compiled = subprocess.run(command, capture_output=True, text=True)
    if compiled.returncode != 0 and "asan" in compiled.stderr.lower():
        pytest.skip("no AddressSanitizer runtime for this compiler")
    assert compiled.returncode == 0, compiled.stderr[-2000:]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    run = subprocess.run([str(binary), "1000", "7"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    assert "1000 cases, 0 failures" in run.stdout


def _output_step_app(*flags):
    """experiments.benchmark_output_step run as a program with these flags."""
    import sys  # pylint: disable=import-outside-toplevel

    root = pathlib.Path(__file__).resolve().parent.parent
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "experiments.benchmark_output_step", *flags],
                          capture_output=True, text=True, cwd=root, env=env, timeout=600)


def test_benchmark_output_step_runs_small(tmp_path):
    """experiments.benchmark_output_step end to end on a small frame (noise and smooth inputs):
    it checks the three paths' labels are identical, then prints one row per path and input."""
    run = _output_step_app("--frame=64,96", "--repeats=1", "--warmup=0", "--trained=false")
    assert run.returncode == 0, run.stderr[-2000:]
    table = [line for line in run.stdout.splitlines() if " 64x96 " in line]
    assert len(table) == 9, run.stdout  # 3 inputs x (cells, rows, tf)
    assert "CPU: " in run.stdout
    bad = _output_step_app("--frame=4,x")
    assert bad.returncode != 0 and "--frame" in bad.stderr and "Traceback" not in bad.stderr


def test_benchmark_output_step_times_the_trained_logits_at_both_strides():
    """With --trained the shipped models' logits are timed as segment runs phi (automatic input
    scale) and as the speed tables do (input scale 1, stride 4: the synthetic BL2 and the
    paper-size one), each also as a propagated FFW frame read through the chain's index map
    (the app exits non-zero if any way's labels differ)."""
    run = _output_step_app("--frame=64,128", "--repeats=1", "--warmup=0", "--trained=true")
    assert run.returncode == 0, run.stderr[-2000:]

    def ways(name):  # the "what" column of the rows of one input (after shape and size)
        return [line[len(name):].split()[2] for line in run.stdout.splitlines()
                if line.startswith(name + " ")]

    for model in ("synthetic BL2", "paper-size BL2"):
        assert ways(f"{model} s=4 C=19") == ["cells", "rows", "tf"], run.stdout
        assert ways(f"{model} FFW +6 s=4 C=19") == ["cells", "rows", "tf", "indexed",
                                                     "indexed+key"], run.stdout


@pytest.mark.parametrize("shape,region", [
    ((1, 8, 12, 1), (2, 6, 4, 4)),     # inside, the map as the warp moves it
    ((1, 8, 12), (0, 0, 8, 12)),       # the whole map, [N, h, w]
    ((2, 5, 7, 1), (4, 6, 1, 1)),      # a batch, the far corner
    ((1, 6, 6, 1), (3, 3, 0, 2)),      # an empty region
])
@pytest.mark.parametrize("backend", ["cpp", "tf"])
def test_index_take_region_points_the_region_at_the_crop(shape, region, backend):
    """RGC's take-over on the index map (TapLab>IndexTakeRegion and its TF version): the region's
    cell (r, c) reads source s at r * width + c, every other cell keeps its value, and the map
    it took from is unchanged."""
    if backend == "cpp" and ops.backend() != "cpp":
        pytest.skip("the compiled ops are not available")
    rng = np.random.default_rng(len(shape) + region[0])
    index = tf.constant(rng.integers(0, 1 << 22, shape).astype(np.int32))
    before = index.numpy().copy()
    top, left, rh, rw = region
    got = ops.index_take_region(index, top, left, rh, rw, 3, backend=backend).numpy()
    want = before.copy()
    view = want.reshape(shape[:3])
    from taplab_tf.ops.upsample_argmax import SOURCE_SHIFT
    view[:, top:top + rh, left:left + rw] = (3 << SOURCE_SHIFT) + np.arange(
        rh * rw, dtype=np.int32).reshape(rh, rw)
    assert got.shape == before.shape and got.dtype == np.int32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(index.numpy(), before)


@pytest.mark.parametrize("stride,block", [(4, 16), (8, 16), (4, 8)])
@pytest.mark.parametrize("backend", ["cpp", "tf"])
def test_index_take_region_with_motion_is_the_warp_then_the_take_over(stride, block, backend):
    """With motion vectors, IndexTakeRegion first warps the map as mv_warp's nearest warp does:
    one pass for a propagated frame's FFW and RGC's take-over, the same map as the two ops; the
    map it warped is unchanged, and bad vectors are refused as mv_warp refuses them."""
    if backend == "cpp" and ops.backend() != "cpp":
        pytest.skip("the compiled ops are not available")
    rng = np.random.default_rng(stride * 100 + block)
    h, w = 24, 40
    gh, gw = -(-h * stride // block), -(-w * stride // block)
    index = tf.constant(rng.integers(0, 1 << 20, (1, h, w, 1)).astype(np.int32))
    before = index.numpy().copy()
    motion = tf.constant(rng.uniform(-2.5 * block, 2.5 * block, (1, gh, gw, 2)).astype(np.float32))
    warped = ops.mv_warp(index, motion, feature_stride=stride, block_size=block,
                         interpolation="nearest", border="clamp", backend=backend)
    want = ops.index_take_region(warped, 5, 7, 6, 9, 2, backend=backend).numpy()
    got = ops.index_take_region(index, 5, 7, 6, 9, 2, backend=backend, motion=motion,
                                feature_stride=stride, block_size=block).numpy()
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(index.numpy(), before)
    bad = motion.numpy().copy()
    bad[0, 1, 1, 0] = np.nan
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        ops.index_take_region(index, 5, 7, 6, 9, 2, backend=backend, motion=bad,
                              feature_stride=stride, block_size=block)


@pytest.mark.parametrize("backend", ["cpp", "tf"])
@pytest.mark.parametrize("args", [(5, 0, 4, 4, 1), (0, 9, 4, 4, 1), (-1, 0, 2, 2, 1),
                                  (0, 0, 2, 2, 16), (0, 0, 2, 2, -1)])
def test_index_take_region_rejects_a_region_off_the_map_or_a_bad_source(backend, args):
    if backend == "cpp" and ops.backend() != "cpp":
        pytest.skip("the compiled ops are not available")
    index = tf.zeros([1, 8, 12, 1], tf.int32)
    with pytest.raises(tf.errors.InvalidArgumentError):
        ops.index_take_region(index, *args, backend=backend)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("shape,size", [
    ((1, 16, 32, 19), (64, 128)),    # x4, as a keyframe at stride 4
    ((2, 13, 17, 11), (100, 131)),   # odd sizes, non-integer scale, batch 2
    ((1, 9, 11, 1), (20, 30)),       # C = 1
    ((1, 40, 30, 5), (7, 9)),        # a downsampling: rows it never reads
])
def test_upsample_argmax_with_stats_equals_the_two_ops(kind, shape, size):
    """TapLab>UpsampleArgmaxWithStats: the labels of upsample_argmax and the statistics of
    argmax_stats, bit for bit, from one pass; its TF fallback likewise."""
    rng = np.random.default_rng(zlib.crc32(repr(("with_stats", kind, shape)).encode()))
    logits = KINDS[kind](rng, shape)
    want_stats = [t.numpy() for t in ops.argmax_stats(logits, backend="cpp")]
    for dtype in (tf.int32, tf.uint8):
        for backend in ("cpp", "tf"):
            labels, stats = ops.upsample_argmax_with_stats(logits, size, backend=backend,
                                                           output_dtype=dtype)
            assert labels.dtype == dtype
            np.testing.assert_array_equal(labels.numpy(), _reference(logits, size))
            for got, want in zip(stats, want_stats):
                np.testing.assert_array_equal(got.numpy(), want)
    h, w = shape[1] * 4, shape[2] * 4
    labels, stats = ops.logits_to_labels(logits, h - 3, w - 1, 4, with_stats=True)
    np.testing.assert_array_equal(labels.numpy(),
                                  ops.logits_to_labels(logits, h - 3, w - 1, 4).numpy())
    np.testing.assert_array_equal(stats[0].numpy(), want_stats[0])


@pytest.mark.parametrize("stride,block", [(4, 16), (8, 16), (4, 8)])
def test_indexed_copies_the_previous_frames_labels_where_the_warp_carried_a_cell_over(
        stride, block):
    """A chain of nearest warps (mv_warp on the index map, as FFW's): with the previous frame
    (its map, its labels, the block motion between them) the labels are still exactly those of
    the gathered map; and with the previous labels poisoned (noise logits: the shortcut covers
    few cells, and only the cells it leaves to the full path copy), the poison shows up in many
    pixels (never where a cell was not carried over, nor in an 8-column tile that still holds a
    cell on the full path): the op finds the cells the warp carried over as mv_warp moved
    them. Without the previous frame none would show."""
    rng = np.random.default_rng(stride * 100 + block)
    n, h, w, c = 1, 24, 40, 7
    # noise: the shortcut covers few cells, and only the full path's cells copy
    source = KINDS["noise"](rng, (n, h, w, c))
    size = (h * stride, w * stride)
    gh, gw = -(-h * stride // block), -(-w * stride // block)
    index = np.arange(h * w, dtype=np.int32).reshape(1, h, w, 1)
    labels = ops.upsample_argmax(source, size, output_dtype=tf.uint8).numpy()
    for step in range(3):
        # one motion for most blocks (a pan), its own for one block in five
        motion = np.broadcast_to(rng.integers(-3, 4, 2), (1, gh, gw, 2)).astype(np.float32)
        own = rng.random((1, gh, gw)) < 0.2
        motion[own] = rng.integers(-3, 4, (own.sum(), 2))
        motion *= stride
        warped = ops.mv_warp(index, motion, feature_stride=stride, block_size=block,
                             interpolation="nearest", border="clamp").numpy()
        want = ops.upsample_argmax(ops.gather_indexed(source, warped), size,
                                   output_dtype=tf.uint8).numpy()
        for crop in (0, 3):  # the previous labels cropped, as the engine's may be
            prev = ops.PrevFrame(tf.constant(index), tf.constant(labels[:, :size[0] - crop]),
                                 tf.constant(motion), stride, block)
            got = ops.upsample_argmax_indexed(source, warped, size, output_dtype=tf.uint8,
                                              prev=prev).numpy()
            np.testing.assert_array_equal(got, want)
        poisoned = ops.PrevFrame(tf.constant(index), tf.constant(np.full_like(labels, 200)),
                                 tf.constant(motion), stride, block)
        got = ops.upsample_argmax_indexed(source, warped, size, output_dtype=tf.uint8,
                                          prev=poisoned).numpy()
        assert (got == 200).mean() > 0.15, (step, (got == 200).mean())
        assert (got == 200).mean() < 1.0  # and not where the cells were not carried over
        index, labels = warped, want
    with pytest.raises(tf.errors.InvalidArgumentError, match="previous frame"):
        ops.upsample_argmax_indexed(source, index, size, prev=ops.PrevFrame(
            tf.constant(index), tf.constant(labels), tf.constant(motion[0]), stride, block))
