"""The training run folder (<logdir>): what is in it, read and written whole.

    train_config.json   the TrainConfig of the run (written whole, only when it changes); a
                        resume checks that it describes the same network (check_resume_fits)
    progress.json       the wall-clock seconds trained up to the newest checkpoint
    checkpoints/ckpt-N  tf.train.CheckpointManager's files (checkpoint_problem reads one back)
    model/metrics.json  written by the trainer beside the exported model (METRICS_FILE)
"""
from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import re
from typing import Optional

import tensorflow as tf

from taplab_tf.data import labels as labels_lib
from taplab_tf.io_utils import write_json

METRICS_FILE = "metrics.json"
PROGRESS_FILE = "progress.json"
CONFIG_FILE = "train_config.json"
# What a checkpoint's weights depend on: a resume with other values cannot load them.
_IDENTITY = ("model", "model_kwargs", "dataset", "num_classes")


def _write_json(path: str, obj) -> None:
    """Writes obj as JSON whole or not at all (unique temporary name, atomic rename)."""
    write_json(path, obj, indent=2, sort_keys=True, default=str)


def _finite_or_none(v):
    return float(v) if v is not None and math.isfinite(v) else None


def _checkpoint_steps(ckpt_dir: str) -> dict:
    """{step: prefix} of every ckpt-N in ckpt_dir whose .index or .data file is there."""
    found = {}
    for path in glob.glob(os.path.join(glob.escape(ckpt_dir), "ckpt-*")):
        m = re.match(r"ckpt-(\d+)\.(index|data-\d+-of-\d+)$", os.path.basename(path))
        if m:
            found[int(m.group(1))] = os.path.join(ckpt_dir, f"ckpt-{m.group(1)}")
    return found


def checkpoint_problem(prefix: str) -> Optional[str]:
    """None when the checkpoint at prefix reads back whole, else one line naming the bad file
    (missing or truncated .index or .data; every tensor is read, which checks its CRC)."""
    index = prefix + ".index"
    if not os.path.isfile(index):
        return f"{index} is missing"
    shards = glob.glob(glob.escape(prefix) + ".data-*-of-*")
    if not shards:
        return f"{prefix}.data-00000-of-00001 is missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as e:  # noqa: BLE001 -- TF raises OpError subclasses and others
        return f"{index} is damaged ({_first_line(e)})"
    try:
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except Exception as e:  # noqa: BLE001
        data = shards[0] if len(shards) == 1 else prefix + ".data-*"
        return f"{data} is damaged or truncated ({_first_line(e)})"
    return None


def _drop_unrestored_warnings(record) -> bool:
    """logging filter: False for TF's warnings about a checkpoint's unrestored values."""
    msg = str(record.msg)
    return not (msg.startswith("Detecting that an object or model or tf.train.Checkpoint is "
                               "being deleted with unrestored values")
                or msg.startswith("Value in checkpoint could not be found in the restored "
                                  "object"))


def _first_line(e) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _identity(cfg_dict: dict) -> dict:
    d = {k: cfg_dict.get(k) for k in _IDENTITY}
    d["model_kwargs"] = dict(d["model_kwargs"] or {})
    if d["num_classes"] is None and d["dataset"] in labels_lib.DATASETS:
        d["num_classes"] = labels_lib.num_classes(d["dataset"])
    return d


def check_resume_fits(cfg) -> None:
    """A logdir with checkpoints resumes only the same network: ValueError with one line saying
    what differs (before anything is written or restored)."""
    path = os.path.join(cfg.logdir, CONFIG_FILE)
    if cfg.restart or not _checkpoint_steps(os.path.join(cfg.logdir, "checkpoints")) \
            or not os.path.isfile(path):
        return
    try:
        with open(path) as f:
            old = json.load(f)
        if not isinstance(old, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is unreadable ({_first_line(e)}); it describes the "
                         f"checkpoints in {cfg.logdir}: restore it, or pass --restart") from None
    theirs, mine = _identity(old), _identity(dataclasses.asdict(cfg))
    diffs = []
    for key in _IDENTITY:
        if key == "model_kwargs":
            for k in sorted(set(theirs[key]) | set(mine[key])):
                if theirs[key].get(k) != mine[key].get(k):
                    diffs.append(f"{k} {theirs[key].get(k)} -> {mine[key].get(k)}")
        elif theirs[key] != mine[key]:
            diffs.append(f"{key} {theirs[key]} -> {mine[key]}")
    if diffs:
        raise ValueError(f"{cfg.logdir} holds checkpoints of another network ("
                         f"{', '.join(diffs)}); use another --logdir, or --restart to train "
                         f"from step 0 over them")


def _write_progress(logdir: str, step: int, seconds: float) -> None:
    """<logdir>/progress.json: the wall-clock seconds trained up to the checkpoint at step."""
    _write_json(os.path.join(logdir, PROGRESS_FILE),
                {"step": int(step), "train_seconds": round(float(seconds), 1)})


def _read_progress(logdir: str, step: int) -> float:
    """Seconds already trained before a resume at `step` (0 for a fresh run or no record)."""
    if step <= 0:
        return 0.0
    try:
        with open(os.path.join(logdir, PROGRESS_FILE)) as f:
            record = json.load(f)
        return float(record["train_seconds"]) if int(record["step"]) <= step else 0.0
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _write_config(cfg) -> None:
    """<logdir>/train_config.json, written whole, and only when it changes."""
    path = os.path.join(cfg.logdir, CONFIG_FILE)
    new = json.loads(json.dumps(dataclasses.asdict(cfg), default=list))
    try:
        with open(path) as f:
            if json.load(f) == new:
                return
    except (OSError, ValueError):
        pass
    write_json(path, new, indent=2)
