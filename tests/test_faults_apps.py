"""Fault suite (issue 13), apps: make_synthetic writes a split whole or not at all and never over
an existing one; train rejects non-finite float flags in one line."""
import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
SMALL = ["--clip_length=2", "--height=32", "--width=64", "--split=train"]


def make_synthetic(*args, **kw):
    return subprocess.run([sys.executable, "-m", "experiments.make_synthetic", *args], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=120, **kw)


def snapshot(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, folder)] = open(path, "rb").read()
    return out


def test_make_synthetic_refuses_to_overwrite_an_existing_split(tmp_path):
    out = tmp_path / "d"
    r = make_synthetic(f"--output_dir={out}", "--num_clips=1", "--seed=1", *SMALL)
    assert r.returncode == 0, r.stderr
    before = snapshot(out)
    r = make_synthetic(f"--output_dir={out}", "--num_clips=1", "--seed=2", *SMALL)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "already holds split 'train'" in r.stderr.strip().splitlines()[-1]
    assert snapshot(out) == before
    r = make_synthetic(f"--output_dir={out}", "--num_clips=1", "--seed=2", *SMALL[:-1],
                       "--split=val")  # another split beside it is fine
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out / "gtFine")) == ["train", "val"]
    assert not [n for n in os.listdir(out) if n.startswith(".")]


def test_make_synthetic_killed_midway_leaves_nothing(tmp_path):
    out = tmp_path / "d"
    proc = subprocess.Popen([sys.executable, "-m", "experiments.make_synthetic",
                             f"--output_dir={out}", "--num_clips=200", *SMALL], cwd=ROOT,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # the first clip is written
        assert "clip 1/200" in line, (line, proc.stderr.read() if proc.poll() else "")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "Traceback" not in err
    assert os.listdir(out) == [], os.listdir(out)


@pytest.mark.parametrize("flag", ["--learning_rate=nan", "--weight_decay=inf"])
def test_train_rejects_non_finite_flags_in_one_line(tmp_path, flag):
    r = subprocess.run([sys.executable, "-m", "experiments.train", flag, f"--data_dir={tmp_path}",
                        f"--logdir={tmp_path / 'run'}"], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"{flag.split('=')[0]} must be a finite number" in r.stderr
    assert not (tmp_path / "run").exists()
