"""The one experiment config (taplab_tf.experiment): factories, overrides by flat name, the flat
TrainConfig it resolves to, and the apps that read flags into it."""
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from taplab_tf import config as C
from taplab_tf import experiment as E

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSET = os.path.join(ROOT, "taplab_tf", "assets", "bl2_camvid", "metrics.json")


@pytest.mark.parametrize("name", sorted(E.FACTORIES))
def test_every_factory_resolves_to_valid_configs(name):
    cfg = E.get(name)
    assert cfg.name == name
    assert cfg.model.model == cfg.taplab.model
    train = cfg.train_config(command="x")
    assert train.model == cfg.model.model and train.dataset == cfg.data.dataset
    assert train.command == "x"
    json.loads(cfg.to_json())  # serialisable


def test_unknown_factory_names_the_choices():
    with pytest.raises(ValueError, match="unknown experiment 'nope'.*camvid_bl2"):
        E.get("nope")


def test_paper_factories_hold_the_papers_settings():
    for model in ("bl1", "bl2", "bl3"):
        cfg = E.get(f"cityscapes_{model}")
        assert cfg.taplab == C.TapLabConfig(model=model)  # Table 5: GOP 12, all three modules
        assert cfg.taplab.thr_rgfs == 3.6e7 and cfg.taplab.region_shape == (512, 512)
        assert cfg.data.crop == (512, 512) and cfg.train.learning_rate == 2e-4


def test_override_takes_flat_names_and_command_line_values():
    steps = E.get("camvid_bl2").train.steps
    cfg = E.override(E.get("camvid_bl2"), {"steps": 10, "crop": ["64", "96"],
                                            "scale_range": ["1", "1.5"], "gop": 6,
                                            "model": "bl1", "depths": ["1", "1", "1", "1"]})
    assert cfg.train.steps == 10
    assert cfg.data.crop == (64, 96) and cfg.data.scale_range == (1.0, 1.5)
    assert cfg.taplab.gop == 6
    assert cfg.model.model == "bl1" and cfg.taplab.model == "bl1"  # both homes of `model`
    assert cfg.model.depths == (1, 1, 1, 1)
    assert steps != 10
    assert E.get("camvid_bl2").train.steps == steps  # the factory's own object is untouched


def test_override_rejects_unknown_names_and_bad_values():
    with pytest.raises(ValueError, match="unknown setting.*'stepz'"):
        E.override(E.ExperimentConfig(), {"stepz": 1})
    assert E.override(E.ExperimentConfig(), {"stepz": 1}, strict=False) == E.ExperimentConfig()
    with pytest.raises(ValueError, match="gop"):
        E.override(E.ExperimentConfig(), {"gop": 0})


def test_model_arguments_that_do_not_apply_are_errors():
    with pytest.raises(ValueError, match="decoder_channels: applies to bl2"):
        E.override(E.ExperimentConfig(), {"model": "bl3", "decoder_channels": 8}).train_config()
    with pytest.raises(ValueError, match="depths: applies to bl1 and bl3"):
        E.override(E.ExperimentConfig(), {"depths": [1, 1, 1, 1]}).train_config()


def test_defaults_equal_the_trainers_defaults():
    """Without --config the experiment's defaults are TrainConfig's own (one source)."""
    from taplab_tf.train import TrainConfig
    resolved = dataclasses.asdict(E.ExperimentConfig().train_config())
    plain = dataclasses.asdict(TrainConfig())
    for key in ("command", "crop", "scale_range"):
        resolved.pop(key), plain.pop(key)
    assert resolved == plain
    assert tuple(TrainConfig().crop) == E.DataConfig().crop
    assert tuple(TrainConfig().scale_range) == E.DataConfig().scale_range


@pytest.mark.skipif(not os.path.isfile(ASSET), reason="no shipped bl2_camvid metrics.json")
def test_camvid_factory_is_the_shipped_models_recipe():
    """The recipe that the flag file wraps is the one the shipped model's run recorded."""
    with open(ASSET) as f:
        shipped = json.load(f)
    train = E.get("camvid_bl2").train_config()
    assert train.model == shipped["model"] and dict(train.model_kwargs) == shipped["model_kwargs"]
    assert train.steps == shipped["steps"] and train.batch_size == shipped["batch_size"]
    assert list(train.crop) == shipped["crop"] and shipped["resumed_from_step"] == 0
    assert train.class_weighting == shipped["class_weighting"]
    for key in ("scale_range", "photometric", "learning_rate", "weight_decay", "train_split",
                "init_from", "init_skip_mismatch", "ema_decay"):
        if key in shipped:  # recorded since the run that added colour jitter (ema_decay: s8)
            value = getattr(train, key)
            assert (list(value) if isinstance(value, tuple) else value) == shipped[key], key


def test_flagfile_and_flags_resolve_like_the_factory(parse):
    from absl import flags

    from experiments import flags as flags_lib
    path = os.path.join(flags_lib.CONFIG_DIR, "cityscapes_bl3.flags")
    assert parse(f"--flagfile={path}") == E.get("cityscapes_bl3").taplab
    assert parse(f"--flagfile={path}", "--gop=6") == C.TapLabConfig(model="bl3", gop=6)
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["prog", "--config=camvid_bl2", "--thr_rgc=12"])
    cfg = flags_lib.experiment_from_flags()
    assert cfg.name == "camvid_bl2" and cfg.taplab.thr_rgc == 12
    assert cfg.train == E.get("camvid_bl2").train  # only the taplab section by default


def test_train_app_checks_the_resolved_data_dir_first(tmp_path):
    """experiments.train --config=NAME with overrides checks the resolved data folder before
    anything is written."""
    logdir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--config=camvid_bl2",
         f"--data_dir={tmp_path / 'missing'}", f"--logdir={logdir}", "--steps=3"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    # The data folder is missing: one line naming it, and nothing written.
    assert proc.returncode != 0
    assert "--data_dir" in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    assert not logdir.exists()


def test_train_app_without_logdir_or_config_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", f"--data_dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode != 0
    assert "--logdir is required" in proc.stderr.strip().splitlines()[-1]


def test_train_app_writes_the_resolved_experiment(one_clip_tree, tmp_path):
    """A real (one-step) run from a factory with overrides: <logdir>/train_experiment.json holds
    the factory's settings with exactly the given flags laid over them."""
    import shutil
    for d in ("leftImg8bit_sequence", "gtFine", "leftImg8bit"):
        shutil.copytree(os.path.join(one_clip_tree, d, "val"), os.path.join(one_clip_tree, d, "train"))
    logdir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--config=synthetic",
         f"--data_dir={one_clip_tree}", f"--logdir={logdir}", "--steps=1", "--batch_size=2",
         "--crop=32,32", "--width_multiplier=0.35", "--bn_recalibration_batches=0",
         "--image_every=0"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(logdir / "train_experiment.json") as f:
        record = json.load(f)
    assert record["app"] == "train"
    resolved = record["experiment"]
    expected = E.override(E.get("synthetic"), {
        "data_dir": one_clip_tree, "logdir": str(logdir), "steps": 1, "batch_size": 2,
        "crop": [32, 32], "width_multiplier": 0.35, "bn_recalibration_batches": 0,
        "image_every": 0})
    assert resolved == json.loads(expected.to_json())
    assert record["given_flags"]["steps"] == 1 and "lr" not in record["given_flags"]
    assert (logdir / "model" / "model.json").is_file()
