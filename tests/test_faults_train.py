"""Fault suite (issue 13), training: damaged checkpoints, a resume that does not fit, periodic
actions at their own multiples, a finished run run again, and whole-or-nothing model files."""
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from taplab_tf import models
from taplab_tf.train import Trainer, train
from taplab_tf.train import trainer as trainer_lib
from tests.helpers.training import ROOT, TINY, constant_data, tiny_config

DATA = constant_data()


def _digests(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny run trained to step 4 (checkpoints at 2 and 4) and exported."""
    logdir = tmp_path_factory.mktemp("finished") / "run"
    r = train(tiny_config(logdir), DATA, DATA)
    assert r["step"] == 4 and r["export_dir"]
    return logdir


@pytest.fixture
def run_copy(finished_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(finished_run, dst)
    shutil.rmtree(dst / "model")  # so that a resume trains instead of returning at once
    return dst


def _ckpt(logdir, step, kind):
    return os.path.join(logdir, "checkpoints", f"ckpt-{step}.{kind}")


def test_garbage_state_file_resumes_from_newest_checkpoint(run_copy, caplog):
    with open(run_copy / "checkpoints" / "checkpoint", "w") as f:
        f.write("\x00garbage, not a checkpoint state\n")
    good = _digests(run_copy / "checkpoints")
    caplog.set_level(logging.WARNING)
    r = train(tiny_config(run_copy, steps=6, stop_after=1), DATA, DATA)
    assert r["start_step"] == 4 and r["step"] == 5
    assert "checkpoints/checkpoint is damaged" in caplog.text
    after = _digests(run_copy / "checkpoints")
    for name, digest in good.items():
        if name.startswith("ckpt-"):
            assert after[name] == digest, f"{name} was overwritten"
    assert tf.train.get_checkpoint_state(str(run_copy / "checkpoints")) is not None


@pytest.mark.parametrize("damage", ["truncate data", "truncate index", "remove data",
                                    "remove index"])
def test_damaged_latest_checkpoint_falls_back_to_intact_one(run_copy, caplog, damage):
    action, kind = damage.split()
    path = _ckpt(run_copy, 4, "data-00000-of-00001" if kind == "data" else "index")
    if action == "truncate":
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    else:
        os.remove(path)
    caplog.set_level(logging.WARNING)
    assert Trainer(tiny_config(run_copy, steps=6)).restore() == 2
    warnings = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert any(os.path.basename(path) in w and "earlier checkpoint" in w for w in warnings), \
        warnings


def test_all_checkpoints_damaged_is_an_error_unless_restart(run_copy):
    for step in (2, 4):
        path = _ckpt(run_copy, step, "index")
        with open(path, "r+b") as f:
            f.truncate(7)
    with pytest.raises(ValueError, match=r"no intact checkpoint .*ckpt-4\.index is damaged.*"
                                         r"--restart"):
        Trainer(tiny_config(run_copy, steps=6)).restore()
    assert Trainer(tiny_config(run_copy, steps=6, restart=True)).restore() == 0


def test_resume_of_another_network_changes_nothing_and_says_what_differs(run_copy):
    before = _digests(run_copy)
    with pytest.raises(ValueError, match=r"another network \(num_classes 4 -> 5\)"):
        train(tiny_config(run_copy, num_classes=5), DATA, DATA)
    with pytest.raises(ValueError, match=r"width_multiplier 0.35 -> 0.5"):
        train(tiny_config(run_copy, model_kwargs=dict(TINY, width_multiplier=0.5)), DATA, DATA)
    assert _digests(run_copy) == before


def test_cli_resume_of_another_network_is_one_line(run_copy, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--model=bl2", "--dataset=camvid",
         "--width_multiplier=0.5", f"--data_dir={tmp_path}", f"--logdir={run_copy}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "width_multiplier 0.35 -> 0.5" in lines[-1]
    assert not [l for l in lines if "WARNING" in l or "Traceback" in l], lines[-20:]


def test_finished_run_run_again_changes_nothing(finished_run):
    before = _digests(finished_run)
    meta = json.load(open(finished_run / "model" / "model.json"))
    assert meta["train_miou"] is not None and np.isfinite(meta["train_miou"])
    r = train(tiny_config(finished_run), DATA, DATA)
    assert r["finished_before"] and r["step"] == 4
    assert _digests(finished_run) == before


def test_periodic_actions_fire_at_their_own_multiples(tmp_path, monkeypatch):
    saves, evals, images = [], [], []
    real_save = tf.train.CheckpointManager.save

    def save(self, checkpoint_number=None, **kw):
        saves.append(int(checkpoint_number))
        return real_save(self, checkpoint_number=checkpoint_number, **kw)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    monkeypatch.setattr(trainer_lib.Trainer, "_image_summaries",
                        lambda self, *a, step: images.append(int(step)))
    monkeypatch.setattr(trainer_lib, "evaluate", lambda model, data, *a: evals.append(
        int(model.taplab_trainer_step())) or 0.5)
    monkeypatch.setattr(trainer_lib, "recalibrate_batchnorm", lambda *a: None)
    cfg = tiny_config(tmp_path, steps=100, log_every=20, checkpoint_every=30, eval_every=25,
                      image_every=40, crop=(32, 32), batch_size=1, stop_after=None)
    small = constant_data(batch=1, size=32)
    real_init = trainer_lib.Trainer.__init__

    def init(self, *a, **kw):
        real_init(self, *a, **kw)
        self.model.taplab_trainer_step = lambda: self.step

    monkeypatch.setattr(trainer_lib.Trainer, "__init__", init)
    r = train(cfg, small, small)
    assert r["step"] == 100
    assert saves == [30, 60, 90, 100]
    assert evals == [25, 50, 75]
    assert images == [40, 80, 100]
    on_disk = sorted(int(f[5:-6]) for f in os.listdir(tmp_path / "checkpoints")
                     if f.endswith(".index"))
    assert on_disk == [60, 90, 100]  # max_to_keep=3 of the four


def test_failed_model_save_leaves_the_old_model_and_no_stray_file(tmp_path, monkeypatch):
    model = models.build_model("bl2", 4, **TINY)
    out = str(tmp_path / "m")
    models.save_model(model, out, dataset="camvid")
    before = _digests(out)

    def broken(self, path, *a, **kw):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(type(model), "save_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        models.save_model(model, out, dataset="camvid")
    assert _digests(out) == before
    models.load_model(out)


RESTORE_OTHER_WIDTH = """
import sys
from tests.helpers.training import TINY, tiny_config
from taplab_tf.train import Trainer
t = Trainer(tiny_config(sys.argv[1], model_kwargs=dict(TINY, width_multiplier=0.5)))
try:
    t.restore()
except ValueError as e:
    print("REFUSED", e)
"""


def test_checkpoint_of_another_network_without_its_config_is_one_line(run_copy):
    # No train_config.json to compare with: the restore itself finds the mismatch, and the
    # process ends without TF's page of 'unrestored value' warnings.
    os.remove(run_copy / "train_config.json")
    proc = subprocess.run([sys.executable, "-c", RESTORE_OTHER_WIDTH, str(run_copy)], cwd=ROOT,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT),
                          capture_output=True, text=True, timeout=300)
    assert "REFUSED" in proc.stdout and "ckpt-4 does not fit" in proc.stdout, proc.stderr[-2000:]
    assert "\n" not in proc.stdout.strip()
    assert [l for l in proc.stderr.splitlines() if "WARNING" in l] == []


def test_interrupt_right_after_a_resume_does_not_rewrite_the_good_checkpoint(run_copy,
                                                                          monkeypatch):
    before = _digests(run_copy / "checkpoints")

    def interrupted(self, iterator, n):
        raise KeyboardInterrupt
    monkeypatch.setattr(trainer_lib.Trainer, "train_steps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(run_copy, steps=6), DATA, DATA)
    assert _digests(run_copy / "checkpoints") == before
