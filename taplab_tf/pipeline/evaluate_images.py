"""Per-image evaluation of phi over a dataset split (no video): one confusion matrix over the
whole split, labels by the project's one rule (taplab_tf.ops.logits_to_labels), and the check
that a checkpoint fits the dataset's classes. experiments.evaluate_image is its command line.
"""
from __future__ import annotations

import time
from typing import Callable, Optional


def check_checkpoint(meta: dict, dataset: str, allow_other_dataset: bool = False) -> None:
    """ValueError (one line) when the checkpoint does not fit the dataset's classes."""
    from taplab_tf.data import datasets as datasets_lib
    nc = datasets_lib.num_classes(dataset)
    if int(meta.get("num_classes", -1)) != nc:
        raise ValueError(f"the checkpoint predicts {meta.get('num_classes')} classes "
                         f"(trained on {meta.get('dataset', 'an unknown dataset')}) but "
                         f"{dataset} has {nc}: use a checkpoint trained on {dataset}")
    trained_on = meta.get("dataset")
    if trained_on and trained_on != dataset:
        same_classes = (trained_on in datasets_lib.DATASET_NAMES and
                        datasets_lib.class_names(trained_on) ==
                        datasets_lib.class_names(dataset))
        if not (allow_other_dataset and same_classes):
            hint = " (pass --allow_other_dataset to evaluate it anyway)" if same_classes else ""
            raise ValueError(f"the checkpoint was trained on {trained_on}, not {dataset}{hint}")


def evaluate_dataset(model: Callable, output_stride: int, ds, num_classes: int,
                     num_images: Optional[int] = None,
                     progress: Optional[Callable[[str], None]] = print,
                     input_scale: float = 1.0):
    """Runs `model` (float32 [N,H,W,3] in [0,255] -> logits at `output_stride`) over `ds`
    (make_dataset, training=False); returns (ConfusionMatrix, images, seconds).
    input_scale: phi sees each image resized as the engine resizes a video frame
    (config.frame_stride, config.phi_input_size; area down, bilinear up), and its logits are
    labelled at that stride of the image, which the metric is computed at."""
    import tensorflow as tf

    from taplab_tf import config as config_lib
    from taplab_tf.metrics import ConfusionMatrix
    from taplab_tf.ops import logits_to_labels

    s = int(output_stride)
    stride = config_lib.frame_stride(s, input_scale)

    @tf.function(reduce_retracing=True)
    def predict(images):
        logits = model(resize_for_phi(images, s, stride), training=False)
        shape = tf.shape(images)
        return logits_to_labels(logits, shape[1], shape[2], stride)

    cm = ConfusionMatrix(num_classes)
    done, start = 0, time.perf_counter()
    every = max(1, (num_images or 0) // 20)
    next_report = every
    for images, labels in _one_line_errors(ds, tf):
        preds = predict(images)
        cm.update(labels.numpy(), preds.numpy())
        done += int(images.shape[0])
        if progress and (done >= next_report or done == num_images):
            rate = done / max(time.perf_counter() - start, 1e-9)
            total = f"/{num_images}" if num_images else ""
            progress(f"[{done}{total}] {rate:.2f} images/s, running mIoU {100 * cm.miou():.2f}")
            while next_report <= done:
                next_report += every
    return cm, done, time.perf_counter() - start


def resize_for_phi(images, output_stride: int, frame_stride: int):
    """images [N, H, W, C] as phi sees them so that each logit cell covers frame_stride pixels
    of the image (config.phi_input_size, in TF; area down, bilinear up, as the engine resizes a
    video frame). The same images where frame_stride == output_stride. Used by evaluate_dataset
    and the trainer's evaluation (TrainConfig.eval_input_scale), so both score the same input."""
    import tensorflow as tf
    s, e = int(output_stride), int(frame_stride)
    if e == s:
        return images
    shape = tf.shape(images)
    h = tf.maximum(1, (shape[1] * s + e - 1) // e)
    w = tf.maximum(1, (shape[2] * s + e - 1) // e)
    return tf.image.resize(images, tf.stack([h, w]), method="area" if e > s else "bilinear")


def _one_line_errors(ds, tf):
    """Iterates ds; a TF input-pipeline failure (e.g. an image/label size mismatch or an
    out-of-range label caught inside make_dataset) becomes a ValueError with its first line."""
    it = iter(ds)
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except tf.errors.OpError as e:
            msg = (e.message or type(e).__name__).strip().splitlines()[0]
            if "}} " in msg:
                msg = msg.split("}} ", 1)[1]
            raise ValueError(f"input pipeline: {msg}") from None
        yield item
