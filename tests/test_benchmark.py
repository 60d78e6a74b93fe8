"""The benchmark library on a tiny stream: its tables, their fields and the sweeps' guards.
(Speed targets are met in the benchmark itself, never asserted in tests.)"""
import json
import os

import pytest

from taplab_tf import config as C
from taplab_tf import reporting
from taplab_tf.pipeline import benchmark as B
from tests.helpers.video import encoded_pan, tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return encoded_pan(tmp_path_factory.mktemp("b"), 12)


def test_speed_table_fields_and_ratios(video, tmp_path):
    cfg = C.TapLabConfig(gop=6)
    rows = B.speed_table(tiny_model(), "bl2", video, cfg, ["perframe", "ffw", "ffw_rgc_rgfs"],
                         progress=None)
    assert [r["config"] for r in rows] == ["perframe", "ffw", "ffw_rgc_rgfs"]
    ref = rows[0]
    assert ref["speedup"] == pytest.approx(1.0)
    for r in rows:
        assert r["frames"] == 12 and r["fps"] > 0 and r["fps_model"] >= r["fps"] * 0.5
        assert r["speedup"] == pytest.approx(r["fps"] / ref["fps"])
        assert r["eq2_ms"] == pytest.approx(r["t_i_ms"] / 6 + 5 / 6 * r["t_p_ms"])
        assert not any(k.startswith("paper") for k in r)  # the paper's figures are reporting's
        # Eq. 2's bound counts phi alone (frames and crops): never more than the wall clock
        assert 0 < r["eq2_bound_ms"] <= r["t_avg_ms"]
        assert r["bound_ratio"] == pytest.approx(r["t_avg_ms"] / r["eq2_bound_ms"])
    assert rows[2]["split_ms"]["phi_crop"] > 0 and "phi_crop" not in rows[1]["split_ms"]
    reporting.add_paper_columns(rows, "bl2")
    assert ref["paper_speedup"] == pytest.approx(1.0)
    assert rows[1]["paper_speedup"] == pytest.approx(160.4 / 29.3)
    md = reporting.markdown_speed(rows, "title")
    lines = md.splitlines()
    assert lines[0] == "**title**" and len(lines) == 2 + 2 + 3  # title, blank, header, rule, rows
    ffw = next(line for line in lines if line.startswith("| ffw |")).split(" | ")
    assert ffw[-2:] == ["160.4", "5.47x |"]  # the paper's FPS and speed-up in ffw's own row
    reporting.write_json({"speed": rows}, str(tmp_path / "b.json"))
    assert json.load(open(tmp_path / "b.json"))["speed"][0]["config"] == "perframe"


def test_speed_table_rounds_keep_each_configs_median(video):
    rows = B.speed_table(tiny_model(), "bl2", video, C.TapLabConfig(gop=6), ["perframe", "ffw"],
                         progress=None, repeats=3)
    for r in rows:
        assert len(r["fps_rounds"]) == 3 and r["fps"] == sorted(r["fps_rounds"])[1]
    assert rows[1]["speedup"] == pytest.approx(rows[1]["fps"] / rows[0]["fps"])
    with pytest.raises(ValueError, match="repeats"):
        B.speed_table(tiny_model(), "bl2", video, C.TapLabConfig(gop=6), ["ffw"], repeats=0)


def test_unknown_config_and_sweep_are_refused(video, tmp_path):
    with pytest.raises(ValueError, match="configs"):
        B.speed_table(tiny_model(), "bl2", video, C.TapLabConfig(gop=6), ["fast"], progress=None)
    with pytest.raises(ValueError, match="sweep"):
        B.run_sweep("colour", tiny_model(), video, C.TapLabConfig(gop=6), str(tmp_path))
    with pytest.raises(ValueError, match="clips"):
        B.run_sweep("alpha", tiny_model(), video, C.TapLabConfig(gop=6), str(tmp_path))


def test_propagation_sweep_times_every_method(video, tmp_path):
    rows = B.run_sweep("propagation", tiny_model(), video, C.TapLabConfig(gop=6),
                       str(tmp_path), progress=None)
    refined = [f"mv+{r}" for r in B.MV_REFINEMENTS]
    assert [r["propagation"] for r in rows] == ["itp", "flow_farneback", "flow_dis", "mv",
                                                *refined]
    flow = {r["propagation"]: r["t_flow_ms"] for r in rows}
    assert flow["flow_dis"] > 0 and flow["flow_farneback"] > 0 and flow["mv"] == 0
    refine = {r["propagation"]: r["t_refine_ms"] for r in rows}
    assert refine["mv"] == 0 and all(refine[name] > 0 for name in refined)


def test_pareto_sweep_covers_every_config_and_marks_the_front(video, tmp_path, one_clip_tree):
    from taplab_tf.pipeline import evaluate as V
    clips = V.list_clips("synthetic", one_clip_tree, "val")
    model = tiny_model()
    cfg = C.TapLabConfig(gop=6)
    configs = B.pareto_configs(cfg, gops=(3, 6))
    assert len(configs) == 1 + 2 * (2 * 4 + len(B.PARETO_FLOWS))
    refined = [c for _, f, c in configs if f["variant"] == "refined"]
    assert refined and all(c.warp_interpolation == "bilinear" and c.mv_refinement == "fill"
                           for c in refined)

    def acc_result(engine, gop):
        return V.evaluate_clips(engine, clips, "synthetic", gop, progress=None)
    rows = B.pareto_rows(model, video, cfg, str(tmp_path), clips=clips, acc_model=model,
                         acc_result=acc_result, progress=None, gops=(6,))
    assert len(rows) == 1 + 8 + len(B.PARETO_FLOWS)
    assert {(r["config"], r["variant"]) for r in rows} >= {("perframe", "-"),
                                                          ("ffw_rgc_rgfs", "refined"),
                                                          ("ffw", "flow_dis")}
    assert all(r["fps"] > 0 and 0 <= r["miou"] <= 1 for r in rows)
    front = [r for r in rows if r["pareto"]]
    assert front and max(rows, key=lambda r: r["fps"]) in front
    for r in rows:  # a row off the front is beaten by one on it
        if not r["pareto"]:
            assert any(f["fps"] >= r["fps"] and f["miou_all_frames"] >= r["miou_all_frames"]
                       for f in front)
    md = reporting.markdown_pareto(rows, "t")
    assert len(md.splitlines()) == 4 + len(rows)
    assert reporting.plot_sweep_figures("pareto", rows, str(tmp_path)) == [
        str(tmp_path / "sweep_pareto.png")]
    assert os.path.getsize(tmp_path / "sweep_pareto.png") > 1000


def test_mark_pareto():
    rows = [{"fps": 10, "miou": 0.5}, {"fps": 5, "miou": 0.7}, {"fps": 4, "miou": 0.6},
            {"fps": 10, "miou": 0.4}]
    B.mark_pareto(rows)
    assert [r["pareto"] for r in rows] == [True, True, False, False]


def test_rgfs_sweep_reports_keyframes_on_both_the_timed_and_the_accuracy_clips(video, tmp_path,
                                                                            one_clip_tree):
    from taplab_tf.pipeline import evaluate as V
    clips = V.list_clips("synthetic", one_clip_tree, "val")
    model = tiny_model()
    cfg = C.TapLabConfig(gop=6, thr_rgfs=1.0)  # far below any residual: every P-frame fires
    rows = B.run_sweep("rgfs", model, video, cfg, str(tmp_path), clips=clips, acc_model=model,
                       dataset="synthetic", progress=None)
    assert [r["thr_rgfs"] for r in rows] == [0.25, 0.5, 1.0, 2.0, 4.0]
    for r in rows:
        assert r["keyframe_fraction"] == 1.0 and r["keyframe_fraction_accuracy_clips"] == 1.0
        assert 0.0 <= r["miou"] <= 1.0 and 0.0 <= r["miou_all_frames"] <= 1.0


def test_the_measuring_library_loads_no_reporting():
    """The benchmark modules return rows; tables, plots and the paper's figures are
    taplab_tf.reporting's, which they do not import (nor matplotlib)."""
    import subprocess
    import sys
    code = ("import sys; import taplab_tf.pipeline.benchmark, taplab_tf.pipeline.rgfs_benchmark; "
            "print(sorted(m for m in sys.modules if m == 'taplab_tf.reporting' "
            "or m.startswith('matplotlib')))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == "[]"
    for name in ("PAPER_TABLE5", "markdown_speed", "plot_sweep", "write_json", "machine_info"):
        assert not hasattr(B, name), name
