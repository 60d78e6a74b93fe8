"""RGFS at a target fraction of P-frames, its threshold chosen online from the stream's own
residual sums (decisions.OnlineRGFSTrigger, TapLabConfig.rgfs_fraction, --rgfs_fraction): on
constructed residual sequences, in the engine, and through the shared flags."""
import numpy as np
import pytest
from absl import flags

from taplab_tf import config as C
from taplab_tf.pipeline import engine as E
from taplab_tf.pipeline import decisions as M

GOP = 12
N_GOPS = 10  # 110 P-frames: the ">= 10 GOPs of 12"


def replay(scores, fraction, gop=GOP, accumulate=False, **kw):
    """The engine's RGFS loop over per-frame scores (index % gop == 0: I-frame): fired flags of
    the P-frames, and the trigger. With accumulate, the score since the last keyframe."""
    trigger = M.OnlineRGFSTrigger(fraction, **kw)
    fired, acc = [], 0.0
    for i, s in enumerate(scores):
        if i % gop == 0:
            acc = 0.0
            continue
        acc = acc + s if accumulate else s
        f = trigger.fires(acc)
        fired.append(f)
        if f:
            acc = 0.0
    return np.array(fired), trigger


def sequence(kind, seed, n=GOP * N_GOPS, cv=0.15):
    """Residual sums of a stream: a level (stationary, drifting, stepping) times lognormal noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n)
    level = {"stationary": np.ones(n),
             "drift_up": 3.0 ** t,            # the level triples over the clip
             "drift_down": 3.0 ** -t,         # ... or falls to a third
             "wave": 1.0 + 0.5 * np.sin(2 * np.pi * 2 * t),
             "step": np.where(t < 0.5, 1.0, 3.0)}[kind]
    return 2e7 * level * np.exp(cv * rng.standard_normal(n))


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("kind", ["stationary", "drift_up", "drift_down", "wave", "step"])
@pytest.mark.parametrize("fraction", [0.1, 0.2])
def test_fraction_lands_on_target_over_ten_gops(kind, fraction, accumulate):
    for seed in range(20):
        fired, trigger = replay(sequence(kind, seed), fraction, accumulate=accumulate)
        assert fired.size == 110 and trigger.p_frames == 110
        assert abs(fired.mean() - fraction) <= 0.03, (seed, fired.mean())
        # The feedback keeps the count of keyframes within 2 of f * P-frames (the docstring).
        assert -2.0 < trigger.deficit < 2.0


@pytest.mark.parametrize("scale", [0.3, 3.0])
def test_another_quantiser_level_changes_no_decision(scale):
    """A different qscale scales the residual sums; the fixed threshold's fraction swings, the
    online trigger's decisions are the same frame for frame."""
    for accumulate in (False, True):
        for seed in range(5):
            scores = sequence("stationary", seed)
            base, _ = replay(scores, 0.1, accumulate=accumulate)
            scaled, _ = replay(scores * scale, 0.1, accumulate=accumulate)
            np.testing.assert_array_equal(base, scaled)
            assert abs(scaled.mean() - 0.1) <= 0.03
    # Eq. 4 with a threshold calibrated at scale 1 for 10%: all or nothing at the other level.
    scores = sequence("stationary", 0)
    p = np.arange(scores.size) % GOP != 0
    thr = np.quantile(scores[p], 0.9)
    fixed = np.mean([M.rgfs_fires(s, thr) for s in scores[p] * scale])
    assert fixed == (1.0 if scale > 1 else 0.0)


def test_fires_on_the_largest_scores_at_a_steady_level():
    """Not a timer: at D = 0 it picks the top of the recent scores."""
    scores = sequence("stationary", 1, n=GOP * 40, cv=0.3)
    fired, _ = replay(scores, 0.1)
    p_scores = scores[np.arange(scores.size) % GOP != 0]
    rank = np.argsort(np.argsort(p_scores)) / (p_scores.size - 1)  # 0 lowest .. 1 highest
    assert rank[fired].mean() > 0.8  # a random choice averages 0.5


def test_start_up_waits_for_warmup_then_catches_up():
    trigger = M.OnlineRGFSTrigger(0.1)
    assert trigger.warmup == 10 and trigger.window == 24
    # Rising scores: each is the largest so far, yet nothing fires during the warm-up.
    decisions = [trigger.fires(1e6 * (i + 1)) for i in range(9)]
    assert not any(decisions) and trigger.threshold == float("inf")
    assert trigger.deficit == pytest.approx(0.9)
    # The 10th score, the largest, fires: one keyframe owed after 10 P-frames at f = 0.1.
    assert trigger.fires(1e8) and trigger.fired == 1
    # Fewer scores than the warm-up at other fractions: at least 4, ceil(1/f) otherwise.
    assert M.OnlineRGFSTrigger(0.5).warmup == 4
    assert M.OnlineRGFSTrigger(0.05).warmup == 20 and M.OnlineRGFSTrigger(0.05).window == 40


def test_ties_and_constant_scores_still_reach_the_target():
    """All scores equal: no score beats the quantile, the catch-up rule fires at 2 owed."""
    fired, trigger = replay(np.full(GOP * N_GOPS, 5e6), 0.1)
    assert abs(fired.mean() - 0.1) <= 0.03 and trigger.deficit < 2.0


def test_reset_forgets_the_stream():
    scores = sequence("wave", 3)
    trigger = M.OnlineRGFSTrigger(0.1)
    first = [trigger.fires(s) for s in scores]
    trigger.reset()
    assert trigger.p_frames == 0 and trigger.fired == 0 and trigger.deficit == 0
    assert [trigger.fires(s) for s in scores] == first


@pytest.mark.parametrize("kwargs, message", [
    (dict(fraction=0.0), "rgfs_fraction"), (dict(fraction=1.0), "rgfs_fraction"),
    (dict(fraction=float("nan")), "rgfs_fraction"), (dict(fraction=0.1, window=0), "window"),
    (dict(fraction=0.1, warmup=30), "warmup"), (dict(fraction=0.1, max_owed=0.5), "max_owed"),
])
def test_trigger_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        M.OnlineRGFSTrigger(**kwargs)


def test_trigger_refuses_a_non_finite_score():
    with pytest.raises(ValueError, match="finite"):
        M.OnlineRGFSTrigger(0.1).fires(float("nan"))


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, float("nan"), float("inf"), True, "0.1", None])
def test_config_rejects_a_bad_fraction_in_one_line(value):
    with pytest.raises(C.ConfigError, match="rgfs_fraction") as e:
        C.TapLabConfig(rgfs_fraction=value)
    assert "\n" not in str(e.value)


def test_config_default_is_the_fixed_threshold():
    assert C.TapLabConfig().rgfs_fraction == 0.0
    cfg = C.TapLabConfig(rgfs_fraction=np.float32(0.25))
    assert type(cfg.rgfs_fraction) is float and cfg.to_dict()["rgfs_fraction"] == 0.25


# -- the engine --------------------------------------------------------------------------------

def _fake_clip(scores, gop=GOP):
    from tests.helpers.stream import clip
    frames = clip(len(scores), gop=gop)
    for f, s in zip(frames, scores):
        f.residual_sum = float(s) if f.pict_type == "P" else 0.0
    return frames


@pytest.mark.parametrize("accumulate", [False, True])
def test_engine_decides_with_the_online_trigger(accumulate):
    from tests.helpers.stream import tiny_model
    scores = sequence("drift_down", 7, n=GOP * N_GOPS)
    cfg = C.TapLabConfig(modules="ffw,rgfs", thr_rgfs=1e30, rgfs_fraction=0.1,
                         rgfs_accumulate=accumulate)
    engine = E.TapLabEngine(tiny_model(), cfg, queue_size=0)
    results = list(engine.segment(_fake_clip(scores), output="none"))
    fired = np.array([r.action == "rgfs" for r in results if r.pict_type == "P"])
    expected, _ = replay(scores, 0.1, accumulate=accumulate)
    np.testing.assert_array_equal(fired, expected)  # thr_rgfs = 1e30 would fire on none
    assert abs(E.summarize(results)["rgfs_fraction"] - 0.1) <= 0.03
    # A second stream through the same engine starts afresh (a new trigger per stream).
    again = list(engine.segment(_fake_clip(scores), output="none"))
    assert [r.action for r in again] == [r.action for r in results]
    # rgfs_fraction = 0 is Eq. 4 with thr_rgfs.
    fixed = E.TapLabEngine(tiny_model(), cfg.replace(rgfs_fraction=0.0), queue_size=0)
    assert not any(r.action == "rgfs" for r in fixed.segment(_fake_clip(scores), output="none"))


def test_engine_on_a_real_stream_at_two_quantisers(tmp_path):
    """A tiny encoded clip of 10 GOPs at qscale 2 and 10: the online fraction stays on target
    (and equals a replay of the reader's residual sums); a fixed threshold's does not."""
    from tests.helpers.video import textured_pan, tiny_model
    from third_party.compressed_video import encode_video, open_compressed
    gop, n = 6, 6 * 10 + 1
    frames, _ = textured_pan(n, dx=3, seed=4)
    fractions, sums = {}, {}
    model = tiny_model()
    for q in (2, 10):
        path = str(tmp_path / f"q{q}.avi")
        encode_video(frames, path, gop=gop, qscale=q)
        with open_compressed(path, rgb=False, residual="summary") as v:
            kinds = [(f.pict_type, f.residual_sum) for f in v]
        p_sums = np.array([s for k, s in kinds if k == "P"])
        assert p_sums.size == 50
        sums[q] = p_sums
        engine = E.TapLabEngine(model, C.TapLabConfig(modules="ffw,rgfs", gop=gop,
                                                      rgfs_fraction=0.2))
        results = list(engine.segment_video(path, output="none"))
        fired = np.array([r.action == "rgfs" for r in results if r.pict_type == "P"])
        trigger = M.OnlineRGFSTrigger(0.2)
        np.testing.assert_array_equal(fired, [trigger.fires(s) for s in p_sums])
        fractions[q] = fired.mean()
        assert abs(fractions[q] - 0.2) <= 0.03, fractions
    # The coarser quantiser leaves smaller residuals: the threshold that sends 20% of qscale 2's
    # P-frames to phi sends (almost) none of qscale 10's.
    thr = np.quantile(sums[2], 0.8)
    assert np.mean(sums[2] > thr) == pytest.approx(0.2, abs=0.03)
    assert np.mean(sums[10] > thr) < 0.05


# -- the shared flag ---------------------------------------------------------------------------

def test_flag_reaches_the_config(parse):
    assert parse().rgfs_fraction == 0.0
    assert parse("--rgfs_fraction=0.1", "--rgfs_accumulate").rgfs_fraction == 0.1


@pytest.mark.parametrize("bad", ["--rgfs_fraction=1", "--rgfs_fraction=-0.1",
                                 "--rgfs_fraction=nan", "--rgfs_fraction=inf"])
def test_bad_flag_is_rejected_naming_it(parse, bad):
    with pytest.raises(flags.IllegalFlagValueError, match="rgfs_fraction"):
        parse(bad)


# -- the side-by-side benchmark ----------------------------------------------------------------

def test_benchmark_compares_the_triggers_across_qscales(tmp_path):
    from taplab_tf.pipeline import rgfs_benchmark as R
    from tests.helpers.video import NC, tiny_model
    gop = 6
    clips = R.make_clips(str(tmp_path), num_clips=1, num_frames=6 * 8 + 1, height=64, width=128,
                         gop=gop, qscales=(2, 10), progress=None)
    assert clips[0].labels.shape == (49, 64, 128) and sorted(clips[0].videos) == [2, 10]
    cfg = C.TapLabConfig(modules="ffw,rgfs", gop=gop)
    report = R.compare(tiny_model(), cfg, clips, fraction=0.25, qscales=(2, 10), base_qscale=2,
                       num_classes=NC, progress=None, extra_thresholds={"zero": 0.0})
    base, other = report["rows"]
    # At the base qscale the recalibrated threshold is the fixed one; offline, it sends at most
    # f of the P-frames (floor of 0.25 * 40 = 10).
    assert base["runs"]["recalibrated"] == base["runs"]["fixed"]
    assert base["runs"]["fixed"]["keyframes"] == 10 and base["runs"]["fixed"]["p_frames"] == 40
    assert other["runs"]["recalibrated"]["keyframes"] == 10
    assert report["checks"]["fixed_fraction_swings"]  # qscale 10's residuals are smaller
    assert report["checks"]["extra_threshold_fraction_ranges"] == {"zero": [1.0, 1.0]}
    assert base["p_score_percentiles"]["50"] > other["p_score_percentiles"]["50"]
    assert other["runs"]["fixed"]["fraction"] < 0.25 - 0.03
    # The online trigger replays on the reader's residual sums, whatever the qscale.
    for row in report["rows"]:
        on = row["runs"]["online"]
        scores = calibrate_scores(clips[0].videos[row["qscale"]])
        expected, _ = replay(scores, 0.25, gop=gop)
        assert on["keyframes"] == expected.sum() and on["thr_rgfs"] is None
        assert row["runs"]["ffw"]["keyframes"] == 0
        assert 0.0 <= on["miou"] <= 1.0
    from taplab_tf import reporting
    md = reporting.markdown_rgfs(report, "title")
    assert md.count("\n| 2 |") == 1 and md.count("\n| 10 |") == 1 and "title" in md
    assert "fixed thr zero" in md and "100.0% /" in md
    with pytest.raises(ValueError, match="base_qscale"):
        R.compare(tiny_model(), cfg, clips, fraction=0.25, qscales=(2, 10), base_qscale=3,
                  num_classes=NC, progress=None)
    with pytest.raises(ValueError, match="RGFS"):
        R.compare(tiny_model(), cfg.replace(modules="ffw"), clips, fraction=0.25, qscales=(2,),
                  base_qscale=2, num_classes=NC, progress=None)


def calibrate_scores(path):
    """Per-frame scores in decode order (0 on I-frames), as the engine sees them."""
    from third_party.compressed_video import open_compressed
    with open_compressed(path, rgb=False, residual="summary") as v:
        return np.array([f.residual_sum if f.pict_type == "P" else 0.0 for f in v])


@pytest.mark.parametrize("args, message", [
    (["--base_qscale=4"], "--base_qscale"), (["--qscales=2,x"], "--qscales"),
    (["--qscales=0,3"], "--qscales"), (["--rgfs_fraction=0"], "--rgfs_fraction"),
    (["--modules=ffw"], "--modules"), (["--rgfs_fraction=1.5"], "rgfs_fraction"),
    (["--fixed_thresholds=paper"], "--fixed_thresholds"),
])
def test_benchmark_app_bad_input_is_one_line(tmp_path, args, message):
    from tests.test_apps import run
    p = run("experiments.benchmark_rgfs", *args, f"--output_dir={tmp_path / 'out'}",
            f"--work_dir={tmp_path / 'work'}", timeout=120)
    assert p.returncode != 0
    err = [l for l in p.stderr.strip().splitlines() if l.strip() and "--helpshort" not in l]
    assert message in err[-1] and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert not (tmp_path / "out" / "rgfs_benchmark.json").exists()
