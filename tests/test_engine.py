"""The TapLab engine (Algorithm 1): module decisions on constructed inputs, equivalences, tracing."""
import numpy as np
import pytest
import tensorflow as tf

from taplab_tf import config as C
from taplab_tf.pipeline import engine as E
from taplab_tf.pipeline import decisions as M
from tests.helpers.stream import H, STRIDE, W, clip, tiny_model


def reference_labels(model, image):
    logits = model(tf.cast(image, tf.float32)[None])
    up = tf.image.resize(logits, (logits.shape[1] * STRIDE, logits.shape[2] * STRIDE), "bilinear")
    return tf.argmax(up, -1)[0, :H, :W].numpy().astype(np.uint8)


def test_modules_none_is_phi_on_every_frame():
    model = tiny_model()
    engine = E.TapLabEngine(model, C.TapLabConfig(modules="none"))
    frames = clip(6)
    results = list(engine.segment(frames))
    assert [r.action for r in results] == ["phi"] * 6
    for r, f in zip(results, frames):
        np.testing.assert_array_equal(r.labels, reference_labels(model, f.image))


def test_ffw_with_zero_motion_keeps_the_features():
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw"))
    results = list(engine.segment(clip(5), keep_logits=True))
    assert [r.action for r in results] == ["phi", "ffw", "ffw", "ffw", "ffw"]
    for r in results[1:]:
        np.testing.assert_array_equal(r.logits, results[0].logits)
        np.testing.assert_array_equal(r.labels, results[0].labels)


def test_labels_are_read_only_views_that_outlive_the_loop():
    """FrameResult.labels is the output step's tensor seen without a copy: read-only, so that a
    caller cannot change the keyframe's labels that FFW's output step copies from, and intact
    after the engine has gone on to later frames."""
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw"))
    frames = clip(5)
    results = list(engine.segment(frames))
    for r in results:
        assert not r.labels.flags.writeable, r.action
        with pytest.raises(ValueError):
            r.labels[0, 0] = 1
        np.testing.assert_array_equal(r.labels, reference_labels(engine.model, frames[0].image))
    copy = np.array(results[0].labels)
    copy[0, 0] = 1  # a copy is the caller's to change


def test_reader_thread_counts_and_scores_rgc_regions_ahead_of_the_loop(monkeypatch):
    """With RGC, each P-frame's block counts at thr_rgc and its regions' scores (Eq. 3) are
    computed on the engine's reader thread (the loop then takes their argmax), and the regions
    chosen are those of the loop counting and scoring them itself (queue_size=0: no reader
    thread)."""
    import threading

    scored = []
    real_scores = M.RegionScorer.scores
    monkeypatch.setattr(M.RegionScorer, "scores", lambda self, counts: scored.append(
        threading.current_thread().name) or real_scores(self, counts))

    class Counted(type(clip(1)[0])):
        def residual_block_counts(self, thr):
            self.asked.append((threading.current_thread().name, thr))
            return super().residual_block_counts(thr)

    def frames():
        rng = np.random.default_rng(3)
        out = []
        for f in clip(6):
            g = Counted(**{k: getattr(f, k) for k in f.__dataclass_fields__})
            g.asked = []
            if g.pict_type == "P":
                g.counts = rng.integers(0, 50, (H // 16, W // 16)).astype(np.int32)
            out.append(g)
        return out

    cfg = C.TapLabConfig(modules="ffw,rgc", scale_to_frame=False, region_shape=(32, 32),
                         region_stride=16, thr_rgc=7.0)
    regions = []
    for queue_size in (4, 0):
        clip_frames = frames()
        results = list(E.TapLabEngine(tiny_model(), cfg, queue_size=queue_size)
                       .segment(clip_frames))
        regions.append([r.rgc_region for r in results])
        for f in clip_frames[1:]:
            assert f.asked[0] == ("taplab-reader" if queue_size else "MainThread", 7.0)
        assert scored == ["taplab-reader" if queue_size else "MainThread"] * 5
        scored.clear()
    assert regions[0] == regions[1] and len(set(regions[0][1:])) > 1


def test_ffw_follows_a_uniform_shift():
    mv = np.zeros((H // 16, W // 16, 2), np.float32)
    mv[..., 0] = 8.0  # everything moved 8 px right: F_t[p] = F_{t-1}[p - (8, 0)]
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw"))
    r0, r1 = list(engine.segment(clip(2, mv=mv), keep_logits=True))
    shift = 8 // STRIDE
    np.testing.assert_allclose(r1.logits[:, :, shift:], r0.logits[:, :, :-shift])


def test_rgc_picks_the_region_holding_the_residual():
    cfg = C.TapLabConfig(modules="ffw,rgc", region_shape=(32, 32), region_stride=16,
                         scale_to_frame=False)
    engine = E.TapLabEngine(tiny_model(), cfg)
    frames = clip(2)
    counts = np.zeros((H // 16, W // 16), np.int32)
    counts[2, 6] = 200  # a residual block at rows 32-48, cols 96-112
    frames[1].counts = counts
    results = list(engine.segment(frames, keep_logits=True))
    y, x, h, w = results[1].rgc_region
    assert (h, w) == (32, 32) and y <= 32 and y + h >= 48 and x <= 96 and x + w >= 112
    # alpha = 1: the region's logits are phi's on the crop, outside them the warped ones.
    crop = engine.model(tf.cast(frames[1].image[y:y + h, x:x + w], tf.float32)[None]).numpy()
    s = STRIDE
    got = results[1].logits
    np.testing.assert_allclose(got[:, y // s:(y + h) // s, x // s:(x + w) // s], crop, atol=1e-5)
    outside = np.ones(got.shape[1:3], bool)
    outside[y // s:(y + h) // s, x // s:(x + w) // s] = False
    np.testing.assert_array_equal(got[0][outside], results[0].logits[0][outside])


def test_rgc_alpha_blends():
    cfg = C.TapLabConfig(modules="ffw,rgc", region_shape=(32, 32), region_stride=16, alpha=0.25,
                         scale_to_frame=False)
    engine = E.TapLabEngine(tiny_model(), cfg)
    frames = clip(2)
    r0, r1 = list(engine.segment(frames, keep_logits=True))
    y, x, h, w = r1.rgc_region
    crop = engine.model(tf.cast(frames[1].image[y:y + h, x:x + w], tf.float32)[None]).numpy()
    s = STRIDE
    expected = 0.75 * r0.logits[:, y // s:(y + h) // s, x // s:(x + w) // s] + 0.25 * crop
    np.testing.assert_allclose(r1.logits[:, y // s:(y + h) // s, x // s:(x + w) // s], expected,
                               rtol=1e-5, atol=1e-5)


def test_rgfs_fires_above_the_threshold_only():
    cfg = C.TapLabConfig(modules="ffw,rgfs", thr_rgfs=1000.0, scale_to_frame=False)
    engine = E.TapLabEngine(tiny_model(), cfg)
    frames = clip(4)
    frames[1].residual_sum = 999.0
    frames[2].residual_sum = 1001.0
    frames[3].residual_sum = 10.0
    results = list(engine.segment(frames))
    assert [r.action for r in results] == ["phi", "ffw", "rgfs", "ffw"]
    assert results[2].keyframe and not results[1].keyframe


def test_rgfs_threshold_scales_with_frame_area():
    cfg = C.TapLabConfig(modules="ffw,rgfs")
    engine = E.TapLabEngine(tiny_model(), cfg)
    _, thr = engine.settings_for(H, W)
    assert thr == pytest.approx(3.6e7 * H * W / (1024 * 2048))


def test_rgfs_accumulate_variant_sums_since_the_keyframe():
    cfg = C.TapLabConfig(modules="ffw,rgfs", thr_rgfs=100.0, scale_to_frame=False)
    engine = E.TapLabEngine(tiny_model(), cfg.replace(rgfs_accumulate=True))
    frames = clip(5)
    for f in frames[1:]:
        f.residual_sum = 40.0
    assert [r.action for r in engine.segment(frames)] == ["phi", "ffw", "ffw", "rgfs", "ffw"]
    # Eq. 4 as written never fires.
    plain = E.TapLabEngine(tiny_model(), cfg)
    assert [r.action for r in plain.segment(frames)] == ["phi"] + ["ffw"] * 4


def test_traced_once_per_shape_over_a_30_frame_clip():
    cfg = C.TapLabConfig(modules="ffw,rgc,rgfs", region_shape=(32, 32), region_stride=16,
                         thr_rgfs=500.0, scale_to_frame=False)
    engine = E.TapLabEngine(tiny_model(), cfg)
    frames = clip(30, gop=12, mv=np.ones((H // 16, W // 16, 2), np.float32))
    for f in frames[5::7]:
        f.residual_sum = 1e6
    results = list(engine.segment(frames))
    assert len(results) == 30 and any(r.action == "rgfs" for r in results)
    # phi: one trace for the full frame, one for the RGC crop; the rest one each. FFW holds
    # the logits as an index map (alpha = 1): its steps (start, warp, take the region) are
    # single ops called eagerly and the logits are never warped or blended; the output steps
    # are single ops called eagerly too.
    if engine.propagator.indexed:
        assert engine.trace_counts == {"phi": 2, "warp": 0, "blend": 0}
    else:
        assert engine.trace_counts == {"phi": 2, "warp": 1, "blend": 1}
    # With another alpha the logits are warped and blended themselves.
    engine = E.TapLabEngine(tiny_model(), cfg.replace(alpha=0.5))
    assert len(list(engine.segment(frames))) == 30
    assert engine.trace_counts == {"phi": 2, "warp": 1, "blend": 1}


def test_frozen_phi_agrees_with_the_model_and_a_failed_freeze_says_so(monkeypatch, caplog):
    model = tiny_model()
    frozen = E.TapLabEngine(model, C.TapLabConfig(modules="none"))
    live = E.TapLabEngine(model, C.TapLabConfig(modules="none"), freeze=False)
    assert frozen.phi_graph == "frozen" and live.phi_graph == "variables"
    image = clip(1)[0].image
    expected = model(tf.cast(image, tf.float32)[None]).numpy()
    np.testing.assert_allclose(frozen._phi(image).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(live._phi(image).numpy(), expected, rtol=1e-6, atol=1e-6)
    # The engine serves the weights it was built with.
    model.layers[2].kernel.assign(tf.zeros_like(model.layers[2].kernel))
    np.testing.assert_allclose(frozen._phi(image).numpy(), expected, rtol=1e-5, atol=1e-5)

    from tensorflow.python.framework import convert_to_constants

    def broken(*args, **kwargs):
        raise RuntimeError("cannot fold this graph")
    monkeypatch.setattr(convert_to_constants, "convert_variables_to_constants_v2", broken)
    with caplog.at_level("WARNING", logger="taplab_tf"):
        fallback = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="none"))
    assert fallback.phi_graph == "variables"
    assert "could not be frozen (cannot fold this graph)" in caplog.text
    assert [r.action for r in fallback.segment(clip(2))] == ["phi", "phi"]


def test_reader_errors_reach_the_caller():
    def broken():
        yield clip(1)[0]
        raise RuntimeError("truncated stream")

    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw"))
    with pytest.raises(RuntimeError, match="truncated"):
        list(engine.segment(broken()))


def test_region_too_large_for_the_frame_is_a_clear_error():
    cfg = C.TapLabConfig(modules="ffw,rgc", region_shape=(128, 128), scale_to_frame=False)
    engine = E.TapLabEngine(tiny_model(), cfg)
    with pytest.raises(E.EngineError, match="region_shape"):
        list(engine.segment(clip(2)))


def test_region_scorer_exact_on_grid_and_proportional_off_grid():
    scorer = M.RegionScorer(64, 96, (32, 32), 16)
    counts = np.arange(4 * 6).reshape(4, 6)
    scores = scorer.scores(counts)
    for (y, x, h, w), s in zip(scorer.regions, scores):
        assert s == counts[y // 16:(y + h) // 16, x // 16:(x + w) // 16].sum()
    off = M.RegionScorer(40, 40, (32, 32), 16)  # last start 8: straddles blocks
    ones = np.ones((3, 3))
    assert np.allclose(off.scores(ones), 4.0)  # 32x32 pixels = 4 blocks' worth, wherever it sits
    with pytest.raises(ValueError, match="block_counts"):
        scorer.scores(np.zeros((2, 2)))


def test_region_scorer_accumulate_resets_the_chosen_region():
    scorer = M.RegionScorer(32, 64, (32, 32), 32)
    acc = np.zeros(len(scorer.regions))
    counts = np.array([[5, 5, 1, 1], [5, 5, 1, 1]])
    best, _ = scorer.select(counts, acc)
    assert best == 0 and acc[0] == 0 and acc[1] == 4
    best, _ = scorer.select(np.zeros((2, 4)), acc)
    assert best == 1


def test_itp_interpolates_between_the_neighbouring_keyframes():
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw", gop=4,
                                                         propagation="itp"))
    frames = clip(7, gop=4)  # I P P P I P P: the stream ends without a closing I-frame
    results = list(engine.segment(frames, keep_logits=True))
    assert [r.index for r in results] == list(range(7))
    assert [r.action for r in results] == ["phi", "itp", "itp", "itp", "phi", "itp", "phi"]
    k0, k1 = results[0].logits, results[4].logits
    np.testing.assert_allclose(results[1].logits, 0.75 * k0 + 0.25 * k1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(results[3].logits, 0.25 * k0 + 0.75 * k1, rtol=1e-5, atol=1e-5)
    k2 = results[6].logits
    np.testing.assert_allclose(results[5].logits, 0.5 * k1 + 0.5 * k2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("propagation", ["flow_dis", "flow_farneback"])
def test_flow_baselines_run_through_the_same_engine(propagation):
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw", propagation=propagation))
    frames = clip(3)
    frames[1].image = frames[0].image.copy()  # no motion: the flow warp keeps the features
    results = list(engine.segment(frames, keep_logits=True))
    assert [r.action for r in results] == ["phi", "ffw", "ffw"]
    # Flow on identical noise frames is near zero, not exactly zero (Farneback smooths).
    np.testing.assert_allclose(results[1].logits, results[0].logits, atol=1e-2)


@pytest.mark.parametrize("modules,gop", [("ffw,rgfs", 12), ("ffw,rgc,rgfs", 12), ("ffw,rgc", 20)])
def test_indexed_ffw_gives_the_materialised_chains_labels_and_logits(modules, gop, monkeypatch):
    """FFW held as a gather of the keyframe's logits (propagation.IndexedLogits: the nearest
    warps move an index map, RGC's crops become sources the map reads in their region) gives
    bit for bit the labels and logits of warping and blending the logits themselves frame by
    frame, over GOPs with varied, clamped and fractional block vectors, an RGFS keyframe in
    between, a new RGC region every frame, and (GOP 20) more crops than the map holds sources,
    where it falls back to the logits themselves. From the second frame of a chain on, the
    output step is given the previous frame's map and labels (ops.PrevFrame) to copy from."""
    import cv2
    from taplab_tf import ops
    given = []
    real = ops.indexed_logits_to_labels
    monkeypatch.setattr(E.ops, "indexed_logits_to_labels", lambda *a, **k: (
        given.append(k.get("prev") is not None), real(*a, **k))[1])
    if ops.backend() != "cpp":
        pytest.skip("the indexed path needs the compiled ops (TapLab>UpsampleArgmaxIndexed)")
    rng = np.random.default_rng(5)
    frames = clip(2 * gop + 2, gop=gop)
    for f in frames:  # patches of colour: the output step's shortcut and full path both occur
        patches = rng.integers(0, 256, (H // 16, W // 16, 3), dtype=np.uint8)
        f.image = cv2.GaussianBlur(cv2.resize(patches, (W, H), interpolation=cv2.INTER_NEAREST),
                                   (0, 0), 2)
        if f.motion_vectors is not None:
            f.motion_vectors = rng.normal(0, 9, f.motion_vectors.shape).astype(np.float32)
            f.motion_vectors[0, 0] = (300.0, -300.0)  # far outside: clamped at the border
            f.counts = rng.integers(0, 50, (H // 16, W // 16)).astype(np.int32)  # RGC's choice
    frames[7].residual_sum = 1e12  # an RGFS keyframe mid-GOP
    cfg = C.TapLabConfig(modules=modules, thr_rgfs=1e9, scale_to_frame=False,
                         region_shape=(32, 32), region_stride=16)
    model = tiny_model(3)
    runs = []
    for indexed in (True, False):
        engine = E.TapLabEngine(model, cfg, queue_size=0)
        engine.propagator.indexed = indexed
        runs.append(list(engine.segment(frames, keep_logits=True)))
        # the index map moves instead of the logits: their warp is never traced
        assert (engine.trace_counts["warp"] == 0) == indexed
    assert [r.action for r in runs[0]] == [r.action for r in runs[1]]
    assert runs[0][8].action == "ffw"
    assert runs[0][7].action == ("rgfs" if "rgfs" in modules else "ffw")
    if "rgc" in modules:
        assert len({r.rgc_region for r in runs[0] if r.rgc_region}) > 3
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a.labels, b.labels, err_msg=f"frame {a.index}")
        np.testing.assert_array_equal(a.logits, b.logits, err_msg=f"frame {a.index}")
    assert len({r.labels.tobytes() for r in runs[0]}) > 5  # the vectors moved the labels
    # the indexed run's propagated frames: all but each chain's first had the previous frame
    # (GOP 20: past MAX_SOURCES crops the logits themselves are blended, a chain restarts after)
    chain_firsts = sum(1 for a, b in zip(runs[0], runs[0][1:])
                       if a.action != "ffw" and b.action == "ffw")
    if gop == 12:
        assert len(given) == sum(r.action == "ffw" for r in runs[0])
        assert sum(given) == len(given) - chain_firsts > 0
    else:
        assert sum(given) > len(given) // 2


def test_a_keyframes_output_step_hands_its_argmax_statistics_to_the_chain(monkeypatch):
    """The keyframe's labels and the argmax statistics FFW's indexed chain reads come from one
    pass (ops.logits_to_labels with_stats): the chain does not compute them again, and the
    labels are those of warping the logits themselves."""
    from taplab_tf import ops
    if ops.backend() != "cpp":
        pytest.skip("the indexed path needs the compiled ops")
    frames = clip(8, gop=4)
    cfg = C.TapLabConfig(modules="ffw", scale_to_frame=False)
    model = tiny_model(3)
    plain = E.TapLabEngine(model, cfg, queue_size=0)
    plain.propagator.indexed = False  # the logits themselves warped: no statistics at all
    assert not plain.propagator.wants_key_stats()
    want = [r.labels for r in plain.segment(frames)]
    calls = []
    real = ops.argmax_stats
    monkeypatch.setattr(ops, "argmax_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    engine = E.TapLabEngine(model, cfg, queue_size=0)
    assert engine.propagator.wants_key_stats()
    got = [r.labels for r in engine.segment(frames)]
    assert calls == []
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    # without labels wanted (output='none') the chain computes them itself
    list(engine.segment(frames, output="none"))
    assert len(calls) == 2  # one chain per GOP
