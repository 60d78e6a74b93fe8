"""The CUDA kernels of mv_warp against the NumPy reference of Eq. (1), on a GPU.

Needs nvcc, CuPy and a CUDA device; no TensorFlow (the kernels are called through their C API,
taplab_tf.ops.cuda). Skipped elsewhere, CI included (no GPU there). Run on a GPU machine with:

    python -m pytest -q tests/gpu
"""
import shutil

import numpy as np
import pytest

cp = pytest.importorskip("cupy", reason="CuPy is not installed: the CUDA kernel tests run on a "
                                        "GPU machine (python -m pytest tests/gpu)")

from taplab_tf.ops import cuda  # noqa: E402  (no TensorFlow import)
from tests.helpers.warp_reference import random_case, ref_warp, ref_warp_grad  # noqa: E402


def _have_gpu():
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no driver / no device
        return False


pytestmark = [
    pytest.mark.skipif(not _have_gpu(), reason="no CUDA device"),
    pytest.mark.skipif(shutil.which("nvcc") is None and not cuda.os.path.exists(
        "/usr/local/cuda/bin/nvcc"), reason="nvcc not found"),
]


@pytest.fixture(scope="module")
def warp():
    return cuda.MvWarpCuda()


CHANNELS = {4: 1, 8: 19, 16: 128, 32: 19}


@pytest.mark.parametrize("layout", ["rows", "generic"])
@pytest.mark.parametrize("border", ["clamp", "zeros"])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("stride", [4, 8, 16, 32])
def test_forward_matches_reference(warp, stride, interpolation, border, layout, monkeypatch):
    # rows: the 32-bit row-layout kernel every real map uses; generic: the 64-bit one (maps of
    # 2^30+ elements), forced here by the environment variable the launcher reads.
    monkeypatch.setenv("TAPLAB_TF_CUDA_GENERIC_KERNEL", "1" if layout == "generic" else "0")
    rng = np.random.default_rng(stride)
    c = CHANNELS[stride]
    size = (70, 90) if c < 128 else (50, 66)  # odd sizes, partial edge blocks
    f, m = random_case(rng, 2, *size, stride, c)
    got = cp.asnumpy(warp(cp.asarray(f), cp.asarray(m), stride, 16, interpolation, border))
    want = ref_warp(f, m, stride, 16, interpolation, border)
    if interpolation == "nearest":
        np.testing.assert_array_equal(got, want.astype(np.float32))  # a copy: exact
    else:
        np.testing.assert_allclose(got, want, atol=2e-5)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_zero_motion_is_identity_and_shift_is_roll(warp, interpolation):
    rng = np.random.default_rng(1)
    f = rng.standard_normal((1, 16, 24, 19)).astype(np.float32)
    m = np.zeros((1, 8, 12, 2), np.float32)
    got = cp.asnumpy(warp(cp.asarray(f), cp.asarray(m), 8, 16, interpolation))
    np.testing.assert_array_equal(got, f)
    m[..., 0], m[..., 1] = 16.0, -8.0  # +2 columns, -1 row at stride 8
    got = cp.asnumpy(warp(cp.asarray(f), cp.asarray(m), 8, 16, interpolation, "zeros"))
    want = np.zeros_like(f)
    want[:, :-1, 2:] = f[:, 1:, :-2]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype,atol", [("float16", 2e-3), ("float64", 1e-12)])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_float16_and_float64(warp, dtype, atol, interpolation):
    rng = np.random.default_rng(2)
    f, m = random_case(rng, 2, 45, 61, 8, 19)
    f = f.astype(dtype)
    got = cp.asnumpy(warp(cp.asarray(f), cp.asarray(m), 8, 16, interpolation))
    assert got.dtype == np.dtype(dtype)
    want = ref_warp(f, m, 8, 16, interpolation)
    tol = atol * (4 if interpolation == "bilinear" else 0)
    np.testing.assert_allclose(got.astype(np.float64), want, atol=tol, rtol=0)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("border", ["clamp", "zeros"])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_gradient_matches_reference(warp, interpolation, border, dtype):
    rng = np.random.default_rng(3)
    g, m = random_case(rng, 2, 40, 56, 4, 5, scale=6.0)
    g = g.astype(dtype)
    got = cp.asnumpy(warp(cp.asarray(g), cp.asarray(m), 4, 16, interpolation, border,
                          gradient=True))
    want = ref_warp_grad(g, m, 4, 16, interpolation, border)
    tol = {"float16": 2e-2, "float32": 1e-4, "float64": 1e-10}[dtype]
    np.testing.assert_allclose(got.astype(np.float64), want, atol=tol, rtol=tol)


def test_huge_motion_stays_in_bounds(warp):
    rng = np.random.default_rng(4)
    f, m = random_case(rng, 1, 64, 64, 8, 3)
    m[...] = 1e9
    m[0, 0, 0] = -1e9
    for interpolation in ("nearest", "bilinear"):
        for border in ("clamp", "zeros"):
            got = cp.asnumpy(warp(cp.asarray(f), cp.asarray(m), 8, 16, interpolation, border))
            np.testing.assert_allclose(got, ref_warp(f, m, 8, 16, interpolation, border),
                                       atol=1e-6)


def test_bad_arguments_are_clear(warp):
    f = cp.zeros((1, 8, 8, 3), cp.float32)
    with pytest.raises(ValueError, match="non-finite"):
        warp(f, cp.full((1, 4, 4, 2), cp.nan, cp.float32), 8)
    with pytest.raises(ValueError, match="same N"):
        warp(f, cp.zeros((2, 4, 4, 2), cp.float32), 8)
    with pytest.raises(ValueError, match="dtype"):
        warp(f.astype(cp.int32), cp.zeros((1, 4, 4, 2), cp.float32), 8)
