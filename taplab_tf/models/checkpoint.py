"""save_model / load_model: a model directory = weights.h5 + model.json.

model.json holds {"format": "taplab-model-v1", "model", "num_classes", "kwargs",
"output_stride", "weights", "weights_sha256"} plus whatever metadata the caller passes (dataset,
command, steps, val_miou, ...). load_model rebuilds the network from it with build_model and loads
the weights; any problem (missing or corrupt file, other model or class count) is one ValueError.
"""
from __future__ import annotations

import hashlib
import json
import os

import tensorflow as tf

from taplab_tf import config as config_lib
from taplab_tf.models.builder import build_model

FORMAT = "taplab-model-v1"
METADATA_FILE = "model.json"
WEIGHTS_FILE = "weights.h5"
_RESERVED = ("format", "model", "num_classes", "kwargs", "output_stride", "weights",
             "weights_sha256")


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "item"):  # numpy / tf scalars
        return v.item()
    return v


def save_model(model: tf.keras.Model, directory: str, **metadata) -> str:
    """Writes directory/weights.h5 and directory/model.json; returns the directory."""
    spec = getattr(model, "taplab_spec", None)
    if spec is None:
        raise ValueError("save_model: the model was not made by taplab_tf.models.build_model "
                         "(no taplab_spec attribute)")
    clash = sorted(set(metadata) & set(_RESERVED))
    if clash:
        raise ValueError(f"save_model: metadata keys {clash} are reserved")
    from taplab_tf.io_utils import atomic_write, write_json
    os.makedirs(directory, exist_ok=True)
    weights = os.path.join(directory, WEIGHTS_FILE)
    # Each file is replaced whole (unique temporary name, then os.replace); model.json goes last
    # and carries the weights' sha256, so a kill between the two is reported by load_model as a
    # corrupt weights file, never loaded silently.
    with atomic_write(weights) as tmp:
        model.save_weights(tmp)
        digest = _sha256(tmp)
    meta = {"format": FORMAT, **spec, "weights": WEIGHTS_FILE, "weights_sha256": digest}
    meta.update(_jsonable(metadata))
    write_json(os.path.join(directory, METADATA_FILE), _jsonable(meta), indent=2,
               sort_keys=True)
    return directory


def read_metadata(directory: str) -> dict:
    """model.json of a save_model directory, validated (ValueError with one line otherwise)."""
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"load_model: {path} not found (not a save_model directory)")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"load_model: {path} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"load_model: {path} is not a {FORMAT} file")
    missing = [k for k in ("model", "num_classes", "kwargs") if k not in meta]
    if missing:
        raise ValueError(f"load_model: {path} lacks {missing}")
    if "input_scale" in meta:  # the trainer's eval_input_scale (data.labels.phi_frame_height)
        scale = meta["input_scale"]
        if not config_lib.valid_input_scale(scale):
            raise ValueError(f"load_model: {path}: input_scale must be a number in (0, 4], "
                             f"got {scale!r}")
    return meta


def load_model(directory: str, model: str | None = None, num_classes: int | None = None):
    """Rebuilds the saved network and loads its weights -> (keras model, metadata dict).

    model / num_classes, when given, must match the checkpoint (ValueError otherwise).
    """
    meta = read_metadata(directory)
    if model is not None and meta["model"] != model:
        raise ValueError(f"load_model: {directory} holds a {meta['model']} checkpoint, "
                         f"not {model}")
    if num_classes is not None and int(meta["num_classes"]) != int(num_classes):
        raise ValueError(f"load_model: {directory} was trained for {meta['num_classes']} "
                         f"classes, not {num_classes}")
    weights = os.path.join(directory, meta.get("weights", WEIGHTS_FILE))
    if not os.path.isfile(weights):
        raise ValueError(f"load_model: weights file {weights} not found")
    digest = meta.get("weights_sha256")
    if digest and _sha256(weights) != digest:
        raise ValueError(f"load_model: {weights} is corrupt (sha256 differs from model.json)")
    net = build_model(meta["model"], int(meta["num_classes"]), **meta["kwargs"])
    try:
        net.load_weights(weights)
    except Exception as e:  # h5py / Keras raise many types; report one line.
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"load_model: cannot load {weights} into {meta['model']} with "
                         f"{meta['num_classes']} classes: {first}") from None
    return net, meta
