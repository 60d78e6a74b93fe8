"""The engine's parts (issue 14, item 1): propagation behind one interface, chosen by the config;
the RGC and RGFS decisions in one home, shared by the engine and calibrate; the config as the one
source of the engine's settings; one decode-ahead thread."""
import os
import threading
import types

import numpy as np
import pytest

from taplab_tf import config as C
from taplab_tf.pipeline import calibrate
from taplab_tf.pipeline import decisions as D
from taplab_tf.pipeline import engine as E
from taplab_tf.pipeline import propagation as P
from tests.helpers.stream import clip, tiny_model


def test_the_config_names_every_propagator():
    assert tuple(P.PROPAGATORS) == C.PROPAGATIONS
    for name, cls in P.PROPAGATORS.items():
        assert issubclass(cls, P.Propagator) and cls.name == name


@pytest.mark.parametrize("change, field", [
    ({"propagation": "raft"}, "propagation"), ({"warp_interpolation": "cubic"}, "warp_interpolation"),
    ({"rgfs_accumulate": "yes"}, "rgfs_accumulate"), ({"scale_to_frame": 1.0}, "scale_to_frame")])
def test_the_config_refuses_bad_engine_settings(change, field):
    with pytest.raises(C.ConfigError, match=f"^{field}:"):
        C.TapLabConfig(**change)


def test_the_engine_takes_its_settings_from_the_config_only():
    with pytest.raises(TypeError):
        E.TapLabEngine(tiny_model(), C.TapLabConfig(), rgfs_accumulate=True)
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(propagation="itp", modules="ffw,rgfs"))
    assert isinstance(engine.propagator, P.Interpolation)
    # ITP interpolates between I-frames: no residual is read for it, RGFS does not apply.
    assert engine.reader_options() == {"rgb": True, "residual": None, "prefetch": 0,
                                       "mv_block_size": 16}
    mv = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw"))
    assert isinstance(mv.propagator, P.MvWarp)
    assert mv.reader_options() == {"rgb": "lazy", "residual": None, "prefetch": 0,
                                   "mv_block_size": 16}
    assert mv.reader_options(keep_images=True)["rgb"] is True


@pytest.mark.parametrize("block", [16, 8])
def test_block_averaged_dis_flow_is_warped_as_the_vectors_are(tmp_path, block):
    """flow_dis_blocks (the Table 3 diagnostic): DIS flow averaged per motion block, through
    ops.mv_warp with the config's block size and interpolation."""
    import cv2
    import tensorflow as tf

    from taplab_tf import ops
    from taplab_tf.pipeline import motion_field as mf
    from tests.helpers.video import encoded_pan
    from third_party.compressed_video import open_compressed
    video = encoded_pan(tmp_path, 2, gop=12)
    model = tiny_model()
    cfg = C.TapLabConfig(modules="ffw", propagation="flow_dis_blocks", mv_block_size=block,
                         warp_interpolation="bilinear")
    engine = E.TapLabEngine(model, cfg)
    assert isinstance(engine.propagator, P.BlockDISFlowWarp)
    assert engine.reader_options()["rgb"] is True  # DIS reads every frame's pixels
    results = list(engine.segment_video(video, keep_logits=True))
    with open_compressed(video, residual=None) as v:
        gray = [cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY) for f in v]
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(gray[1], gray[0],
                                                                             None)
    mv = -mf.block_flow(flow, block)
    expect = ops.mv_warp(tf.constant(results[0].logits), tf.constant(mv[None]),
                         feature_stride=model.output_stride, block_size=block,
                         interpolation="bilinear", border="clamp")
    np.testing.assert_allclose(results[1].logits, expect.numpy(), rtol=1e-5, atol=1e-5)
    assert results[1].timings["flow"] > 0


def test_a_new_propagator_plugs_in_by_name(monkeypatch):
    class Halve(P.Propagator):
        """The previous logits, halved: enough to see that the engine runs it."""
        name = "halve"

        def propagate(self, frame, logits, timings):
            return logits * 0.5

    monkeypatch.setitem(P.PROPAGATORS, "halve", Halve)
    monkeypatch.setattr(C, "PROPAGATIONS", C.PROPAGATIONS + ("halve",))
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw", propagation="halve"))
    results = list(engine.segment(clip(3), keep_logits=True))
    assert [r.action for r in results] == ["phi", "ffw", "ffw"]
    np.testing.assert_allclose(results[2].logits, 0.25 * results[0].logits, rtol=1e-6)


@pytest.mark.parametrize("accumulate", [False, True])
def test_calibrate_replays_the_engines_rgfs_decisions(accumulate):
    """calibrate.fired_fraction and the engine decide with the same RGFSTrigger: on the same
    residual sums they send the same fraction of P-frames to phi."""
    rng = np.random.default_rng(5)
    frames = clip(37, gop=12)
    for f in frames:
        f.residual_sum = float(rng.uniform(0, 100)) if f.pict_type == "P" else 0.0
    thr = 120.0 if accumulate else 80.0
    cfg = C.TapLabConfig(modules="ffw,rgfs", thr_rgfs=thr, rgfs_accumulate=accumulate,
                         scale_to_frame=False)
    results = list(E.TapLabEngine(tiny_model(), cfg).segment(frames, output="none"))
    is_p = np.array([f.pict_type == "P" for f in frames])
    scores = np.array([f.residual_sum for f in frames])
    expected = calibrate.fired_fraction([(is_p, scores)], thr, accumulate=accumulate)
    fraction = E.summarize(results)["rgfs_fraction"]
    assert 0.0 < fraction < 1.0 and fraction == pytest.approx(expected)


def test_rgc_choice_resets_at_each_gop_with_the_accumulated_variant():
    choice = D.RGCChoice(D.RegionScorer(32, 64, (32, 32), 32), accumulate=True)
    first = np.array([[5, 5, 1, 1], [5, 5, 1, 1]])
    assert choice.choose(first) == (0, 0, 32, 32)
    assert choice.choose(np.zeros((2, 4))) == (0, 32, 32, 32)  # region 1 kept its 4
    choice.start_gop()
    assert not choice.accumulated.any()
    plain = D.RGCChoice(D.RegionScorer(32, 64, (32, 32), 32))
    assert plain.choose(first) == (0, 0, 32, 32) and plain.choose(first) == (0, 0, 32, 32)
    # scores computed ahead (the engine's reader thread) choose as the counts do
    again = D.RGCChoice(D.RegionScorer(32, 64, (32, 32), 32), accumulate=True)
    assert again.choose(scores=again.scorer.scores(first)) == (0, 0, 32, 32)
    assert again.choose(scores=again.scorer.scores(np.zeros((2, 4)))) == (0, 32, 32, 32)
    with pytest.raises(ValueError, match="block counts or its scores"):
        again.choose()


def test_rgfs_trigger_sums_since_the_last_keyframe():
    trigger = D.RGFSTrigger(100.0, accumulate=True)
    assert [trigger.fires(40.0), trigger.fires(40.0), trigger.fires(40.0)] == [False, False, True]
    assert trigger.score == 120.0
    trigger.keyframe()
    assert not trigger.fires(40.0) and trigger.score == 40.0
    online = D.RGFSTrigger(1e30, fraction=0.5)  # the online threshold replaces 1e30
    assert isinstance(online.online, D.OnlineRGFSTrigger)


def test_one_decode_ahead_thread(tmp_path):
    """The engine's queue decodes ahead of a plain reader; a reader that decodes ahead itself is
    not wrapped in a second thread."""
    from tests.helpers.video import encoded_pan
    from third_party.compressed_video import open_compressed
    path = encoded_pan(tmp_path, 24)  # more frames than either queue holds
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw"))

    def threads_while_running(video):
        with video:
            for _ in engine.segment(video, output="none"):
                return sorted(t.name.split(":")[0] for t in threading.enumerate()
                              if "prefetch" in t.name or t.name == "taplab-reader")

    assert threads_while_running(engine.open_video(path)) == ["taplab-reader"]
    assert threads_while_running(open_compressed(path, residual=None, prefetch=2)) == [
        "compressed-video-prefetch"]


def test_segment_file_reads_the_video_once_through_the_engine(tmp_path, monkeypatch):
    """reader -> engine -> writer: segment_file has the engine open the video (with the options
    the engine chooses) once, and the writer draws from the engine's FrameResults."""
    from taplab_tf.pipeline import segment as S
    from tests.helpers.video import encoded_pan
    path = encoded_pan(tmp_path, 8, gop=4)
    engine = E.TapLabEngine(tiny_model(), C.TapLabConfig(modules="ffw", gop=4))
    opened, drawn = [], []
    real_open, real_draw = E.TapLabEngine.open_video, S._Overlay.__call__
    monkeypatch.setattr(E.TapLabEngine, "open_video", lambda self, p, **kw: (
        opened.append(kw), real_open(self, p, **kw))[1])
    monkeypatch.setattr(S._Overlay, "__call__", lambda self, r: (
        drawn.append((r.index, r.image.shape, r.labels.shape)), real_draw(self, r))[1])
    summary = S.segment_file(engine, path, str(tmp_path / "out.mp4"), dataset="synthetic",
                             labels_dir=str(tmp_path / "labels"), progress=False)
    assert opened == [{"keep_images": True}] and summary["frames"] == 8
    assert [d[0] for d in drawn] == list(range(8))
    assert all(d[1][:2] == d[2] for d in drawn)  # each result carries its image and labels
    assert len(os.listdir(tmp_path / "labels")) == 8 and (tmp_path / "out.mp4").is_file()


def _take_over_case(seed):
    """FFW with RGC at alpha = 1 (the index map, compiled ops), an 8x12 keyframe's logits as a
    chain's start and a 4x4 crop: (propagator, key logits, crop logits, the chain's start)."""
    import tensorflow as tf

    from taplab_tf import ops
    if ops.backend() != "cpp":
        pytest.skip("the index map needs the compiled ops")
    rng = np.random.default_rng(seed)
    prop = P.MvWarp(C.TapLabConfig(modules="ffw,rgc", scale_to_frame=False), 4).start()
    key = tf.constant(rng.standard_normal((1, 8, 12, 5)).astype(np.float32))
    crop = tf.constant(rng.standard_normal((1, 4, 4, 5)).astype(np.float32))
    return prop, key, crop, prop._start_index(key)


def test_index_map_take_over_is_the_crop_and_refuses_a_region_outside():
    """RGC's take-over on FFW's index map (alpha = 1, Eq. 6): the region reads the crop's
    logits, everything else keeps its source; a region past the map is one clear error."""
    prop, key, crop, start = _take_over_case(3)
    taken = prop.take_region(start, crop, 2, 6)
    want = key.numpy().copy()
    want[0, 2:6, 6:10] = crop.numpy()[0]
    np.testing.assert_array_equal(taken.numpy(), want)
    np.testing.assert_array_equal(start.numpy(), key.numpy())  # the map it took from is kept
    with pytest.raises(P.PropagationError, match="does not fit"):
        prop.take_region(start, crop, 6, 6)


def test_region_ahead_warps_and_takes_over_in_one_op(monkeypatch):
    """region_ahead before propagate (the engine's RGC frames): the warp of the index map and the
    take-over run as one op (ops.index_take_region with the vectors), prepare_region finds it
    done, and the corrected logits are those of the warp then the take-over; the warped map
    alone is computed only where something reads it, and then equals mv_warp's."""
    import tensorflow as tf

    from taplab_tf import ops
    prop, key, crop, start = _take_over_case(5)
    rng = np.random.default_rng(5)
    mv = rng.integers(-24, 24, (2, 3, 2)).astype(np.float32)  # 8x12 cells at stride 4: 2x3 blocks
    frame = types.SimpleNamespace(motion_vectors=mv, index=1)
    plain = prop.propagate(frame, start, {})
    want = prop.take_region(plain, crop, 2, 6).numpy()
    calls, warps = [], []
    real_take, real_warp = ops.index_take_region, ops.mv_warp
    monkeypatch.setattr(P.ops, "index_take_region",
                        lambda *a, **k: (calls.append(k.get("motion") is not None),
                                         real_take(*a, **k))[1])
    monkeypatch.setattr(P.ops, "mv_warp", lambda *a, **k: (warps.append(1), real_warp(*a, **k))[1])
    prop.region_ahead(2, 6, 4, 4)
    warped = prop.propagate(frame, start, {})
    prop.prepare_region(warped, 2, 6, 4, 4)
    assert calls == [True] and warps == []  # one op, the warp inside it
    np.testing.assert_array_equal(prop.take_region(warped, crop, 2, 6).numpy(), want)
    assert calls == [True] and warps == []
    np.testing.assert_array_equal(warped.index.numpy(), plain.index.numpy())  # read: warped now
    assert warps == [1]
    with pytest.raises(P.PropagationError, match="does not fit"):
        prop.region_ahead(6, 6, 4, 4)
        prop.propagate(frame, start, {})
    assert tf.is_tensor(plain.index)


def test_prepared_take_over_is_the_same_map_computed_before_the_crop(monkeypatch):
    """prepare_region (the engine calls it before phi runs on the crop) takes the region on the
    index map; take_region with the same region uses that map, and recomputes it for another."""
    from taplab_tf import ops
    prop, key, crop, start = _take_over_case(4)
    want = prop.take_region(start, crop, 2, 6).numpy()
    calls = []
    real = ops.index_take_region
    monkeypatch.setattr(P.ops, "index_take_region", lambda *a, **k: (calls.append(a[1:3]),
                                                                      real(*a, **k))[1])
    prop.prepare_region(start, 2, 6, 4, 4)
    assert calls == [(2, 6)]
    np.testing.assert_array_equal(prop.take_region(start, crop, 2, 6).numpy(), want)
    assert calls == [(2, 6)]  # the prepared map, not a second pass
    prop.prepare_region(start, 2, 6, 4, 4)
    other = prop.take_region(start, crop, 1, 6)  # not the region prepared: computed for it
    assert calls == [(2, 6), (2, 6), (1, 6)]
    want_other = key.numpy().copy()
    want_other[0, 1:5, 6:10] = crop.numpy()[0]
    np.testing.assert_array_equal(other.numpy(), want_other)
    with pytest.raises(P.PropagationError, match="does not fit"):
        prop.prepare_region(start, 6, 6, 4, 4)
