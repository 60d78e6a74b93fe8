"""The reader's named values (PictureType, RGBMode, ColorConversion, ResidualMode) and its
residual object (third_party.compressed_video.residual), against independent references."""
import json
import os

import numpy as np
import pytest

from tests.helpers.frames import pan_frames, subpixel_pan_frames
from third_party import compressed_video as cv
from third_party.compressed_video import (ColorConversion, PictureType, ReaderError,
                                          ResidualMode, RGBMode, encode_video, motion_compensate,
                                          native, open_compressed)
from third_party.compressed_video.reader import CompressedFrame
from third_party.compressed_video.residual import Residual, ResidualComputer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    return {
        # integer vectors (4, -2) px/frame; 2 GOPs of 4
        "pan": encode_video(pan_frames(7, 4, -2, h=64, w=96), str(d / "pan.avi"), gop=4,
                            qscale=2),
        # half-pel vectors, and a size that is not a multiple of 16
        "sub": encode_video(subpixel_pan_frames(5, 1.5, -0.5, h=72, w=104), str(d / "sub.avi"),
                            gop=5, qscale=3),
    }


def read_all(path, **kw):
    with open_compressed(path, **kw) as v:
        return list(v)


# -- PictureType ---------------------------------------------------------------------------------

def test_picture_type_is_its_string():
    assert PictureType.I == "I" and PictureType.P == "P" and "P" == PictureType.P
    assert PictureType.I != "P" and PictureType.I != PictureType.P
    assert repr(PictureType.I) == "<PictureType.I: 'I'>"
    assert str(PictureType.P) == "P" and f"{PictureType.I}" == "I"
    assert json.dumps({"t": PictureType.P}) == '{"t": "P"}'
    assert {PictureType.I: 1}["I"] == 1  # hashes as the string
    assert [m.value for m in PictureType] == ["I", "P", "B", "S", "SI", "SP", "BI"]
    # FFmpeg's AVPictureType numbers (PyAV's frame.pict_type)
    assert [PictureType.from_ffmpeg(n) for n in range(9)] == [
        None, "I", "P", "B", "S", "SI", "SP", "BI", None]
    assert cv.PictureType is PictureType and "PictureType" in cv.__all__


def test_frames_carry_picture_types(clips):
    frames = read_all(clips["pan"], rgb=False, residual=None)
    assert all(type(f.pict_type) is PictureType for f in frames)
    assert [f.pict_type for f in frames] == ["I", "P", "P", "P", "I", "P", "P"]
    assert [f.is_iframe for f in frames] == [True, False, False, False, True, False, False]
    assert repr(frames[1]).startswith("<CompressedFrame #1 P gop=0:1 96x64")
    assert CompressedFrame(0, 0, 0, "I", 2, 2).pict_type is PictureType.I
    with pytest.raises(ValueError):
        CompressedFrame(0, 0, 0, "X", 2, 2)


# -- option names ------------------------------------------------------------------------------

def test_option_parsers_accept_names_and_the_old_spellings():
    assert RGBMode.parse(True) is RGBMode.EAGER and RGBMode.parse(False) is RGBMode.OFF
    assert RGBMode.parse("lazy") is RGBMode.LAZY and RGBMode.parse(RGBMode.OFF) is RGBMode.OFF
    assert RGBMode.parse(np.bool_(True)) is RGBMode.EAGER and RGBMode.parse(0) is RGBMode.OFF
    assert ColorConversion.parse("cv2") is ColorConversion.CV2
    assert ColorConversion.parse(ColorConversion.SWSCALE) == "swscale"
    assert ResidualMode.parse("summary") is ResidualMode.SUMMARY
    assert ResidualMode.parse(None) is None


@pytest.mark.parametrize("kw,name,allowed", [
    ({"color": "opencv"}, "color", ["'swscale'", "'cv2'"]),
    ({"color": None}, "color", ["'swscale'", "'cv2'"]),
    ({"rgb": "sometimes"}, "rgb", ["'eager'", "'lazy'", "'off'", "True", "False"]),
    ({"rgb": np.zeros(2)}, "rgb", ["'lazy'"]),
    ({"residual": "partial"}, "residual", ["'full'", "'summary'", "None"]),
])
def test_unknown_option_values_are_one_line_errors_naming_the_allowed(clips, kw, name, allowed):
    with pytest.raises(ValueError) as e:
        open_compressed(clips["pan"], **kw)
    msg = str(e.value)
    assert msg.startswith(f"{name} must be one of ") and "\n" not in msg
    assert all(a in msg for a in allowed), msg
    assert repr(next(iter(kw.values())))[:10] in msg  # names the bad value


def test_named_options_read_the_same_frames_as_strings(clips):
    path = clips["sub"]
    for named, plain in [
        (dict(rgb=RGBMode.EAGER, residual=ResidualMode.FULL, color=ColorConversion.SWSCALE),
         dict(rgb=True, residual="full", color="swscale")),
        (dict(rgb=RGBMode.LAZY, residual=None, color=ColorConversion.CV2),
         dict(rgb="lazy", residual=None, color="cv2")),
        (dict(rgb=RGBMode.OFF, residual=ResidualMode.SUMMARY),
         dict(rgb=False, residual="summary")),
    ]:
        a, b = read_all(path, **named), read_all(path, **plain)
        assert len(a) == len(b) == 5
        for x, y in zip(a, b):
            for attr in ("image", "motion_vectors", "residual"):
                got, want = getattr(x, attr), getattr(y, attr)
                assert (got is None) == (want is None)
                if want is not None:
                    np.testing.assert_array_equal(got, want)
            assert x.residual_sum == y.residual_sum
    with open_compressed(path, rgb="lazy", color="cv2", residual="summary") as v:
        assert v.color is ColorConversion.CV2 and v.color == "cv2"
        assert v.rgb_mode is RGBMode.LAZY and v.rgb is True and not v.lazy_rgb
        assert v.residual_mode is ResidualMode.SUMMARY and "residual=summary" in repr(v)


def test_the_colour_conversion_mode_is_honoured(clips):
    import cv2
    sws = read_all(clips["pan"], residual=None)
    ocv = read_all(clips["pan"], residual=None, color=ColorConversion.CV2)
    # OpenCV's conversion of the same YUV frames, done here
    import av
    with av.open(clips["pan"]) as c:
        yuv = [f.to_ndarray() for f in c.decode(video=0)]
    for a, b, y in zip(sws, ocv, yuv):
        np.testing.assert_array_equal(b.image, cv2.cvtColor(y, cv2.COLOR_YUV2RGB_I420))
        assert np.abs(a.image.astype(int) - b.image).mean() < 3  # the same picture...
    assert any((a.image != b.image).any() for a, b in zip(sws, ocv))  # ...by another converter


# -- the residual object -------------------------------------------------------------------------

def _reference_counts(abs_res, thr, block=16):
    """Pixels per block (clipped at the border) whose mean over channels of |Res| exceeds thr."""
    h, w = abs_res.shape[:2]
    hit = abs_res.astype(np.int64).sum(axis=2) > 3 * thr
    gh, gw = -(-h // block), -(-w // block)
    out = np.zeros((gh, gw), np.int32)
    for i in range(gh):
        for j in range(gw):
            out[i, j] = hit[i * block:(i + 1) * block, j * block:(j + 1) * block].sum()
    return out


@pytest.mark.parametrize("use_native", ["1", "0"])
@pytest.mark.parametrize("clip,block", [("pan", 16), ("sub", 16), ("sub", 8)])
def test_residual_object_gives_the_definitions_sums_maps_and_counts(clips, monkeypatch,
                                                                   use_native, clip, block):
    """Res = frame - MC(previous decoded frame, Mv) (reader.py), recomputed here from the decoded
    images with motion.motion_compensate, for both residual modes and both backends."""
    monkeypatch.setenv("COMPRESSED_VIDEO_NATIVE", use_native)
    want_backend = "native" if use_native == "1" and native.backend() == "native" else "numpy"
    full = read_all(clips[clip], mv_block_size=block)
    summ = read_all(clips[clip], mv_block_size=block, residual="summary")
    assert len(full) == len(summ) > 2
    for t, (f, s) in enumerate(zip(full, summ)):
        if f.pict_type == "I":
            assert f._res is None and f.residual is None and f.residual_sum == 0.0
            assert f.abs_residual() is None and not f.residual_block_counts(0).any()
            continue
        pred = motion_compensate(full[t - 1].image, f.motion_vectors, block)
        res = f.image.astype(np.int16) - pred.astype(np.int16)
        assert isinstance(f._res, Residual) and f._res.backend == s._res.backend == want_backend
        np.testing.assert_array_equal(f.residual, res)
        assert f.residual is f._res.map and s.residual is None
        assert f.residual_sum == s.residual_sum == float(np.abs(res).sum())
        assert f.residual_sum == f._res.total
        for thr in (0, 1.5, 4, 84.9, 90, 300):
            want = _reference_counts(np.abs(res), thr)
            np.testing.assert_array_equal(f.residual_block_counts(thr), want)
            np.testing.assert_array_equal(s.residual_block_counts(thr), want)
        np.testing.assert_array_equal(s.residual_block_counts(2, block_size=8),
                                      _reference_counts(np.abs(res), 2, 8))
        for g in (f, s):
            np.testing.assert_array_equal(g.abs_residual(), np.abs(res).astype(np.uint8))
            assert g._res._cur is None and g._res._prev is None  # frames released after |Res|


def test_frames_keep_residual_state_in_one_object(clips):
    slots = CompressedFrame.__slots__
    assert "_res" in slots and not any(s in slots for s in (
        "residual", "residual_sum", "_chan_sum", "_chan_sat", "_cur", "_pred", "_prev",
        "_absdiff", "_mv_block_size"))
    frames = read_all(clips["pan"], rgb=False, residual=None)
    p = frames[1]
    assert p._res is None and p.residual is None and p.residual_sum is None
    with pytest.raises(ReaderError, match="residual='full' or 'summary'"):
        p.residual_block_counts(4)
    with pytest.raises(ReaderError, match="residual='full' or 'summary'"):
        p.abs_residual()
    p.residual_sum = 12.5  # still settable (the engine's tests score frames this way)
    assert p.residual_sum == 12.5 and "sum|res|=12" in repr(p)
    with pytest.raises(ReaderError, match="residual="):
        p.residual_block_counts(4)  # a score alone has no map
    summ = read_all(clips["pan"], residual="summary")[1]
    assert repr(summ._res).startswith("<Residual sum|res|=") and "summary" in repr(summ._res)
    with pytest.raises(ValueError, match="residual"):
        ResidualComputer(64, 96, 16, None)


def test_third_party_stands_alone_and_keeps_files_small():
    """Nothing in the package names the applications; no Python file in third_party/ is over
    600 lines (one idea per file)."""
    named, long = [], []
    for folder, _, files in os.walk(os.path.join(ROOT, "third_party")):
        for name in files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, ROOT)
            if name.endswith((".py", ".cc", ".h")):
                text = open(path, encoding="utf-8").read()
                if rel.startswith(os.path.join("third_party", "compressed_video")) and (
                        "taplab_tf" in text or "experiments" in text):
                    named.append(rel)
                if name.endswith(".py") and text.count("\n") > 600:
                    long.append(rel)
    assert not named and not long, (named, long)
