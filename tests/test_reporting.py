"""taplab_tf.reporting: the paper's figures, the Markdown tables, the sweep figures and the JSON
of the benchmarks (rows made here by hand; test_benchmark makes them with the library)."""
import dataclasses
import json

import numpy as np
import pytest

from taplab_tf import config as C
from taplab_tf import reporting


def test_paper_columns_come_from_table5_with_speed_ups_over_the_per_frame_row():
    rows = [{"config": "perframe"}, {"config": "ffw_rgc"}, {"config": "ffw_rgfs"}]
    assert reporting.add_paper_columns(rows, "bl2") is rows
    assert [(r["paper_miou"], r["paper_fps"]) for r in rows] == [(73.6, 29.3), (68.2, 131.4),
                                                                (69.4, 114.0)]
    assert rows[1]["paper_speedup"] == pytest.approx(131.4 / 29.3)
    bl1 = reporting.add_paper_columns([{"config": "ffw_rgc"}], "bl1")[0]
    assert bl1["paper_fps"] is None and bl1["paper_speedup"] is None  # not quoted
    other = reporting.add_paper_columns([{"config": "ffw"}], "my_net")[0]
    assert other["paper_miou"] is None and other["paper_speedup"] is None
    assert reporting.paper_figures("bl3") == (77.3, 7.2)


def test_accuracy_table_has_one_row_per_config_with_the_papers_mIoU():
    rows = [{"config": "perframe", "miou": 0.7512, "miou_all_frames": None, "rgfs_fraction": 0.0},
            {"config": "ffw_rgc", "miou": 0.6, "miou_all_frames": 0.55, "rgfs_fraction": 0.1}]
    lines = reporting.markdown_accuracy(rows, "bl2", "acc").splitlines()
    assert lines[0] == "**acc**" and len(lines) == 6
    assert lines[4] == "| perframe | 75.1 | — | 0.0% | 73.6 |"
    assert lines[5] == "| ffw_rgc | 60.0 | 55.0 | 10.0% | 68.2 |"


def test_variant_note_names_the_original_code_variants():
    assert reporting.variant_note(C.TapLabConfig()) == ""
    note = reporting.variant_note(C.TapLabConfig(rgfs_accumulate=True))
    assert note == ", original-code variants: rgfs_accumulate"


def test_sweep_figures_are_drawn_where_their_rows_have_the_values(tmp_path):
    speed = [{"gop": g, "speedup_ffw": g / 2, "speedup_ffw_rgc_rgfs": g / 3} for g in (3, 6)]
    assert reporting.plot_sweep_figures("gop", speed, str(tmp_path)) == [
        str(tmp_path / "sweep_gop_speed.png")]          # no mIoU without accuracy clips
    both = [dict(r, miou_ffw=0.5, miou_ffw_rgc_rgfs=0.6) for r in speed]
    written = reporting.plot_sweep_figures("gop", both, str(tmp_path))
    assert [p.split("/")[-1] for p in written] == ["sweep_gop_speed.png", "sweep_gop_miou.png"]
    alpha = [{"alpha": a, "miou": 0.5 + a / 10} for a in (0.0, 0.5, 1.0)]
    assert reporting.plot_sweep_figures("alpha", alpha, str(tmp_path)) == [
        str(tmp_path / "sweep_alpha.png")]
    assert reporting.plot_sweep_figures("region", [{"fps": 3.0}], str(tmp_path)) == []
    for name in ("sweep_gop_speed.png", "sweep_gop_miou.png", "sweep_alpha.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fig1_plot_is_written_with_either_mIoU(tmp_path):
    speed = [{"config": "perframe", "speedup": 1.0, "paper_speedup": 1.0, "paper_miou": 73.6},
             {"config": "ffw", "speedup": 8.0, "paper_speedup": 5.5, "paper_miou": 64.4}]
    for all_frames in (0.7, None):
        acc = [{"config": "perframe", "miou": 0.75, "miou_all_frames": all_frames},
               {"config": "ffw", "miou": 0.61, "miou_all_frames": all_frames}]
        path = tmp_path / f"fig1_{all_frames}.png"
        reporting.plot_miou_vs_fps(speed, acc, "bl2", str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


@dataclasses.dataclass
class _Point:
    x: int
    y: float


def test_json_takes_numpy_scalars_and_dataclasses(tmp_path):
    path = str(tmp_path / "r.json")
    reporting.write_json({"a": np.float32(0.5), "n": np.int64(3), "ok": np.bool_(True),
                          "p": _Point(1, 2.0), "other": {7}}, path)
    assert json.load(open(path)) == {"a": 0.5, "n": 3, "ok": True, "p": {"x": 1, "y": 2.0},
                                     "other": "{7}"}


def test_rgfs_table_has_a_row_per_qscale_and_the_extra_thresholds():
    def run(fraction, miou):
        return {"fraction": fraction, "miou": miou, "clip_fractions": [fraction, fraction]}
    rows = [{"qscale": q, "p_score_percentiles": {"50": 1.5e7 / q},
             "runs": {"ffw": run(0.0, 0.5), "fixed": run(0.1, 0.6), "recalibrated": run(0.1, 0.6),
                      "online": run(0.12, 0.61), "thr=paper": run(0.02, 0.55)}}
            for q in (2, 10)]
    report = {"fraction": 0.1, "base_qscale": 2, "extra_thresholds": {"paper": 3.6e7},
              "tolerance": 0.03, "rows": rows, "thr_rgfs_calibrated_at_base": 2.5e7,
              "checks": {"online_fraction_on_target": True,
                         "online_clip_fractions_range": [0.12, 0.12],
                         "online_miou_gap_at_base_qscale": 0.01,
                         "fixed_fraction_range": [0.1, 0.1],
                         "extra_threshold_fraction_ranges": {"paper": [0.02, 0.02]}}}
    lines = reporting.markdown_rgfs(report, "rgfs").splitlines()
    assert lines[0] == "**rgfs**" and "fixed thr paper" in lines[2]
    assert lines[4] == ("| 2 | 7.5e+06 | 12.0% / 61.0 | 12.0, 12.0 | 10.0% / 60.0 | 10.0% / 60.0 "
                        "| +1.00 | 2.0% / 55.0 | 50.0 |")
    assert lines[5].startswith("| 10 | 1.5e+06 |")
    assert "within 3 points: yes (12.0-12.0%)" in lines[-1] and "; paper: 2.0-2.0%." in lines[-1]
