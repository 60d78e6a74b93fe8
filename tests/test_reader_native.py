"""The reader's native residual kernel (third_party/compressed_video/native): bit-exact with the
numpy/OpenCV path, the same frames through the reader, its build, fallback and switch."""
import logging
import shutil

import cv2
import numpy as np
import pytest

from tests.helpers.frames import pan_frames, rotating_frames, subpixel_pan_frames
from third_party.compressed_video import encode_video, native, open_compressed
from third_party.compressed_video.motion import (MotionCompensator, block_counts_from_sum,
                                                 channel_sum_abs, sum_limit)

THRESHOLDS = (-1, 0, 0.2, 1 / 3, 1.5, 3, 10, 84.9, 85, 90, 254, 255, 300)


def _has_compiler():
    import os
    return shutil.which(os.environ.get("CXX", "g++")) is not None


@pytest.fixture
def use_native(monkeypatch):
    monkeypatch.delenv("COMPRESSED_VIDEO_NATIVE", raising=False)
    if native.backend() != "native":
        pytest.skip(f"native kernel unavailable: {native.unavailable_reason()}")


def test_backend_is_native_when_a_compiler_exists(monkeypatch):
    monkeypatch.delenv("COMPRESSED_VIDEO_NATIVE", raising=False)
    if not _has_compiler():
        pytest.skip("no C++ compiler: the numpy fallback is what runs")
    assert native.backend() == "native", native.unavailable_reason()
    assert native.unavailable_reason() is None


def test_switch_off_gives_numpy(monkeypatch):
    monkeypatch.setenv("COMPRESSED_VIDEO_NATIVE", "0")
    assert native.backend() == "numpy" and native.library() is None
    assert "COMPRESSED_VIDEO_NATIVE=0" in native.unavailable_reason()


def _vector_sets(rng, gh, gw):
    half = lambda lo, hi: rng.integers(2 * lo, 2 * hi + 1, (gh, gw, 2)) / 2  # noqa: E731
    far = half(-20, 20)
    far[rng.random((gh, gw)) < 0.3] = (300.5, -250)      # way outside the frame
    far[rng.random((gh, gw)) < 0.2] = (-777, 401.5)
    return {
        "half": half(-20, 20),
        "integer": rng.integers(-9, 10, (gh, gw, 2)),
        "zero": np.zeros((gh, gw, 2)),
        "far": far,
        "one-case": np.where(rng.random((gh, gw, 1)) < 0.7, (2.5, -0.5), (-0.5, 1.5)),
        "edge-reach": half(-60, 60),
    }


def _numpy_counts(abs_res, thr, bs):
    h, w = abs_res.shape[:2]
    m = np.pad(abs_res.mean(axis=2) > thr, ((0, -h % bs), (0, -w % bs)))
    return m.reshape(m.shape[0] // bs, bs, m.shape[1] // bs, bs).sum(axis=(1, 3))


@pytest.mark.parametrize("h,w,bs", [(50, 70, 16), (50, 70, 8), (64, 96, 16), (37, 129, 8),
                                    (1, 1, 16), (9, 17, 8)])
def test_kernel_is_bit_exact_with_numpy(use_native, h, w, bs):
    rng = np.random.default_rng(h * 1000 + w + bs)
    cur = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    prev = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mc = MotionCompensator(h, w, bs)
    gh, gw = mc.grid
    for name, mv in _vector_sets(rng, gh, gw).items():
        mv = mv.astype(np.float32)
        assert native.half_pel_only(mv)
        pred = mc(prev, mv)
        want = cur.astype(np.int16) - pred
        res, cs, total = native.residual(cur, prev, mv, bs)
        np.testing.assert_array_equal(res, want, err_msg=name)
        assert cs.dtype == np.uint16
        np.testing.assert_array_equal(cs, np.abs(want).sum(axis=2), err_msg=name)
        assert total == int(np.abs(want).sum()) == cv2.norm(cur, pred, cv2.NORM_L1), name
        # the optional outputs are independent; any thread count gives the same
        r2, c2, t2 = native.residual(cur, prev, mv, bs, want_residual=False, threads=3)
        assert r2 is None and t2 == total
        np.testing.assert_array_equal(c2, cs)
        r3, c3, t3 = native.residual(cur, prev, mv, bs, want_chan_sum=False, threads=1)
        assert c3 is None and t3 == total
        np.testing.assert_array_equal(r3, want)
        abs_res = np.abs(want).astype(np.uint8)
        for cbs in {bs, 16, 8}:
            for thr in THRESHOLDS:
                got = native.block_counts(cs, sum_limit(thr), cbs)
                assert got.dtype == np.int32
                np.testing.assert_array_equal(got, _numpy_counts(abs_res, thr, cbs),
                                              err_msg=f"{name} thr={thr} bs={cbs}")
                np.testing.assert_array_equal(
                    got, block_counts_from_sum(channel_sum_abs(abs_res), thr, cbs))


def test_kernel_rejects_bad_shapes(use_native):
    a = np.zeros((32, 48, 3), np.uint8)
    with pytest.raises(ValueError, match="motion grid"):
        native.residual(a, a, np.zeros((2, 2, 2), np.float32), 16)
    with pytest.raises(ValueError, match="frames"):
        native.residual(a, a[:16], np.zeros((2, 3, 2), np.float32), 16)
    assert not native.half_pel_only(np.full((2, 3, 2), 0.25, np.float32))
    assert not native.half_pel_only(np.full((2, 3, 2), np.inf, np.float32))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("native_clips")
    return {
        "pan": encode_video(pan_frames(14, 4, -2), str(d / "pan.avi"), gop=12, qscale=2),
        "sub": encode_video(subpixel_pan_frames(8, 1.5, -0.5), str(d / "sub.avi"), gop=12,
                            qscale=3),
        "mv4": encode_video(rotating_frames(4), str(d / "mv4.avi"), gop=12, qscale=3, mv4=True),
        "small": encode_video(pan_frames(9, 2, 2, h=50, w=70), str(d / "small.avi"), gop=4,
                              qscale=2),
    }


def _read(path, **kw):
    with open_compressed(path, **kw) as v:
        return list(v)


@pytest.mark.parametrize("clip,block", [("pan", 16), ("sub", 16), ("sub", 8), ("mv4", 8),
                                        ("mv4", 16), ("small", 16), ("small", 8)])
def test_reader_native_and_numpy_give_the_same_frames(use_native, monkeypatch, clips, clip,
                                                      block):
    path = clips[clip]
    nat_full = _read(path, mv_block_size=block)
    nat_summ = _read(path, mv_block_size=block, residual="summary", rgb=False)
    monkeypatch.setenv("COMPRESSED_VIDEO_NATIVE", "0")
    ref_full = _read(path, mv_block_size=block)
    ref_summ = _read(path, mv_block_size=block, residual="summary", rgb=False)
    monkeypatch.delenv("COMPRESSED_VIDEO_NATIVE")
    assert len(nat_full) == len(ref_full) == len(nat_summ) == len(ref_summ)
    assert any(f.pict_type == "P" and f._res.backend == "native" for f in nat_summ)  # native ran
    for a, b, c, d in zip(nat_full, ref_full, nat_summ, ref_summ):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.motion_vectors, b.motion_vectors)
        assert a.residual_sum == b.residual_sum == c.residual_sum == d.residual_sum
        if a.pict_type == "I":
            continue
        np.testing.assert_array_equal(a.residual, b.residual)
        assert c.residual is None and d.residual is None
        for thr in (0, 1.5, 4, 84.9, 90):
            want = b.residual_block_counts(thr)
            for f in (a, c, d):
                np.testing.assert_array_equal(f.residual_block_counts(thr), want)
        np.testing.assert_array_equal(a.residual_block_counts(2, block_size=8),
                                      b.residual_block_counts(2, block_size=8))
        for f in (a, c, d):                                   # |Res| on demand, both modes
            np.testing.assert_array_equal(f.abs_residual(), b.abs_residual())


def test_build_failure_falls_back_and_warns_once(monkeypatch, tmp_path, caplog, clips):
    monkeypatch.delenv("COMPRESSED_VIDEO_NATIVE", raising=False)
    monkeypatch.delenv("COMPRESSED_VIDEO_NATIVE_VARIANT", raising=False)
    monkeypatch.setenv("COMPRESSED_VIDEO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    monkeypatch.setattr(native, "_state", {})
    with caplog.at_level(logging.WARNING, logger=native.__name__):
        assert native.backend() == "numpy"
        assert native.backend() == "numpy"
        frames = _read(clips["small"], residual="summary")
    msgs = [r.getMessage() for r in caplog.records if r.name == native.__name__]
    assert len(msgs) == 1 and "numpy/OpenCV fallback" in msgs[0]
    assert "no-such-compiler-xyz" in msgs[0] and "\n" not in msgs[0]
    assert "not found" in native.unavailable_reason()
    assert frames[2].residual_sum > 0 and frames[2].residual_block_counts(2).shape == (4, 5)


@pytest.mark.skipif(not _has_compiler(), reason="no C++ compiler")
def test_compile_error_is_one_line_with_the_log_kept(monkeypatch, tmp_path):
    bad = tmp_path / "broken.cc"
    bad.write_text("int f() { return not_declared; }\n")
    monkeypatch.setenv("COMPRESSED_VIDEO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "SOURCE", bad)
    with pytest.raises(native.BuildError) as e:
        native.ensure_built()
    msg = str(e.value)
    assert "\n" not in msg and "compiling broken.cc" in msg and "not_declared" in msg
    log = native.library_path().parent / "build-error.log"
    assert log.exists() and str(log) in msg
    assert not native.library_path().exists()
