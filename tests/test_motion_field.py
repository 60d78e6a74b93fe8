"""Motion-field refinement before FFW (taplab_tf.pipeline.motion_field) on block grids the tests
build, where the right answer is known."""
import numpy as np
import pytest

from taplab_tf.pipeline import motion_field as mf


def uniform(gh=8, gw=10, v=(3.0, -1.0)):
    mv = np.zeros((gh, gw, 2), np.float32)
    mv[...] = v
    return mv, np.zeros((gh, gw), bool)


def test_spec_parsing_is_canonical_and_strict():
    assert mf.parse_refinement("none") == ()
    assert mf.parse_refinement("") == ()
    assert mf.parse_refinement("median+fill") == ("fill", "median")
    assert mf.parse_refinement("confidence,model") == ("model", "confidence")
    assert mf.Refinement.from_spec("median+fill").name == "fill+median"
    with pytest.raises(ValueError, match="unknown method.*'blur'"):
        mf.parse_refinement("fill+blur")


def test_no_refinement_is_the_papers_ffw_bit_for_bit():
    rng = np.random.default_rng(0)
    mv = rng.normal(size=(6, 7, 2)).astype(np.float32)
    intra = rng.random((6, 7)) < 0.2
    out, out_intra = mf.refine(mv, intra, mf.Refinement())
    assert out is mv and out_intra is intra


def test_masked_median_matches_numpy():
    rng = np.random.default_rng(1)
    vs = rng.normal(size=(8, 5, 6, 2)).astype(np.float32)
    ms = rng.random((8, 5, 6)) < 0.6
    med, count = mf.masked_median(vs, ms)
    for r in range(5):
        for c in range(6):
            sel = ms[:, r, c]
            assert count[r, c] == sel.sum()
            want = np.median(vs[sel, r, c], axis=0) if sel.any() else np.zeros(2)
            np.testing.assert_allclose(med[r, c], want, rtol=1e-6, atol=1e-6)


def test_fill_closes_holes_and_zero_vectors_inside_moving_regions_only():
    mv, intra = uniform()
    intra[3, 4] = True
    mv[3, 4] = 0
    mv[5, 5] = 0                       # a zero vector where everything around moves
    mv[:, 8:] = 0                      # a static region: its zero vectors stay
    out, out_intra = mf.refine(mv, intra, mf.Refinement.from_spec("fill"))
    np.testing.assert_array_equal(out[3, 4], [3, -1])
    np.testing.assert_array_equal(out[5, 5], [3, -1])
    assert not out_intra[3, 4]
    np.testing.assert_array_equal(out[:, 9], 0)
    assert not np.shares_memory(out, mv) and mv[5, 5, 0] == 0  # the input is not modified


def test_fill_kernel_is_the_numpy_rule_bit_for_bit():
    """ops.mv_fill (the compiled kernel the engine runs) against the numpy
    reference, on random fields with holes, zero vectors, half-pixel vectors at the moving
    threshold and grid edges, for several thresholds and pass counts."""
    from taplab_tf import ops
    rng = np.random.default_rng(0)
    for trial in range(200):
        gh, gw = rng.integers(1, 24, size=2)
        mv = rng.normal(0, 3, (gh, gw, 2)).astype(np.float32)
        mv[rng.random((gh, gw)) < 0.3] = 0
        mv[rng.random((gh, gw)) < 0.1] = (0.5, 0.0)  # exactly at moving_px
        mv = np.round(mv * 4) / 4 if trial % 2 else mv  # quarter-pel, many ties
        intra = rng.random((gh, gw)) < rng.uniform(0, 0.5)
        kwargs = dict(moving_px=float(rng.choice([0.5, 0.3, 1.0])), passes=int(rng.integers(1, 4)),
                      majority=float(rng.choice([0.5, 0.6, 0.25, 0.7])))
        want = mf.fill_reference(mv, intra, **kwargs)
        got = ops.mv_fill(mv, intra, backend="cpp", **kwargs)
        np.testing.assert_array_equal(got[0], want[0], err_msg=f"trial {trial} {kwargs}")
        np.testing.assert_array_equal(got[1], want[1], err_msg=f"trial {trial} {kwargs}")
        assert got[0].dtype == np.float32 and got[1].dtype == bool


def test_fill_kernel_rejects_mismatched_grids():
    from taplab_tf import ops
    with pytest.raises(ValueError, match="must be"):
        ops.mv_fill(np.zeros((4, 5, 2), np.float32), np.zeros((4, 4), bool))


def test_median_rejects_an_outlier_and_keeps_a_smooth_field():
    gh, gw = 8, 10
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    mv = np.stack([0.3 * xx, 0.2 * yy], -1).astype(np.float32)  # a smooth zoom
    intra = np.zeros((gh, gw), bool)
    out, _ = mf.refine(mv, intra, mf.Refinement.from_spec("median"))
    np.testing.assert_array_equal(out, mv)
    bad = mv.copy()
    bad[4, 5] = (20.0, -15.0)
    out, _ = mf.refine(bad, intra, mf.Refinement.from_spec("median"))
    assert np.hypot(*(out[4, 5] - mv[4, 5])) < 0.5


def test_model_recovers_the_camera_field_and_keeps_an_object_moving_on_its_own():
    gh, gw = 16, 24
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    x = (xx + 0.5) / gw * 2 - 1
    y = (yy + 0.5) / gh * 2 - 1
    truth = np.stack([2 + 3 * x + x * x, -1 + 2 * y + x * y], -1).astype(np.float32)
    mv = truth.copy()
    intra = np.zeros((gh, gw), bool)
    mv[2:5, 3:9] = 0                   # flat road: the encoder chose zero vectors
    intra[10, 10] = True
    mv[10, 10] = 0
    mv[12:15, 16:21] = (-6.0, 0.5)     # a car moving against the camera's flow
    truth_car = mv[12:15, 16:21].copy()
    out, out_intra = mf.refine(mv, intra, mf.Refinement.from_spec("model"))
    np.testing.assert_allclose(out[2:5, 3:9], truth[2:5, 3:9], atol=1e-3)
    np.testing.assert_allclose(out[10, 10], truth[10, 10], atol=1e-3)
    np.testing.assert_array_equal(out[12:15, 16:21], truth_car)
    assert not out_intra.any()


def test_confidence_replaces_the_highest_residual_block_from_its_neighbours():
    mv, intra = uniform()
    mv[4, 4] = (-7.0, 9.0)
    residual = np.ones(intra.shape, np.float32)
    residual[4, 4] = 100.0
    cfg = mf.Refinement.from_spec("confidence", confidence_quantile=0.02)
    out, _ = mf.refine(mv, intra, cfg, block_residual=residual)
    np.testing.assert_array_equal(out[4, 4], [3, -1])
    with pytest.raises(ValueError, match="block_residual"):
        mf.refine(mv, intra, cfg, block_residual=np.ones((2, 2)))


def test_refine_rejects_mismatched_grids():
    with pytest.raises(ValueError, match="disagree"):
        mf.refine(np.zeros((4, 5, 2)), np.zeros((4, 4), bool), mf.Refinement.from_spec("fill"))


def test_block_kinds_and_error_by_kind():
    gh, gw = 2, 3
    mv = np.zeros((gh, gw, 2), np.float32)
    mv[0, 0] = (1, 0)
    intra = np.zeros((gh, gw), bool)
    intra[1, 2] = True
    residual = np.array([[5, 0, 5], [5, 5, 5]], np.float32)
    texture = np.array([[10, 10, 1], [1, 10, 10]], np.float32)
    kinds = mf.block_kinds(intra, mv, residual, texture, flat_threshold=5)
    # [0,0] textured, [0,1] skipped (zero vector, no residual), [0,2] flat, [1,2] intra
    assert kinds.tolist() == [[0, 3, 1], [1, 0, 2]]
    gt = np.zeros_like(mv)
    gt[0, 0] = (4, 4)                  # error 5 on one textured block
    e = mf.error_by_kind(mv, gt, kinds)
    assert e["textured"]["blocks"] == 2 and e["textured"]["mean_px"] == 2.5
    assert e["all"]["blocks"] == 6 and e["skipped"]["within_2px"] == 1.0


def test_block_flow_averages_each_block_and_the_partial_edge():
    flow = np.zeros((20, 33, 2), np.float32)
    flow[:16, :16] = (2, 4)
    flow[16:, 32:] = (1, 1)
    b = mf.block_flow(flow)
    assert b.shape == (2, 3, 2)
    np.testing.assert_allclose(b[0, 0], [2, 4])
    np.testing.assert_allclose(b[1, 2], [1, 1])  # mean over the 4x1 pixels inside the frame


def test_config_takes_the_refinement_by_name_and_rejects_unknown_ones():
    from taplab_tf import config as C
    assert C.TapLabConfig().mv_refinement == "none"
    assert C.TapLabConfig(mv_refinement="median+model").mv_refinement == "model+median"
    with pytest.raises(C.ConfigError, match="mv_refinement: unknown method"):
        C.TapLabConfig(mv_refinement="smooth")


def test_engine_warps_with_the_refined_field(tmp_path):
    """'none' is the paper's FFW exactly; with a refinement every warped frame goes through it
    (timed on its own) and keyframes do not."""
    from taplab_tf import config as C
    from taplab_tf.pipeline.engine import TapLabEngine
    from tests.helpers.video import encoded_pan, tiny_model
    video = encoded_pan(tmp_path, 13, gop=12)
    model = tiny_model()
    base = C.TapLabConfig(modules="ffw", gop=12)
    plain = [r.labels for r in TapLabEngine(model, base).segment_video(video)]
    again = [r.labels for r in TapLabEngine(model, base.replace(mv_refinement="none"))
             .segment_video(video)]
    assert all(np.array_equal(a, b) for a, b in zip(plain, again))
    results = list(TapLabEngine(model, base.replace(mv_refinement="fill+model+median"))
                   .segment_video(video))
    assert len(results) == len(plain)
    assert np.array_equal(results[0].labels, plain[0])  # the I-frame is phi's either way
    warped = [r for r in results if r.action == "ffw"]
    assert len(warped) == 11 and all(r.timings["mv_refinement"] > 0 for r in warped)
    assert all("mv_refinement" not in r.timings for r in results if r.action != "ffw")


def differs_inside_a_macroblock(fine: np.ndarray) -> bool:
    """Whether a field of 8x8-block vectors [2gh, 2gw, 2] has a macroblock whose four vectors
    are not all equal (a 4MV macroblock)."""
    groups = fine.reshape(fine.shape[0] // 2, 2, fine.shape[1] // 2, 2, 2)
    return bool((groups.max(axis=(1, 3)) != groups.min(axis=(1, 3))).any())


def test_mv_block_size_is_16_or_8_and_8_asks_the_encoder_for_4mv():
    from taplab_tf import config as C
    assert C.TapLabConfig().mv_block_size == 16 and not C.TapLabConfig().encoder_mv4
    assert C.TapLabConfig(mv_block_size=8).encoder_mv4
    assert not C.TapLabConfig(mv_block_size=8, propagation="flow_dis").encoder_mv4
    assert C.TapLabConfig(mv_block_size=8).vector_block_size == 8
    assert C.TapLabConfig(mv_block_size=8, propagation="flow_dis").vector_block_size == 16
    for bad in (4, 32, True, "8"):
        with pytest.raises(C.ConfigError, match="mv_block_size: must be 16"):
            C.TapLabConfig(mv_block_size=bad)


def test_engine_warps_the_8x8_vectors_of_a_4mv_stream(tmp_path):
    """mv_block_size=8: the reader keeps each 4MV macroblock's four vectors, the refinement and
    the warp work on the 8x8 grid: the warped logits are ops.mv_warp's on that grid exactly."""
    import tensorflow as tf

    from taplab_tf import config as C
    from taplab_tf import ops
    from taplab_tf.pipeline.engine import TapLabEngine
    from tests.helpers.frames import rotating_frames
    from tests.helpers.video import tiny_model
    from third_party.compressed_video import encode_video, open_compressed
    path = str(tmp_path / "mv4.avi")
    encode_video(rotating_frames(3), path, gop=12, qscale=3, mv4=True)
    with open_compressed(path, residual=None, mv_block_size=8) as v:
        frames = list(v)
    with open_compressed(path, residual=None) as v:
        mv16 = [f.motion_vectors for f in v]
    fine = frames[1].motion_vectors
    assert fine.shape[0] == 2 * mv16[1].shape[0]
    assert differs_inside_a_macroblock(fine)  # the stream holds 4MV macroblocks
    model = tiny_model()
    for refinement in ("none", "fill"):
        cfg = C.TapLabConfig(modules="ffw", gop=12, mv_block_size=8, mv_refinement=refinement,
                             warp_interpolation="bilinear")
        engine = TapLabEngine(model, cfg)
        assert engine.reader_options()["mv_block_size"] == 8
        results = list(engine.segment_video(path, keep_logits=True))
        assert [r.action for r in results] == ["phi", "ffw", "ffw"]
        field, _ = mf.refine(fine, frames[1].intra_blocks, mf.Refinement.from_spec(refinement))
        expect = ops.mv_warp(tf.constant(results[0].logits), tf.constant(field[None]),
                             feature_stride=model.output_stride, block_size=8,
                             interpolation="bilinear", border="clamp")
        np.testing.assert_allclose(results[1].logits, expect.numpy(), rtol=1e-5, atol=1e-5)
    assert TapLabEngine(model, C.TapLabConfig()).reader_options()["mv_block_size"] == 16


def test_the_pipeline_encodes_4mv_streams_for_an_8x8_config(tmp_path, monkeypatch,
                                                            one_clip_tree):
    """Where the pipeline encodes for a config that reads 8x8 vectors (evaluation clips, the
    re-encode of other codecs), it allows 4MV; for the paper's config it does not."""
    from taplab_tf import config as C
    from taplab_tf.pipeline import evaluate as V
    from taplab_tf.pipeline.engine import TapLabEngine
    from tests.helpers.frames import rotating_frames
    from tests.helpers.video import tiny_model
    from third_party.compressed_video import open_compressed, transcode as tc
    from third_party.compressed_video.transcode import encode_h264

    def has_4mv(path):
        with open_compressed(path, residual=None, mv_block_size=8) as v:
            return any(differs_inside_a_macroblock(f.motion_vectors) for f in v
                       if f.pict_type == "P")

    h264 = str(tmp_path / "in.mp4")
    encode_h264(rotating_frames(6), h264, fps=25, gop=6, b_frames=2)
    with tc.TemporaryTranscode(h264, gop=6, mv4=True) as t:
        assert has_4mv(t.path)
    with tc.TemporaryTranscode(h264, gop=6) as t:
        assert not has_4mv(t.path)
    written = []
    import third_party.compressed_video as cv
    original = cv.encode_video

    def spy(frames, path, **kw):
        written.append(kw.get("mv4", False))
        return original(frames, path, **kw)
    monkeypatch.setattr(cv, "encode_video", spy)
    clips = V.list_clips("synthetic", one_clip_tree, "val")
    for block in (8, 16):
        cfg = C.TapLabConfig(modules="ffw", gop=4, mv_block_size=block)
        V.evaluate_clips(TapLabEngine(tiny_model(), cfg), clips, "synthetic", 4, progress=None)
    assert written == [True, False]
