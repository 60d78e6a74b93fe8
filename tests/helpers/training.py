"""Tiny training configurations and a constant data stream (the training tests)."""
import os

import numpy as np
import tensorflow as tf

from taplab_tf.train import TrainConfig

TINY = dict(width_multiplier=0.35, decoder_channels=8)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def constant_data(batch=2, size=64, num_classes=4, seed=0, identical=False):
    """One fixed batch repeated: the stream is the same whatever step a run starts from."""
    rng = np.random.default_rng(seed)
    n = 1 if identical else batch
    images = rng.uniform(0, 255, (n, size, size, 3)).astype(np.float32)
    labels = rng.integers(0, num_classes, (n, size, size)).astype(np.uint8)
    labels[:, :4] = 255
    if identical:
        images, labels = np.repeat(images, batch, 0), np.repeat(labels, batch, 0)
    return tf.data.Dataset.from_tensors((images, labels)).repeat()


def tiny_config(logdir, **kw):
    base = dict(model="bl2", model_kwargs=TINY, dataset="camvid", num_classes=4, logdir=str(logdir),
                steps=4, batch_size=2, crop=(64, 64), learning_rate=1e-3, log_every=1,
                checkpoint_every=2, image_every=2, val_batches=1, final_val_batches=1,
                bn_recalibration_batches=2, command="pytest")
    base.update(kw)
    return TrainConfig(**base)


def tiny_checkpoint(path, dataset):
    """A small BL2 (width 0.35, untrained) saved with save_model for `dataset`'s classes: what
    the app tests load with --checkpoint. Returns the path as a str."""
    from taplab_tf import models
    from taplab_tf.data import labels
    models.save_model(models.build_model("bl2", labels.num_classes(dataset),
                                         width_multiplier=0.35), str(path), dataset=dataset)
    return str(path)
