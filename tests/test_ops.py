"""Tests of taplab_tf.ops: mv_warp (Eq. 1) and upsample_argmax, both backends.

The NumPy reference below is written from Eq. (1) and the semantics in docs/INTERFACES.md, pixel by
pixel in float64, independently of both implementations.
"""
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

from taplab_tf import ops
from taplab_tf.ops import _loader, build
from tests.helpers.warp_reference import random_case, ref_warp

BACKENDS = ["cpp", "tf"]
HAVE_CXX = shutil.which(os.environ.get("CXX", "g++")) is not None


# ----------------------------------------------------------------------------- backend / build
@pytest.mark.skipif(not HAVE_CXX, reason="no C++ compiler: only the fallback can be tested")
def test_backend_is_cpp_when_compiler_present(monkeypatch):
    monkeypatch.delenv("TAPLAB_TF_OPS_BACKEND", raising=False)
    assert ops.backend() == "cpp", _loader._failure


def test_env_var_forces_fallback(monkeypatch):
    monkeypatch.setenv("TAPLAB_TF_OPS_BACKEND", "tf")
    assert ops.backend() == "tf-fallback"
    f, m = random_case(np.random.default_rng(0), 1, 40, 56, 8, 3)
    np.testing.assert_allclose(ops.mv_warp(f, m, 8).numpy(), ref_warp(f, m, 8), atol=1e-6)
    monkeypatch.setenv("TAPLAB_TF_OPS_BACKEND", "bogus")
    with pytest.raises(ValueError, match="TAPLAB_TF_OPS_BACKEND"):
        ops.backend()


def test_missing_compiler_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("TAPLAB_TF_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    with pytest.raises(build.BuildError, match="no-such-compiler-xyz.*not found") as e:
        build.ensure_built()
    assert "\n" not in str(e.value)


def test_failing_compiler_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("TAPLAB_TF_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", shutil.which("false") or "/bin/false")
    with pytest.raises(build.BuildError, match=r"compiling .*\.cc with .*false failed") as e:
        build.ensure_built()
    assert "\n" not in str(e.value)


def test_build_failure_falls_back_and_says_so_once(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("TAPLAB_TF_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    monkeypatch.delenv("TAPLAB_TF_OPS_BACKEND", raising=False)
    monkeypatch.setattr(_loader, "_library", None)
    monkeypatch.setattr(_loader, "_failure", None)
    monkeypatch.setattr(_loader, "_logged", set())
    with caplog.at_level("WARNING"):
        assert ops.backend() == "tf-fallback"
        f, m = random_case(np.random.default_rng(0), 1, 40, 56, 8, 3)
        np.testing.assert_allclose(ops.mv_warp(f, m, 8).numpy(), ref_warp(f, m, 8), atol=1e-6)
    warnings = [r.getMessage() for r in caplog.records if "fallback" in r.getMessage()]
    assert len(warnings) == 1 and "no-such-compiler-xyz" in warnings[0], warnings
    with pytest.raises(_loader.OpsUnavailableError, match="no-such-compiler-xyz"):
        ops.mv_warp(f, m, 8, backend="cpp")


def test_parallel_builders_compile_once(monkeypatch, tmp_path):
    monkeypatch.setenv("TAPLAB_TF_CACHE", str(tmp_path))
    calls = []

    def fake_compile(target, variant):
        calls.append(target)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(b"x")
        threading.Event().wait(0.2)
        os.replace(partial, target)

    monkeypatch.setattr(build, "_compile", fake_compile)
    results = []
    threads = [threading.Thread(target=lambda: results.append(build.ensure_built()))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1 and results[0].exists()


def test_import_is_silent_and_lazy():
    code = ("import taplab_tf.ops as o, taplab_tf.ops._loader as l, sys; "
            "sys.stdout.write('LOADED' if l._library is not None else 'LAZY')")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         check=True)
    assert out.stdout == "LAZY"


# ----------------------------------------------------------------------------- correctness
CHANNELS = {4: 1, 8: 19, 16: 128, 32: 19}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("border", ["clamp", "zeros"])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("stride", [4, 8, 16, 32])
def test_matches_reference(stride, interpolation, border, backend):
    rng = np.random.default_rng(stride * 7 + len(interpolation) + len(border))
    # Odd frame sizes (feature maps not a multiple of the grid), batch 2; partial edge blocks for
    # some strides (ceil grid), dropped ones (floor grid, as some encoders report) for others.
    frame_h, frame_w = (100, 148) if stride < 16 else (203, 331)
    f, m = random_case(rng, 2, frame_h, frame_w, stride, CHANNELS[stride],
                       partial=stride in (4, 16))
    got = ops.mv_warp(f, m, stride, interpolation=interpolation, border=border, backend=backend)
    np.testing.assert_allclose(got.numpy(), ref_warp(f, m, stride, 16, interpolation, border),
                               atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_channels_128_nonquantised_motion(backend):
    rng = np.random.default_rng(1)
    f, m = random_case(rng, 1, 64, 96, 4, 128, quarter_pel=False, scale=20.0)
    for interpolation in ("nearest", "bilinear"):
        got = ops.mv_warp(f, m, 4, interpolation=interpolation, backend=backend).numpy()
        want = ref_warp(f, m, 4, 16, interpolation)
        if interpolation == "bilinear":
            np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)
        else:  # float32 vs float64 coordinates may round differently at exact .5 ties
            assert np.mean(np.all(np.isclose(got, want, atol=1e-6), axis=-1)) > 0.999


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("border", ["clamp", "zeros"])
def test_zero_motion_is_identity(backend, interpolation, border):
    f = np.random.default_rng(2).standard_normal((2, 13, 21, 19)).astype(np.float32)
    m = np.zeros((2, 7, 11, 2), np.float32)
    got = ops.mv_warp(f, m, 8, interpolation=interpolation, border=border, backend=backend)
    np.testing.assert_array_equal(got.numpy(), f)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("border", ["clamp", "zeros"])
@pytest.mark.parametrize("shift", [(2, -3), (-1, 4), (0, 1)])
def test_uniform_integer_shift_is_roll(backend, interpolation, border, shift):
    s, (ky, kx) = 8, shift  # shift in feature pixels; motion in input pixels
    f = np.random.default_rng(3).standard_normal((1, 12, 16, 5)).astype(np.float32)
    m = np.zeros((1, 6, 8, 2), np.float32)
    m[..., 0], m[..., 1] = kx * s, ky * s
    want = np.roll(f, (ky, kx), axis=(1, 2))
    rows_in = (np.arange(12) < ky) | (np.arange(12) >= 12 + ky)  # rows rolled in from the edge
    cols_in = (np.arange(16) < kx) | (np.arange(16) >= 16 + kx)
    if border == "zeros":
        want[:, rows_in] = 0.0
        want[:, :, cols_in] = 0.0
    else:  # clamp: rolled-in pixels repeat the edge pixel they came across
        want = f[:, np.clip(np.arange(12) - ky, 0, 11)][:, :, np.clip(np.arange(16) - kx, 0, 15)]
        inner = np.roll(f, (ky, kx), axis=(1, 2))
        np.testing.assert_array_equal(want[:, ~rows_in][:, :, ~cols_in],
                                      inner[:, ~rows_in][:, :, ~cols_in])
    got = ops.mv_warp(f, m, s, interpolation=interpolation, border=border, backend=backend)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("stride", [4, 8])
def test_bilinear_matches_dense_image_warp(backend, stride):
    """With border='clamp' the whole map agrees with tfa (it clamps the same way); with
    border='zeros' only pixels whose 4 taps are inside the map agree (tfa has no zero padding)."""
    import tensorflow_addons as tfa  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(4)
    f, m = random_case(rng, 2, 90, 130, stride, 7, quarter_pel=False, scale=15.0)
    h, w = f.shape[1:3]
    rows = np.minimum((((np.arange(h) + 0.5) * stride) // 16).astype(int), m.shape[1] - 1)
    cols = np.minimum((((np.arange(w) + 0.5) * stride) // 16).astype(int), m.shape[2] - 1)
    dense = m[:, rows][:, :, cols]  # [N,h,w,(dx,dy)] in input pixels
    flow = np.stack([dense[..., 1], dense[..., 0]], -1) / stride  # tfa: (dy, dx) feature pixels
    want = tfa.image.dense_image_warp(f, flow).numpy()
    got = ops.mv_warp(f, m, stride, interpolation="bilinear", backend=backend).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    got_z = ops.mv_warp(f, m, stride, interpolation="bilinear", border="zeros",
                        backend=backend).numpy()
    qy = np.arange(h)[None, :, None] - flow[..., 0]
    qx = np.arange(w)[None, None, :] - flow[..., 1]
    inside = (qy >= 0) & (qy <= h - 1) & (qx >= 0) & (qx <= w - 1)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(got_z[inside], want[inside], atol=1e-5)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("border", ["clamp", "zeros"])
def test_backends_agree(interpolation, border):
    rng = np.random.default_rng(5)
    f, m = random_case(rng, 3, 257, 511, 8, 19, quarter_pel=False, scale=30.0)
    a = ops.mv_warp(f, m, 8, interpolation=interpolation, border=border, backend="cpp")
    b = ops.mv_warp(f, m, 8, interpolation=interpolation, border=border, backend="tf")
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_motion_stays_in_bounds(backend):
    f = np.random.default_rng(6).standard_normal((1, 8, 8, 3)).astype(np.float32)
    m = np.full((1, 4, 4, 2), 3e38, np.float32)
    m[0, :2] = -3e38
    for interpolation in ("nearest", "bilinear"):
        got = ops.mv_warp(f, m, 8, interpolation=interpolation, border="zeros", backend=backend)
        np.testing.assert_array_equal(got.numpy(), 0.0)
        got = ops.mv_warp(f, m, 8, interpolation=interpolation, backend=backend).numpy()
        np.testing.assert_allclose(got, ref_warp(f, m, 8, 16, interpolation), atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float16_and_float64(backend):
    rng = np.random.default_rng(7)
    f, m = random_case(rng, 2, 64, 80, 8, 19)
    for interpolation in ("nearest", "bilinear"):
        want = ref_warp(f.astype(np.float16), m, 8, 16, interpolation)
        got16 = ops.mv_warp(f.astype(np.float16), m, 8, interpolation=interpolation,
                            backend=backend)
        assert got16.dtype == tf.float16
        np.testing.assert_allclose(got16.numpy().astype(np.float64), want, atol=2e-3, rtol=2e-3)
        x16 = tf.constant(f.astype(np.float16))
        with tf.GradientTape() as tape:
            tape.watch(x16)
            y16 = ops.mv_warp(x16, m, 8, interpolation=interpolation, backend=backend)
        g16 = tape.gradient(y16, x16, output_gradients=tf.ones_like(y16))
        x32 = tf.constant(f)
        with tf.GradientTape() as tape:
            tape.watch(x32)
            y32 = ops.mv_warp(x32, m, 8, interpolation=interpolation, backend=backend)
        g32 = tape.gradient(y32, x32, output_gradients=tf.ones_like(y32))
        assert g16.dtype == tf.float16
        np.testing.assert_allclose(g16.numpy().astype(np.float32), g32.numpy(), atol=1e-2,
                                   rtol=1e-2)
        got64 = ops.mv_warp(f.astype(np.float64), m, 8, interpolation=interpolation,
                            backend=backend)
        assert got64.dtype == tf.float64
        np.testing.assert_allclose(got64.numpy(), ref_warp(f, m, 8, 16, interpolation),
                                   atol=1e-12)


# ----------------------------------------------------------------------------- gradients, graphs
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("border", ["clamp", "zeros"])
def test_feature_gradient(backend, interpolation, border):
    rng = np.random.default_rng(8)
    f, m = random_case(rng, 2, 32, 40, 8, 3, quarter_pel=False, scale=10.0)
    f64 = tf.constant(f, tf.float64)
    warp = tf.function(lambda x: ops.mv_warp(x, m, 8, interpolation=interpolation,
                                             border=border, backend=backend))
    theoretical, numerical = tf.test.compute_gradient(warp, [f64[:, :4, :5, :2]])
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)
    mv = tf.constant(m)
    with tf.GradientTape() as tape:
        tape.watch(mv)
        x = tf.constant(f)
        tape.watch(x)
        y = ops.mv_warp(x, mv, 8, interpolation=interpolation, border=border, backend=backend)
        loss = tf.reduce_sum(y * y)
    gf, gm = tape.gradient(loss, [x, mv])
    assert gm is None and gf.shape == f.shape


def test_gradients_agree_across_backends_float32():
    rng = np.random.default_rng(9)
    f, m = random_case(rng, 2, 100, 148, 4, 19, quarter_pel=False, scale=25.0)
    weights = tf.constant(rng.standard_normal(f.shape).astype(np.float32))
    grads = []
    for backend in BACKENDS:
        x = tf.constant(f)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(weights * ops.mv_warp(x, m, 4, interpolation="bilinear",
                                                       border="zeros", backend=backend))
        grads.append(tape.gradient(loss, x).numpy())
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_inside_tf_function_with_unknown_shapes(backend):
    rng = np.random.default_rng(10)
    f, m = random_case(rng, 2, 64, 96, 8, 19)
    spec = [tf.TensorSpec([None, None, None, None], tf.float32),
            tf.TensorSpec([None, None, None, 2], tf.float32)]
    fn = tf.function(lambda a, b: ops.mv_warp(a, b, 8, interpolation="bilinear", backend=backend),
                     input_signature=spec)
    np.testing.assert_allclose(fn(f, m).numpy(), ref_warp(f, m, 8, 16, "bilinear"), atol=2e-5)
    static = tf.function(lambda a, b: ops.mv_warp(a, b, 8, backend=backend))
    assert static.get_concrete_function(
        tf.TensorSpec([2, 8, 12, 19]), tf.TensorSpec([2, 4, 6, 2])).output_shapes == [2, 8, 12, 19]


def test_functional_keras_model():
    feats = tf.keras.Input([8, 12, 19])
    motion = tf.keras.Input([4, 6, 2])
    out = tf.keras.layers.Lambda(lambda t: ops.mv_warp(t[0], t[1], 8))([feats, motion])
    model = tf.keras.Model([feats, motion], out)
    f, m = random_case(np.random.default_rng(11), 2, 64, 96, 8, 19)
    np.testing.assert_allclose(model([f, m]).numpy(), ref_warp(f, m, 8), atol=1e-6)


def test_xla_jit_compile():
    """The compiled op has no XLA lowering: under jit_compile=True it fails with an error naming the
    op; the fallback (backend='tf') compiles with XLA and gives the same result."""
    f, m = random_case(np.random.default_rng(12), 1, 64, 96, 8, 19)
    cpp = tf.function(lambda a, b: ops.mv_warp(a, b, 8, backend="cpp"), jit_compile=True)
    with pytest.raises((tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                        tf.errors.NotFoundError), match="MvWarp"):
        cpp(f, m)
    fallback = tf.function(lambda a, b: ops.mv_warp(a, b, 8, interpolation="bilinear",
                                                    backend="tf"), jit_compile=True)
    np.testing.assert_allclose(fallback(f, m).numpy(), ref_warp(f, m, 8, 16, "bilinear"),
                               atol=2e-5)


# ----------------------------------------------------------------------------- bad inputs
GOOD_F = np.zeros((2, 8, 12, 3), np.float32)
GOOD_M = np.zeros((2, 4, 6, 2), np.float32)
NAN_M = GOOD_M.copy()
NAN_M[1, 2, 3, 0] = np.nan
BAD = {
    "features rank": (np.zeros((8, 12, 3), np.float32), GOOD_M, "features must be rank 4"),
    "motion rank": (GOOD_F, np.zeros((2, 4, 6), np.float32), "motion_vectors must be rank 4"),
    "batch": (GOOD_F, np.zeros((3, 4, 6, 2), np.float32), "motion_vectors batch size"),
    "last dim": (GOOD_F, np.zeros((2, 4, 6, 3), np.float32), "motion_vectors last dimension"),
    "grid too small": (GOOD_F, np.zeros((2, 2, 3, 2), np.float32), "motion_vectors grid"),
    "grid too large": (GOOD_F, np.zeros((2, 8, 12, 2), np.float32), "motion_vectors grid"),
    "nan": (GOOD_F, NAN_M, "motion_vectors contains a non-finite value"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_raise_invalid_argument(backend, case):
    f, m, message = BAD[case]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        ops.mv_warp(f, m, 8, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_raise_at_run_time_in_graphs(backend, case):
    """Shapes unknown at trace time: the C++ OP_REQUIRES / the fallback's asserts catch them."""
    f, m, message = BAD[case]
    fn = tf.function(lambda a, b: ops.mv_warp(a, b, 8, backend=backend),
                     input_signature=[tf.TensorSpec(None, tf.float32)] * 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        fn(f, m)


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_raw_kernels(case, grad):
    f, m, message = BAD[case]
    lib = _loader.library(required=True)
    op = lib.tap_lab_mv_warp_grad if grad else lib.tap_lab_mv_warp
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace(
            "features", "grad" if grad else "features")):
        op(f, m, feature_stride=8)


def test_bad_python_arguments():
    with pytest.raises(ValueError, match="interpolation"):
        ops.mv_warp(GOOD_F, GOOD_M, 8, interpolation="cubic")
    with pytest.raises(ValueError, match="border"):
        ops.mv_warp(GOOD_F, GOOD_M, 8, border="wrap")
    with pytest.raises(ValueError, match="feature_stride"):
        ops.mv_warp(GOOD_F, GOOD_M, 0)
    with pytest.raises(ValueError, match="block_size"):
        ops.mv_warp(GOOD_F, GOOD_M, 8, block_size=16.0)
    np.testing.assert_array_equal(ops.mv_warp(GOOD_F, GOOD_M, np.int64(8)).numpy(), GOOD_F)
    with pytest.raises(TypeError, match="features"):
        ops.mv_warp(GOOD_F.astype(np.int64), GOOD_M, 8)
    with pytest.raises(TypeError, match="nearest"):  # an int32 map is an index: never mixed
        ops.mv_warp(GOOD_F.astype(np.int32), GOOD_M, 8, interpolation="bilinear")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("border", ["clamp", "zeros"])
def test_int32_map_warps_like_float_nearest(backend, border):
    """FFW's index map (pipeline.propagation.IndexedLogits) is warped as int32: the nearest
    warp copies the values, so it moves them exactly as it moves float features, and values
    above 2^24 (which a float32 map would round) come through whole."""
    rng = np.random.default_rng(11)
    f, m = random_case(rng, 2, 100, 148, 4, 1, partial=True)
    values = rng.integers(-2**31, 2**31 - 1, size=f.shape, dtype=np.int64).astype(np.int32)
    ids = np.arange(f.size, dtype=np.float64).reshape(f.shape)  # exact in float32 and float64
    got = ops.mv_warp(values, m, 4, border=border, backend=backend)
    assert got.dtype == tf.int32
    moved = ops.mv_warp(ids, m, 4, border=border, backend=backend).numpy()
    want = np.where(moved >= 0, values.reshape(-1)[np.maximum(moved, 0).astype(np.int64)], 0)
    if border == "zeros":  # outside the map reads 0 (ids reads 0 there too: id 0 is the corner)
        outside = ops.mv_warp(np.ones_like(ids), m, 4, border=border, backend=backend).numpy() == 0
        want = np.where(outside, 0, want)
    np.testing.assert_array_equal(got.numpy(), want.reshape(f.shape))


# ----------------------------------------------------------------------------- upsample_argmax
def _assert_argmax_equal(got, logits, size):
    resized = tf.image.resize(logits, size, "bilinear").numpy()
    want = np.argmax(resized, -1)
    diff = got != want
    if diff.any():  # allowed only where the top two interpolated logits tie within 1e-5
        top2 = np.sort(resized[diff], axis=-1)[:, -2:]
        assert np.all(top2[:, 1] - top2[:, 0] <= 1e-5), f"{diff.sum()} labels differ"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,size", [
    ((1, 16, 32, 19), (128, 256)),   # x8 like BL2 -> full resolution
    ((2, 13, 17, 19), (100, 131)),   # odd sizes, non-integer scale, batch 2
    ((1, 30, 40, 5), (17, 23)),      # downsampling
    ((1, 9, 11, 1), (20, 30)),       # C = 1
    ((1, 12, 12, 128), (50, 50)),    # C = 128
])
def test_upsample_argmax_matches_tf(backend, shape, size):
    logits = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    got = ops.upsample_argmax(logits, size, backend=backend)
    assert got.dtype == tf.int32 and got.shape == (shape[0],) + tuple(size)
    _assert_argmax_equal(got.numpy(), logits, size)


@pytest.mark.parametrize("backend", BACKENDS)
def test_upsample_argmax_uint8_equals_int32(backend):
    logits = np.random.default_rng(21).standard_normal((2, 13, 17, 19)).astype(np.float32)
    wide = ops.upsample_argmax(logits, (100, 131), backend=backend)
    narrow = ops.upsample_argmax(logits, (100, 131), backend=backend, output_dtype=tf.uint8)
    assert narrow.dtype == tf.uint8
    np.testing.assert_array_equal(narrow.numpy(), wide.numpy())
    logits = np.random.default_rng(22).standard_normal((1, 4, 4, 256)).astype(np.float32)
    np.testing.assert_array_equal(  # 256 channels: labels up to 255 still fit
        ops.upsample_argmax(logits, (9, 9), backend=backend, output_dtype=tf.uint8).numpy(),
        ops.upsample_argmax(logits, (9, 9), backend=backend).numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="too many for uint8"):
        ops.upsample_argmax(np.zeros((1, 2, 2, 257), np.float32), (4, 4), backend=backend,
                            output_dtype=tf.uint8)
    with pytest.raises(ValueError, match="output_dtype"):
        ops.upsample_argmax(logits, (9, 9), backend=backend, output_dtype=tf.int64)


def test_upsample_argmax_ties_go_to_first_channel():
    logits = np.zeros((1, 4, 4, 6), np.float32)
    logits[..., 2] = logits[..., 4] = 1.0
    got = ops.upsample_argmax(logits, (16, 16), backend="cpp").numpy()
    assert np.all(got == 2)
    logits = np.round(np.random.default_rng(0).standard_normal((1, 8, 8, 19)))  # many exact ties
    got = ops.upsample_argmax(logits.astype(np.float32), (64, 64), backend="cpp").numpy()
    want = ops.upsample_argmax(logits.astype(np.float32), (64, 64), backend="tf").numpy()
    np.testing.assert_array_equal(got, want)


def test_upsample_argmax_full_resolution_is_exact():
    logits = np.random.default_rng(13).standard_normal((1, 128, 256, 19)).astype(np.float32)
    a = ops.upsample_argmax(logits, (1024, 2048), backend="cpp").numpy()
    b = ops.upsample_argmax(logits, (1024, 2048), backend="tf").numpy()
    assert np.mean(a != b) < 1e-6


def test_upsample_argmax_in_tf_function_and_bad_inputs():
    fn = tf.function(lambda x, s: ops.upsample_argmax(x, s),
                     input_signature=[tf.TensorSpec([None, None, None, 19]),
                                      tf.TensorSpec([2], tf.int32)])
    logits = np.random.default_rng(14).standard_normal((2, 8, 8, 19)).astype(np.float32)
    _assert_argmax_equal(fn(logits, tf.constant([32, 40])).numpy(), logits, (32, 40))
    with pytest.raises(tf.errors.InvalidArgumentError, match="logits must be rank 4"):
        ops.upsample_argmax(logits[0], (32, 32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="size must be positive"):
        ops.upsample_argmax(logits, (0, 32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="size must be a vector"):
        ops.upsample_argmax(logits, (4, 32, 32))


# ----------------------------------------------------------------------------- direct eager calls
@pytest.mark.skipif(not HAVE_CXX, reason="no C++ compiler: the direct path needs the library")
def test_direct_eager_calls_equal_the_general_path(monkeypatch):
    """Eager calls with tensors already of their types go straight to the compiled ops
    (_loader.direct: no name scope, conversion or cast, what the engine's loop calls); their
    results are the general path's, bit for bit."""
    monkeypatch.delenv("TAPLAB_TF_OPS_BACKEND", raising=False)
    rng = np.random.default_rng(21)
    logits = tf.constant(rng.normal(size=(1, 6, 8, 5)).astype(np.float32))
    crop = tf.constant(rng.normal(size=(1, 2, 3, 5)).astype(np.float32))
    motion = tf.constant(rng.integers(-8, 9, size=(1, 2, 2, 2)).astype(np.float32))
    index = tf.constant(np.arange(48, dtype=np.int32).reshape(1, 6, 8, 1))

    def run():
        stats = ops.argmax_stats(logits)
        key, key_stats = ops.logits_to_labels(logits, 24, 32, 4, output_dtype=tf.uint8,
                                              with_stats=True)
        warped = ops.mv_warp(index, motion, 4, 16)
        taken = ops.index_take_region(index, 1, 2, 2, 3, 1, motion=motion, feature_stride=4,
                                      block_size=16)
        labels = ops.indexed_logits_to_labels(
            [logits, crop], taken, 24, 32, 4, stats=[stats, ops.argmax_stats(crop)],
            key_labels=key, output_dtype=tf.uint8, prev=ops.PrevFrame(index, key, motion, 4, 16))
        out = (stats, key, key_stats, ops.logits_to_labels(logits, 22, 30, 4), warped, taken,
               labels, ops.upsample_argmax(logits, tf.constant([20, 28])))
        return tf.nest.map_structure(lambda t: t.numpy(), out)

    real, calls = _loader.direct, []
    monkeypatch.setattr(_loader, "direct", lambda *a: calls.append(real(*a)) or calls[-1])
    direct = run()
    assert calls and all(calls)
    monkeypatch.setattr(_loader, "direct", lambda *a: False)
    general = run()
    tf.nest.map_structure(np.testing.assert_array_equal, direct, general)


@pytest.mark.skipif(not HAVE_CXX, reason="no C++ compiler: the direct path needs the library")
def test_direct_path_only_for_eager_tensors_of_their_types(monkeypatch):
    monkeypatch.delenv("TAPLAB_TF_OPS_BACKEND", raising=False)
    t = tf.zeros([1, 2, 2, 3])
    assert _loader.direct(None, (t, tf.float32))
    assert not _loader.direct(None, (t.numpy(), tf.float32))         # NumPy: converted
    assert not _loader.direct(None, (t, tf.float32), (t, tf.int32))  # another type: cast
    assert not _loader.direct("tf", (t, tf.float32))                 # the fallback asked for
    assert not tf.function(lambda x: tf.constant(_loader.direct(None, (x, tf.float32))))(t)
    monkeypatch.setenv("TAPLAB_TF_OPS_BACKEND", "tf")
    assert not _loader.direct(None, (t, tf.float32))
    # the direct path keeps the errors of bad inputs
    monkeypatch.delenv("TAPLAB_TF_OPS_BACKEND")
    with pytest.raises(tf.errors.InvalidArgumentError, match="logits must be rank 4"):
        ops.upsample_argmax(t[0], tf.constant([4, 4]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="motion_vectors last dimension"):
        ops.mv_warp(t, tf.zeros([1, 1, 1, 3]), 4)
