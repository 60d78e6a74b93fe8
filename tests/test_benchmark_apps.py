"""Every benchmark and inspection app runs end to end on tiny inputs (subprocesses, as a user
runs them) and writes what it says. Their figures are the benchmarks' business: these tests
only keep the apps from rotting (a missing helper fails here, not in a user's hands)."""
import json
import os

import pytest

from tests.test_apps import run


def test_benchmark_speed_and_accuracy(tmp_path):
    """(The pareto sweep's rows, table and plot: tests/test_benchmark.py, on the library.)"""
    out = tmp_path / "b"
    p = run("experiments.benchmark", "--height=64", "--width=128", "--gop=6", "--num_frames=12",
            "--repeats=1", "--configs=perframe,ffw,ffw_rgc_rgfs", "--accuracy",
            "--accuracy_clips=1", "--accuracy_height=64", "--accuracy_width=128",
            "--mv_block_size=8", "--warp_interpolation=bilinear",
            f"--output_dir={out}", timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.load(open(out / "benchmark.json"))
    assert [r["config"] for r in report["speed"]] == ["perframe", "ffw", "ffw_rgc_rgfs"]
    assert all(r["eq2_bound_ms"] > 0 for r in report["speed"])
    assert [r["config"] for r in report["accuracy"]] == ["perframe", "ffw", "ffw_rgc_rgfs"]
    assert (out / "synthetic_64x128_gop6_mv4.avi").is_file()  # the 8x8 config's 4MV clip
    md = open(out / "benchmark.md").read()
    assert "phi-only bound" in md and "video mIoU" in md


def test_benchmark_reader(tmp_path):
    out = tmp_path / "r.json"
    p = run("experiments.benchmark_reader", "--height=64", "--width=128", "--frames=24",
            "--flow_pairs=2", "--repeats=1", f"--workdir={tmp_path}", f"--json_out={out}")
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.load(open(out))


def test_benchmark_warp():
    p = run("experiments.benchmark_warp", "--frame=64,128", "--repeats=2", "--warmup=1",
            "--nobl2")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "ms" in p.stdout


def test_benchmark_realtime(tmp_path):
    p = run("experiments.benchmark_realtime", "--num_frames=8", f"--output_dir={tmp_path}",
            timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.load(open(tmp_path / "summary.json"))
    assert summary


def test_inspect_video(tmp_path):
    from tests.helpers.video import encoded_pan
    video = encoded_pan(tmp_path, 6)
    out = tmp_path / "inspect"
    p = run("experiments.inspect_video", f"--video={video}", f"--output_dir={out}",
            "--mv_block_size=8")
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / "stats.json").is_file() and any(n.endswith(".png") for n in os.listdir(out))


@pytest.mark.parametrize("app", ["benchmark", "benchmark_reader", "benchmark_warp",
                                 "benchmark_realtime", "inspect_video", "analyze_motion"])
def test_bad_flag_is_one_line(app):
    p = run(f"experiments.{app}", "--no_such_flag=1")
    assert p.returncode != 0 and "Traceback" not in p.stderr
