"""Segmentation loss (Eq. 5) and the in-graph confusion matrix used during training."""
from __future__ import annotations

import tensorflow as tf

from taplab_tf.data.labels import IGNORE_LABEL


def upsample_logits(logits: tf.Tensor, size) -> tf.Tensor:
    """Bilinear (half-pixel centres) resize of [N,h,w,C] logits to the label size (H, W)."""
    return tf.image.resize(logits, size, method="bilinear")


def masked_cross_entropy_sum(labels: tf.Tensor, logits: tf.Tensor,
                             ignore_label: int = IGNORE_LABEL, class_weights=None):
    """(sum of per-pixel softmax cross-entropy over labelled pixels, number of labelled pixels).

    labels [N,H,W] integer trainIds, ignore_label masked out; logits [N,h,w,C] at any stride are
    upsampled to H x W first (the paper's Eq. 5 at full label resolution). Returning the sum and
    the count lets a distributed step divide by the global count: the loss is then the same mean
    over labelled pixels whatever the number of replicas, and a batch with no labelled pixel
    contributes exactly zero (no NaN).
    class_weights: optional [C] per-class weights (median-frequency balancing): each labelled
    pixel's cross-entropy is scaled by its class's weight; the count stays the pixel count.
    """
    labels = tf.cast(labels, tf.int32)
    logits = upsample_logits(tf.cast(logits, tf.float32), tf.shape(labels)[1:3])
    valid = tf.not_equal(labels, ignore_label)
    safe = tf.where(valid, labels, tf.zeros_like(labels))
    num_classes = tf.shape(logits)[-1]
    valid = tf.logical_and(valid, safe < num_classes)
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.where(valid, safe, 0),
                                                          logits=logits)
    mask = tf.cast(valid, tf.float32)
    if class_weights is not None:
        weights = tf.constant(class_weights, tf.float32) if not isinstance(
            class_weights, tf.Tensor) else tf.cast(class_weights, tf.float32)
        mask_w = mask * tf.gather(weights, tf.where(valid, safe, 0))
        return tf.reduce_sum(xent * mask_w), tf.reduce_sum(mask)
    return tf.reduce_sum(xent * mask), tf.reduce_sum(mask)


def masked_cross_entropy(labels, logits, ignore_label: int = IGNORE_LABEL) -> tf.Tensor:
    """Mean softmax cross-entropy over labelled pixels; 0 when no pixel is labelled."""
    total, count = masked_cross_entropy_sum(labels, logits, ignore_label)
    return tf.math.divide_no_nan(total, count)


def confusion(labels, logits, num_classes: int, ignore_label: int = IGNORE_LABEL,
              output_stride: int | None = None) -> tf.Tensor:
    """int64 [C, C] confusion (rows = ground truth) of the predicted labels vs labels.

    With output_stride (the model's), the labels follow the project's one rule
    (taplab_tf.ops.logits_to_labels: upsample to the stride's frame, argmax, crop), so training
    validation agrees with evaluate_image, evaluate and the engine at any size; without it the
    logits are resized straight to the label size."""
    labels = tf.cast(labels, tf.int32)
    if output_stride:
        from taplab_tf.ops.upsample_argmax import logits_to_labels
        shape = tf.shape(labels)
        preds = logits_to_labels(tf.cast(logits, tf.float32), shape[1], shape[2],
                                 int(output_stride), backend="tf")
    else:
        preds = tf.argmax(upsample_logits(tf.cast(logits, tf.float32), tf.shape(labels)[1:3]),
                          axis=-1, output_type=tf.int32)
    valid = tf.logical_and(tf.not_equal(labels, ignore_label), labels < num_classes)
    return tf.math.confusion_matrix(tf.boolean_mask(labels, valid),
                                    tf.boolean_mask(preds, valid),
                                    num_classes=num_classes, dtype=tf.int64)


def miou_from_confusion(cm) -> float:
    """Mean IoU over the classes that occur (in ground truth or prediction)."""
    import numpy as np
    cm = np.asarray(cm, dtype=np.float64)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean()) if present.any() else 0.0
