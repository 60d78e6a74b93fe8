"""SavedModel export of phi, for TF Serving and for workers that need no Keras model code.

    export_saved_model(model, "exported/bl2_camvid", metadata)   # from load_model(...)
    phi = load_saved_model("exported/bl2_camvid")                # .output_stride, .metadata
    engine = TapLabEngine(phi, config)                           # runs like the Keras model

Signatures:
  serving_default(images: uint8 [N, H, W, 3] RGB) -> {"logits": float32 [N, h, w, C] at the
      model's output stride, "labels": uint8 [N, H, W] trainIds}; labels = argmax of the logits
      upsampled bilinearly (half-pixel centres) to (h*s, w*s) and cropped to H x W, the same
      logits-to-labels rule as the engine's output step, in plain TF ops (TF Serving has no
      custom ops).
  logits(images: float32 [N, H, W, 3] in [0, 255]) -> float32 logits: what the engine runs.

The model's model.json (class names, dataset, training command, ...) travels inside the
SavedModel as assets.extra/taplab_model.json. The export is written in a temporary folder beside
the target and renamed when complete; an existing target is never overwritten.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Optional

import tensorflow as tf

METADATA_FILE = "taplab_model.json"


class _Serving(tf.Module):
    def __init__(self, model: tf.keras.Model, output_stride: int):
        super().__init__()
        self.model = model
        self.stride = int(output_stride)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32,
                                                name="images")])
    def logits(self, images):
        return self.model(images, training=False)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8,
                                                name="images")])
    def serve(self, images):
        from taplab_tf.ops.upsample_argmax import logits_to_labels
        logits = self.model(tf.cast(images, tf.float32), training=False)
        shape = tf.shape(images)
        # plain TF ops (backend='tf'): TF Serving has no custom ops
        labels = logits_to_labels(logits, shape[1], shape[2], self.stride, backend="tf")
        return {"logits": tf.identity(logits, name="logits"),
                "labels": tf.cast(labels, tf.uint8, name="labels")}


def export_saved_model(model: tf.keras.Model, directory: str,
                       metadata: Optional[dict] = None) -> str:
    """Writes phi as a SavedModel at `directory` (which must not exist); returns it."""
    stride = int(getattr(model, "output_stride", 0) or (metadata or {}).get("output_stride", 0))
    if stride <= 0:
        raise ValueError("export: the model has no output_stride (build it with "
                         "taplab_tf.models.build_model or load_model)")
    target = os.path.abspath(directory)
    if os.path.exists(target):
        raise ValueError(f"export: {directory} already exists; choose a new folder")
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(target) + ".", dir=parent)
    try:
        module = _Serving(model, stride)
        tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve,
                                                     "logits": module.logits})
        meta = dict(metadata or {})
        meta["output_stride"] = stride
        meta.setdefault("num_classes", int(model.outputs[0].shape[-1]) if model.outputs else None)
        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, METADATA_FILE), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        os.rename(tmp, target)  # a folder: rename refuses to replace a non-empty target
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def is_saved_model(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "saved_model.pb"))


class SavedModelPhi:
    """phi served from an exported SavedModel, callable like the Keras model:
    phi(x float32 [N,H,W,3] in [0, 255], training=False) -> logits. Has .output_stride,
    .num_classes, .outputs (for the engine) and .metadata (the model.json it was exported with)."""

    def __init__(self, directory: str):
        if not is_saved_model(directory):
            raise ValueError(f"load_saved_model: {directory} holds no saved_model.pb")
        try:
            self._loaded = tf.saved_model.load(directory)
            self._logits = self._loaded.signatures["logits"]
        except Exception as e:  # noqa: BLE001 -- TF raises many types; one line for the caller
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"load_saved_model: cannot load {directory}: {first}") from None
        path = os.path.join(directory, "assets.extra", METADATA_FILE)
        try:
            with open(path) as f:
                self.metadata = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"load_saved_model: {path} is missing or not JSON ({e})") from None
        self.output_stride = int(self.metadata["output_stride"])
        self.num_classes = int(self.metadata["num_classes"])
        spec = self._logits.structured_outputs
        key = next(iter(spec))
        self._key = key
        self.outputs = [tf.TensorSpec([None, None, None, self.num_classes], tf.float32)]

    def __call__(self, images, training: bool = False):
        return self._logits(images=tf.cast(images, tf.float32))[self._key]


def load_saved_model(directory: str) -> SavedModelPhi:
    return SavedModelPhi(directory)
