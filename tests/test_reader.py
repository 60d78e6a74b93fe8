"""Tests of the one-pass compressed-stream reader (third_party.compressed_video)."""
import warnings

import cv2
import numpy as np
import pytest

from tests.helpers.frames import H, W, pan_frames, rotating_frames, subpixel_pan_frames
from third_party.compressed_video import (ReaderError, ReaderWarning, coviar, encode_video,
                                          expand_motion, motion_compensate, open_compressed)

GOP = 12


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    c = {}
    c["pan_frames"] = pan_frames(26, 4, -2)
    c["pan"] = encode_video(c["pan_frames"], str(d / "pan.avi"), gop=GOP, qscale=2)
    c["odd_frames"] = pan_frames(14, 3, 2)
    c["odd"] = encode_video(c["odd_frames"], str(d / "odd.avi"), gop=GOP, qscale=2)
    c["sub"] = encode_video(subpixel_pan_frames(8, 1.5, -0.5), str(d / "sub.avi"), gop=GOP,
                            qscale=3)
    c["mv4"] = encode_video(rotating_frames(4), str(d / "mv4.avi"), gop=GOP, qscale=3, mv4=True)
    c["small_frames"] = pan_frames(9, 2, 2, h=100, w=150)
    c["small"] = encode_video(c["small_frames"], str(d / "small.avi"), gop=4, qscale=2)
    c["dir"] = d
    return c


def read_all(path, **kw):
    with open_compressed(path, **kw) as v:
        return list(v)


def test_pan_motion_vectors_and_residual(clips):
    frames = read_all(clips["pan"])
    assert len(frames) == 26
    for f in frames:
        if f.pict_type == "I":
            assert f.motion_vectors is None and f.residual is None and f.residual_sum == 0.0
            continue
        mv = f.motion_vectors
        assert mv.shape == (H // 16, W // 16, 2) and mv.dtype == np.float32
        inner = mv[1:-1, 1:-1].reshape(-1, 2)
        match = np.all(inner == (4, -2), axis=1).mean()   # content moves +4 in x, -2 in y
        assert match >= 0.9, (f, np.unique(inner, axis=0))
        res = f.residual
        assert res.shape == (H, W, 3) and res.dtype == np.int16
        assert np.abs(res[16:-16, 16:-16]).mean() < 1.0
        # decoded frames stay close to what was encoded
        assert np.abs(f.image.astype(int) - clips["pan_frames"][f.index]).mean() < 4


def test_block_size_8_and_dense(clips):
    f16 = read_all(clips["pan"])[3]
    f8 = read_all(clips["pan"], mv_block_size=8)[3]
    assert f8.motion_vectors.shape == (H // 8, W // 8, 2)
    # without 4MV every 8x8 block carries its macroblock's vector
    np.testing.assert_array_equal(f8.motion_vectors[::2, ::2], f16.motion_vectors)
    dense = f16.dense_motion()
    assert dense.shape == (H, W, 2)
    np.testing.assert_array_equal(dense[37, 70], f16.motion_vectors[37 // 16, 70 // 16])
    np.testing.assert_array_equal(expand_motion(f8.motion_vectors, H, W), dense)


def test_picture_types_follow_gop(clips):
    frames = read_all(clips["pan"], rgb=False, residual=None)
    assert [f.index for f in frames] == list(range(26))
    for f in frames:
        assert f.pict_type == ("I" if f.index % GOP == 0 else "P")
        assert f.gop_index == f.index // GOP and f.gop_position == f.index % GOP
        assert f.image is None and f.residual is None
    with open_compressed(clips["pan"]) as v:
        assert v.num_frames == 26 and len(v) == 26
        assert v.gop_starts == [0, 12, 24] and v.num_gops == 3
        assert (v.height, v.width, v.codec) == (H, W, "mpeg4")
        assert abs(v.fps - 17) < 1e-6
        assert "mpeg4" in repr(v) and "256x128" in repr(v)


@pytest.mark.parametrize("clip,block", [("pan", 16), ("sub", 16), ("mv4", 8), ("mv4", 16),
                                        ("small", 16)])
def test_residual_reconstructs_exactly(clips, clip, block):
    frames = read_all(clips[clip], mv_block_size=block)
    prev = None
    for f in frames:
        if f.pict_type == "P":
            pred = motion_compensate(prev, f.motion_vectors)
            np.testing.assert_array_equal(pred.astype(np.int16) + f.residual, f.image)
        prev = f.image


def test_subpixel_and_4mv_vectors(clips):
    frames = read_all(clips["sub"])
    mv = frames[2].motion_vectors[1:-1, 1:-1].reshape(-1, 2)
    assert np.abs(np.median(mv, axis=0) - (1.5, -0.5)).max() <= 0.5
    assert (mv != np.round(mv)).any()                      # half-pel vectors are kept
    # 4MV: block size 8 keeps each 8x8 vector, block size 16 is their mean
    f8 = read_all(clips["mv4"], mv_block_size=8)[1]
    f16 = read_all(clips["mv4"], mv_block_size=16)[1]
    m8 = f8.motion_vectors.reshape(H // 16, 2, W // 16, 2, 2)
    differ = (m8 != m8[:, :1, :, :1]).any(axis=(1, 3, 4))
    assert differ.sum() >= 5                                  # some macroblocks use 4MV
    np.testing.assert_allclose(m8.mean(axis=(1, 3)), f16.motion_vectors, atol=1e-5)
    # a positive OpenCV angle turns the content counter-clockwise on screen: the left part moves
    # down (dy > 0), the right part up (dy < 0); checks the sign convention dst - src
    dy = f16.motion_vectors[2:-2, :, 1]
    assert dy[:, :4].mean() > 0.5 and dy[:, -4:].mean() < -0.5
    # residual at sub-pixel motion is still small (bilinear MC of half-pel vectors)
    assert np.abs(frames[2].residual[16:-16, 16:-16]).mean() < 6


def test_half_pel_gather_matches_bilinear_remap():
    """The fast block-gather compensation is bit-exact with OpenCV's bilinear remap."""
    from third_party.compressed_video.motion import MotionCompensator
    rng = np.random.default_rng(0)
    for h, w, bs in [(128, 256, 16), (100, 150, 16), (100, 150, 8)]:
        prev = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mc = MotionCompensator(h, w, bs)
        gh, gw = mc.grid
        for mv in (rng.integers(-40, 41, (gh, gw, 2)) / 2, rng.integers(-9, 10, (gh, gw, 2)),
                   np.where(rng.random((gh, gw, 1)) < 0.7, (2.5, -0.5), 0),
                   # rare half-pel cases take the per-block path, common ones whole planes
                   np.select([rng.random((gh, gw, 1)) < t for t in (0.03, 0.06, 0.09)],
                             [(0.5, 3), (-2, 1.5), (1.5, 0.5)], (2, -1))):
            mv = mv.astype(np.float32)
            np.testing.assert_array_equal(mc.half_pel(prev, mv), mc.remap(prev, mv))
        # quarter-pel vectors (H.264) take the remap path; a far vector clamps at the border
        mv = np.full((gh, gw, 2), 0.25, np.float32)
        mv[0, 0] = (500, -300)
        out = motion_compensate(prev, mv)
        assert out.shape == prev.shape
        np.testing.assert_array_equal(out[0, 0], prev[min(300, h - 1), 0])


def test_summaries_agree_with_full_residual(clips):
    full = read_all(clips["sub"])
    summ = read_all(clips["sub"], residual="summary", rgb=False)
    for f, s in zip(full, summ):
        assert s.residual is None and s.image is None
        if f.pict_type == "I":
            assert f.residual_sum == 0 and not f.residual_block_counts(3).any()
            continue
        a = np.abs(f.residual.astype(np.int64))
        assert f.residual_sum == a.sum() == s.residual_sum
        mean_c = a.mean(axis=2)
        for thr in (0, 1.5, 3, 10, 84.9, 90):
            want = np.zeros((H // 16, W // 16), np.int32)
            m = mean_c > thr
            want[:] = m.reshape(H // 16, 16, W // 16, 16).sum(axis=(1, 3))
            got = f.residual_block_counts(thr)
            assert got.dtype == np.int32
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(s.residual_block_counts(thr), want)


def test_block_counts_are_kept_once_counted(clips):
    """A frame's block counts are computed once per (thr, block size) and kept read-only, so
    that the engine's reader thread can count ahead of the loop that reads them."""
    for mode in ("full", "summary"):
        f = [g for g in read_all(clips["sub"], residual=mode) if g.pict_type == "P"][0]
        first = f.residual_block_counts(3)
        assert f.residual_block_counts(3) is first and not first.flags.writeable
        other = f.residual_block_counts(10)
        assert other is not first and not np.array_equal(other, first)
        assert f.residual_block_counts(3, 8) is not first
        assert f.residual_block_counts(3, 8).shape == (H // 8, W // 8)


def test_sizes_not_multiple_of_16(clips):
    frames = read_all(clips["small"])
    assert len(frames) == 9
    f = frames[2]
    assert f.image.shape == (100, 150, 3) and f.residual.shape == (100, 150, 3)
    assert f.motion_vectors.shape == (7, 10, 2)              # ceil(100/16), ceil(150/16)
    assert f.residual_block_counts(2).shape == (7, 10)
    counts = f.residual_block_counts(-1)                     # every pixel counts
    assert counts[-1, -1] == (100 - 96) * (150 - 144) and counts[0, 0] == 256
    assert f.dense_motion().shape == (100, 150, 2)
    assert [g.pict_type for g in frames] == ["I", "P", "P", "P"] * 2 + ["I"]
    f8 = read_all(clips["small"], mv_block_size=8)[2]
    assert f8.motion_vectors.shape == (13, 19, 2)


def test_coviar_agrees_with_streaming_reader(clips):
    path = clips["pan"]
    assert coviar.get_num_frames(path) == 26 and coviar.get_num_gops(path) == 3
    frames = read_all(path, mv_block_size=8, accumulate=True)
    for f in frames:
        g, k = f.gop_index, f.gop_position
        np.testing.assert_array_equal(coviar.load(path, g, k, 0, False), f.image[:, :, ::-1])
        mv = coviar.load(path, g, k, 1, False)
        res = coviar.load(path, g, k, 2, False)
        assert mv.dtype == np.int32 and mv.shape == (H, W, 2)
        assert res.dtype == np.int32 and res.shape == (H, W, 3)
        if f.pict_type == "I":
            assert not mv.any() and not res.any()
            continue
        np.testing.assert_array_equal(mv, np.trunc(f.dense_motion()).astype(np.int32))
        np.testing.assert_array_equal(res, f.residual[:, :, ::-1])
        acc = coviar.load(path, g, k, 1, True)
        np.testing.assert_array_equal(acc, np.trunc(f.accumulated_motion).astype(np.int32))
        # accumulated motion of a pan is gop_position * per-frame motion in the interior
        assert (acc[48:80, 96:160] == (4 * k, -2 * k)).all(axis=-1).mean() > 0.9
    with pytest.raises(ReaderError, match="GOP 7 out of range"):
        coviar.load(path, 7, 0, 0, False)


def test_iter_from_gop_and_repr(clips):
    with open_compressed(clips["pan"], residual="summary") as v:
        frames = list(v.iter_frames(start_gop=1))
        again = [f.index for f in v]                          # a second pass starts again
    assert [f.index for f in frames] == list(range(12, 26))
    assert frames[0].pict_type == "I" and frames[0].gop_index == 1
    assert again == list(range(26))
    r = repr(frames[3])
    assert "#15" in r and " P " in r and "mv=8x16" in r and "sum|res|" in r


# -- bad input -----------------------------------------------------------------------------

def test_missing_empty_directory_nonvideo(tmp_path):
    with pytest.raises(ReaderError, match="nope.avi: no such file"):
        open_compressed(str(tmp_path / "nope.avi"))
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(ReaderError, match="empty.avi: empty file"):
        open_compressed(str(tmp_path / "empty.avi"))
    with pytest.raises(ReaderError, match="is a directory"):
        open_compressed(str(tmp_path))
    (tmp_path / "notes.avi").write_bytes(b"these are not the frames you are looking for\n" * 50)
    with pytest.raises(ReaderError, match="notes.avi: not a readable video") as e:
        open_compressed(str(tmp_path / "notes.avi"))
    assert "\n" not in str(e.value)
    (tmp_path / "noise.bin").write_bytes(np.random.default_rng(0).bytes(50000))
    with pytest.raises(ReaderError, match="noise.bin"):
        open_compressed(str(tmp_path / "noise.bin"))


def test_truncated_stream_yields_frames_before_damage(clips, tmp_path):
    data = open(clips["pan"], "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:int(len(data) * 0.7)])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        frames = read_all(str(cut))
    msgs = [str(x.message) for x in w if issubclass(x.category, ReaderWarning)]
    assert msgs and "cut.avi" in msgs[0] and ("truncated" in msgs[0] or "damaged" in msgs[0])
    assert 0 < len(frames) < 26
    good = read_all(clips["pan"])
    for f, g in zip(frames, good):                             # frames before the damage are right
        np.testing.assert_array_equal(f.image, g.image)
    # cut inside the header: a clear error
    head = tmp_path / "head.avi"
    head.write_bytes(data[:300])
    with pytest.raises(ReaderError, match="head.avi"):
        read_all(str(head))


def test_truncated_matroska_warns(clips, tmp_path):
    """Matroska drops a partial last block silently: the announced duration gives it away."""
    p = encode_video(clips["pan_frames"], str(tmp_path / "full.mkv"), gop=GOP, qscale=2)
    data = open(p, "rb").read()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[:int(len(data) * 0.8)])
    with pytest.warns(ReaderWarning, match=r"cut.mkv: stream ended after \d+ of 26 frames"):
        frames = read_all(str(cut))
    good = read_all(p)
    assert 0 < len(frames) < 26
    for f in frames:
        np.testing.assert_array_equal(f.image, good[f.index].image)


def _encode_with(path, frames, codec, **opts):
    import av
    with av.open(path, "w") as out:
        s = out.add_stream(codec, rate=17)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.codec_context.options = {k: str(v) for k, v in opts.items()}
        for fr in frames:
            for p in s.encode(__import__("av").VideoFrame.from_ndarray(fr, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def test_bframes_error_names_the_reencode_command(clips, tmp_path):
    import av
    p = str(tmp_path / "bframes.avi")
    with av.open(p, "w") as out:
        s = out.add_stream("mpeg4", rate=17)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.max_b_frames = 2
        for fr in clips["pan_frames"][:8]:
            for pk in s.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                out.mux(pk)
        for pk in s.encode():
            out.mux(pk)
    with pytest.raises(ReaderError, match="B-frames.*ffmpeg -i .* -bf 0"):
        read_all(p)


def test_h264_reads_with_warning(clips, tmp_path):
    p = _encode_with(str(tmp_path / "x.mp4"), clips["pan_frames"][:8], "libx264", bf=0,
                     g=GOP, preset="ultrafast")
    with pytest.warns(ReaderWarning, match="H.264.*residual"):
        v = open_compressed(p)
    with v:
        frames = list(v)
    assert len(frames) == 8 and frames[0].pict_type == "I"
    f = frames[3]
    assert f.pict_type == "P" and f.motion_vectors.shape == (H // 16, W // 16, 2)
    inner = f.motion_vectors[1:-1, 1:-1].reshape(-1, 2)
    assert np.all(inner == (4, -2), axis=1).mean() > 0.8
    pred = motion_compensate(frames[2].image, f.motion_vectors)
    np.testing.assert_array_equal(pred.astype(np.int16) + f.residual, f.image)


def test_h264_with_bframes_errors(clips, tmp_path):
    p = _encode_with(str(tmp_path / "b.mp4"), clips["pan_frames"][:10], "libx264", bf=2,
                     preset="ultrafast")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReaderWarning)
        with pytest.raises(ReaderError, match="B-frames.*ffmpeg -i .* -bf 0"):
            read_all(p)


def test_codec_without_motion_vectors_errors(clips, tmp_path):
    import av
    p = str(tmp_path / "mj.avi")
    with av.open(p, "w") as out:
        s = out.add_stream("mjpeg", rate=17)
        s.width, s.height, s.pix_fmt = W, H, "yuvj420p"
        for fr in clips["pan_frames"][:3]:
            for pk in s.encode(av.VideoFrame.from_ndarray(fr, format="rgb24").reformat(
                    format="yuvj420p")):
                out.mux(pk)
        for pk in s.encode():
            out.mux(pk)
    with pytest.raises(ReaderError, match=r"mj.avi: codec 'mjpeg'.*re-encode: ffmpeg -i "):
        open_compressed(p)


def test_bad_arguments(clips):
    with pytest.raises(ValueError, match="residual"):
        open_compressed(clips["pan"], residual="yes")
    with pytest.raises(ValueError, match="mv_block_size"):
        open_compressed(clips["pan"], mv_block_size=4)
    f = read_all(clips["pan"], residual=None)[1]
    assert f.residual_sum is None
    with pytest.raises(ReaderError, match="residual="):
        f.residual_block_counts(1)


def test_inspect_video_writes_maps_and_stats(clips, tmp_path):
    import json
    from third_party.compressed_video.inspection import inspect_video
    out = inspect_video(clips["small"], str(tmp_path / "insp"), max_frames=6, save_frames=True,
                        log=lambda *a: None)
    d = tmp_path / "insp"
    assert (d / "types.txt").read_text().strip() == "IPPPIP"
    stats = json.loads((d / "stats.json").read_text())
    assert stats["summary"]["frames"] == 6 and stats["summary"]["gop_starts"] == [0, 4]
    p = stats["frames"][2]
    assert p["pict_type"] == "P" and p["num_mvs"] + p["num_intra"] == 70 and p["num_mvs"] > 60
    assert abs(p["mean_abs_mv"] - 2.83) < 0.3               # (2, 2) px per frame
    assert p["residual_sum"] > 0 and out["frames"][2] == p
    mv_png = cv2.imread(str(d / "mv" / "000002.png"))
    assert mv_png.shape == (100, 150, 3)
    assert (d / "residual" / "000002.png").exists() and (d / "frames" / "000000_I.png").exists()
    assert not (d / "mv" / "000000.png").exists()            # no vectors on I-frames
    assert not [p for p in d.rglob("*") if ".partial" in p.name]  # no temporary left behind
    with pytest.raises(ValueError, match="every"):
        inspect_video(clips["small"], str(tmp_path / "insp2"), every=0, log=lambda *a: None)


def test_vectors_match_synthetic_ground_truth_flow(tmp_path):
    """Same sign convention as taplab_tf.data.synthetic's flow (position_t - position_{t-1})."""
    synthetic = pytest.importorskip("taplab_tf.data.synthetic")
    flow = []
    p = synthetic.encode_clip(str(tmp_path / "syn.avi"), 128, 256, 5, seed=3, gop=GOP, qscale=3,
                              on_frame=lambda fr: flow.append(fr.flow))
    for f in read_all(p, residual=None):
        if f.pict_type != "P":
            continue
        gt = flow[f.index].reshape(8, 16, 16, 16, 2).mean(axis=(1, 3))
        moving = (~f.intra_blocks) & (np.linalg.norm(gt, axis=-1) > 1.0)
        if moving.sum() < 10:
            continue
        epe = np.linalg.norm(f.motion_vectors - gt, axis=-1)[moving]
        flipped = np.linalg.norm(f.motion_vectors + gt, axis=-1)[moving]
        assert np.median(epe) < 1.0 and np.median(epe) < 0.5 * np.median(flipped), f


def test_prefetch_thread_gives_the_same_stream(clips, tmp_path):
    ref = read_all(clips["sub"], residual="summary")
    got = read_all(clips["sub"], residual="summary", prefetch=3)
    assert [f.index for f in got] == [f.index for f in ref]
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a.image, b.image)
        assert a.residual_sum == b.residual_sum
        np.testing.assert_array_equal(a.residual_block_counts(2), b.residual_block_counts(2))
    with open_compressed(clips["pan"], prefetch=2) as v:      # leaving early stops the thread
        for f in v:
            if f.index == 3:
                break
    data = open(clips["pan"], "rb").read()                      # warnings reach the consumer
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:int(len(data) * 0.7)])
    with pytest.warns(ReaderWarning, match="cut.avi: truncated"):
        assert 0 < len(read_all(str(cut), prefetch=2)) < 26
    from third_party.compressed_video.reader import CompressedVideo

    class Failing(CompressedVideo):                             # errors too, in order
        def _emit(self, f, st):
            if st["index"] == 4:
                raise ReaderError("boom at 5")
            return (yield from super()._emit(f, st))

    seen = []
    with pytest.raises(ReaderError, match="boom at 5"):
        for f in Failing(clips["pan"], prefetch=2):
            seen.append(f.index)
    assert seen == [0, 1, 2, 3, 4]
    import threading
    assert not [t for t in threading.enumerate() if t.name.startswith("compressed-video")]


def test_lazy_rgb_converts_only_the_frames_that_are_read(clips):
    ref = read_all(clips["pan"], residual=None)
    with open_compressed(clips["pan"], rgb="lazy", residual=None, prefetch=2) as v:
        lazy = list(v)  # decoded in the prefetch thread, converted here on first access
    assert all(f._image is None for f in lazy) and "rgb" in repr(lazy[0])
    for a, b in zip(ref, lazy):
        np.testing.assert_array_equal(a.motion_vectors if a.pict_type == "P" else 0,
                                      b.motion_vectors if b.pict_type == "P" else 0)
    for i in (0, 5, 25):
        np.testing.assert_array_equal(lazy[i].image, ref[i].image)
        assert lazy[i]._decoded is None  # converted once, the decoded frame released
    assert sum(f._image is not None for f in lazy) == 3
    # With a residual the reader needs every frame's RGB itself: 'lazy' is rgb=True then.
    with open_compressed(clips["pan"], rgb="lazy", residual="summary") as v:
        f = next(iter(v))
        assert f._image is not None
    with pytest.raises(ValueError, match="rgb must be"):
        open_compressed(clips["pan"], rgb="sometimes")
