"""The command-line apps end to end (subprocesses, as a user runs them): the main job and its
one-line errors on bad input."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.helpers.training import tiny_checkpoint
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "bl2", "synthetic")


def test_segment_embedded_default_clip(checkpoint, tmp_path):
    out = tmp_path / "seg.mp4"
    p = run("experiments.segment", f"--checkpoint={checkpoint}", f"--output={out}",
            "--num_frames=8", "--height=128", "--width=256", "--gop=4", f"--workspace={tmp_path}",
            f"--labels_dir={tmp_path / 'labels'}", f"--summary_json={tmp_path / 's.json'}")
    assert p.returncode == 0, p.stderr[-2000:]
    assert out.is_file() and len(os.listdir(tmp_path / "labels")) == 8
    assert "mean FPS" in p.stdout and "I-frames 2" in p.stdout
    assert "phi frozen" in p.stdout  # the engine's default inference graph, said up front
    # The resolved settings beside the output: the flags given and the config they resolved to.
    record = json.load(open(tmp_path / "seg.config.json"))
    assert record["app"] == "segment" and record["given_flags"]["gop"] == 4
    assert record["settings"]["gop"] == 4 and record["settings"]["checkpoint"] == str(checkpoint)
    assert record["settings"]["modules"] == ["ffw", "rgc", "rgfs"]


@pytest.mark.parametrize("setup, flag, message", [
    (None, "--video={d}/missing.avi", "no such file"),
    ("", "--video={d}/empty.avi", "empty"),
    ("this is not a video", "--video={d}/text.avi", "text.avi"),
    (None, "--modules=rgc", "modules"),
    (None, "--checkpoint={d}/nowhere", "checkpoint"),
])
def test_segment_bad_input_is_one_line(tmp_path, checkpoint, setup, flag, message):
    if setup is not None:
        name = flag.split("/")[-1]
        (tmp_path / name).write_text(setup)
    args = [flag.format(d=tmp_path)]
    if "checkpoint" not in flag:
        args.append(f"--checkpoint={checkpoint}")
    p = run("experiments.segment", *args, f"--output={tmp_path / 'o.mp4'}")
    assert p.returncode != 0
    err = [l for l in p.stderr.strip().splitlines() if l.strip() and "--helpshort" not in l]
    assert message in err[-1], p.stderr[-2000:]  # absl adds a '--helpshort' hint to flag errors
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_model_info_times_the_variables_and_the_frozen_graph():
    p = run("experiments.model_info", "--models=bl2", "--height=64", "--width=128",
            "--repeats=1", "--crop=32")
    assert p.returncode == 0, p.stderr[-2000:]
    line = next(s for s in p.stdout.splitlines() if s.startswith("bl2:"))
    assert "ms/frame on CPU" in line and "ms frozen)" in line and "32x32:" in line
    p = run("experiments.model_info", "--models=bl9")
    assert p.returncode != 0 and "bl9" in p.stderr.strip().splitlines()[-1]


def test_calibrate_rgfs_for_both_triggers(one_clip_tree, tmp_path):
    thresholds = {}
    for extra in ([], ["--rgfs_accumulate"]):
        p = run("experiments.calibrate_rgfs", f"--data_dir={one_clip_tree}", "--split=val", "--gop=6",
                "--fraction=0.2", f"--output_json={tmp_path / 'r.json'}", *extra)
        assert p.returncode == 0, p.stderr[-2000:]
        assert ("--rgfs_accumulate" in p.stdout) == bool(extra)
        r = json.load(open(tmp_path / "r.json"))
        assert r["rgfs_accumulate"] == bool(extra) and r["achieved_fraction"] <= 0.2
        thresholds[bool(extra)] = r["thr_rgfs"]
        assert r["run_config"]["given_flags"]["fraction"] == 0.2
    # Sums over several P-frames need a higher threshold for the same fraction.
    assert thresholds[True] > thresholds[False]
    # --mv_block_size=8: the clips are encoded with 4MV, as the pipeline encodes for that setting
    p = run("experiments.calibrate_rgfs", f"--data_dir={one_clip_tree}", "--split=val", "--gop=6",
            "--fraction=0.2", "--mv_block_size=8", f"--output_json={tmp_path / 'r.json'}")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "--mv_block_size=8" in p.stdout and json.load(open(tmp_path / "r.json"))["mv4"]
