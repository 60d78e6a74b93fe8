"""Segmentation metrics: a confusion matrix accumulated over a whole split, per-class IoU, mIoU.

Convention (the one of cityscapesScripts' evalPixelLevelSemanticLabeling.py, which reports the
Cityscapes "IoU class" number):

* One confusion matrix is accumulated over ALL pixels of ALL images of the split (not a mean of
  per-image IoUs). Rows are ground truth, columns are predictions.
* Pixels whose ground truth is `ignore_label` (255) are skipped entirely: they are neither
  true/false positives nor negatives for any class.
* For class k:  TP = M[k, k];  FN = (sum of row k) - TP;  FP = (sum of column k over the rows of
  evaluated (non-ignored) ground-truth classes) - TP;  IoU_k = TP / (TP + FP + FN).
* A prediction equal to `ignore_label` ("no prediction", e.g. a void class in labelId space) on a
  pixel with a valid ground truth k counts as a false negative of k and a false positive of no
  class, exactly as a prediction of an ignoreInEval labelId does in the official script.
* If TP + FP + FN == 0 (class k neither in the ground truth nor predicted on any evaluated
  pixel) IoU_k is NaN, and the mean IoU is the mean over the classes with a finite IoU (the
  official getScoreAverage drops NaN scores). A class present only in the ground truth gets
  IoU 0 and IS counted; a class only predicted (on evaluated pixels) gets IoU 0 and is counted.
* Pixel accuracy = sum_k TP_k / number of evaluated pixels (ignored ground truth excluded).
  The instance-level iIoU of the official script is not computed (it needs instance ids).

API:
  ConfusionMatrix(num_classes, ignore_label=255)
    .update(labels, preds)       numpy / eager tensors of the same shape, any integer dtype
    .update_from_matrix(m)       add a [C, C] matrix (e.g. from `batch_confusion_matrix`)
    .merge(other)                add another ConfusionMatrix (accumulation across workers)
    .iou() -> float64 [C] (NaN = absent), .miou(), .pixel_accuracy(), .class_accuracy()
    .to_dict(class_names) -> JSON-ready dict (NaN written as null), .reset()
    .matrix int64 [C, C], .unpredicted int64 [C] (valid ground truth predicted as ignore_label)
  batch_confusion_matrix(labels, preds, num_classes, ignore_label=255) -> tf int64 [C, C]
    (tf.function, for the training loop: ignore-masked tf.math.confusion_matrix).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import numpy as np

from taplab_tf.data.labels import IGNORE_LABEL


class ConfusionMatrix:
    """Confusion matrix over a split (rows: ground truth, columns: prediction)."""

    def __init__(self, num_classes: int, ignore_label: int = IGNORE_LABEL):
        num_classes = int(num_classes)
        if num_classes < 1:
            raise ValueError(f"ConfusionMatrix: num_classes must be >= 1, got {num_classes}")
        if 0 <= ignore_label < num_classes:
            raise ValueError(f"ConfusionMatrix: ignore_label {ignore_label} is a valid class id "
                             f"(num_classes={num_classes}); use a value >= num_classes")
        self.num_classes = num_classes
        self.ignore_label = int(ignore_label)
        self.reset()

    def reset(self) -> "ConfusionMatrix":
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.unpredicted = np.zeros(self.num_classes, dtype=np.int64)
        return self

    # ---------------------------------------------------------------- accumulation
    def update(self, labels, preds) -> "ConfusionMatrix":
        """Adds one image or batch. `labels` may contain ignore_label (skipped); `preds` may
        contain ignore_label (counted as a false negative of the true class)."""
        labels = np.asarray(labels)
        preds = np.asarray(preds)
        if labels.shape != preds.shape:
            raise ValueError(f"ConfusionMatrix.update: labels shape {labels.shape} != preds shape "
                             f"{preds.shape} (upsample the predictions to the label size first)")
        if labels.dtype.kind not in "iub" or preds.dtype.kind not in "iub":
            raise ValueError(f"ConfusionMatrix.update: labels and preds must be integer class ids, "
                             f"got {labels.dtype} and {preds.dtype} (take the argmax of logits)")
        c = self.num_classes
        labels = labels.reshape(-1).astype(np.int64, copy=False)
        preds = preds.reshape(-1).astype(np.int64, copy=False)
        valid = labels != self.ignore_label
        labels = labels[valid]
        preds = preds[valid]
        if labels.size == 0:
            return self
        if labels.min() < 0 or labels.max() >= c:
            bad = labels[(labels < 0) | (labels >= c)][0]
            raise ValueError(f"ConfusionMatrix.update: label value {bad} is outside 0..{c - 1} "
                             f"and is not the ignore label {self.ignore_label}")
        no_pred = preds == self.ignore_label
        if no_pred.any():
            self.unpredicted += np.bincount(labels[no_pred], minlength=c)
            keep = ~no_pred
            labels, preds = labels[keep], preds[keep]
            if labels.size == 0:
                return self
        if preds.min() < 0 or preds.max() >= c:
            bad = preds[(preds < 0) | (preds >= c)][0]
            raise ValueError(f"ConfusionMatrix.update: predicted value {bad} is outside "
                             f"0..{c - 1} and is not the ignore label {self.ignore_label}")
        self.matrix += np.bincount(c * labels + preds, minlength=c * c).reshape(c, c)
        return self

    def update_from_matrix(self, matrix) -> "ConfusionMatrix":
        """Adds a [C, C] confusion matrix (rows ground truth), e.g. `batch_confusion_matrix`."""
        matrix = np.asarray(matrix)
        if matrix.shape != self.matrix.shape:
            raise ValueError(f"ConfusionMatrix.update_from_matrix: shape {matrix.shape} != "
                             f"{self.matrix.shape}")
        if matrix.dtype.kind not in "iu" or (matrix < 0).any():
            raise ValueError("ConfusionMatrix.update_from_matrix: expects non-negative integer "
                             "counts")
        self.matrix += matrix.astype(np.int64)
        return self

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Adds another ConfusionMatrix (same num_classes and ignore_label) into this one."""
        if not isinstance(other, ConfusionMatrix):
            raise ValueError(f"ConfusionMatrix.merge: expects a ConfusionMatrix, got "
                             f"{type(other).__name__}")
        if (other.num_classes, other.ignore_label) != (self.num_classes, self.ignore_label):
            raise ValueError(f"ConfusionMatrix.merge: num_classes/ignore_label "
                             f"{other.num_classes}/{other.ignore_label} != "
                             f"{self.num_classes}/{self.ignore_label}")
        self.matrix += other.matrix
        self.unpredicted += other.unpredicted
        return self

    # ---------------------------------------------------------------- scores
    @property
    def num_pixels(self) -> int:
        """Evaluated pixels (ground truth not ignored)."""
        return int(self.matrix.sum() + self.unpredicted.sum())

    def iou(self) -> np.ndarray:
        """Per-class IoU (float64 [C]); NaN where TP + FP + FN == 0."""
        tp = np.diag(self.matrix).astype(np.float64)
        fn = self.matrix.sum(axis=1) + self.unpredicted - tp
        fp = self.matrix.sum(axis=0) - tp
        denom = tp + fp + fn
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)

    def miou(self) -> float:
        """Mean of the finite per-class IoUs (NaN if no class has any pixel)."""
        iou = self.iou()
        valid = ~np.isnan(iou)
        return float(iou[valid].mean()) if valid.any() else float("nan")

    def pixel_accuracy(self) -> float:
        n = self.num_pixels
        return float(np.trace(self.matrix) / n) if n else float("nan")

    def class_accuracy(self) -> np.ndarray:
        """Per-class recall TP / (TP + FN); NaN for classes absent from the ground truth."""
        tp = np.diag(self.matrix).astype(np.float64)
        gt = self.matrix.sum(axis=1) + self.unpredicted
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(gt > 0, tp / np.maximum(gt, 1), np.nan)

    def to_dict(self, class_names: Optional[Sequence[str]] = None) -> Dict:
        """JSON-ready summary; NaN (absent class) is written as None (null)."""
        if class_names is None:
            class_names = [str(i) for i in range(self.num_classes)]
        if len(class_names) != self.num_classes:
            raise ValueError(f"ConfusionMatrix.to_dict: {len(class_names)} class names for "
                             f"{self.num_classes} classes")

        def _f(x):
            x = float(x)
            return None if math.isnan(x) else x

        iou = self.iou()
        return {
            "miou": _f(self.miou()),
            "pixel_accuracy": _f(self.pixel_accuracy()),
            "per_class_iou": {name: _f(v) for name, v in zip(class_names, iou)},
            "num_classes_evaluated": int((~np.isnan(iou)).sum()),
            "num_pixels": self.num_pixels,
            "class_names": list(class_names),
            "confusion_matrix": self.matrix.tolist(),
            "unpredicted": self.unpredicted.tolist(),
        }

    def __repr__(self):
        return (f"ConfusionMatrix(num_classes={self.num_classes}, pixels={self.num_pixels}, "
                f"miou={self.miou():.4f})")


def batch_confusion_matrix(labels, preds, num_classes: int, ignore_label: int = IGNORE_LABEL):
    """[C, C] int64 confusion matrix of one batch as a TF op (rows ground truth), skipping pixels
    whose label is `ignore_label`. Predictions must be in 0..C-1 (an argmax). Usable inside a
    tf.function / training step; accumulate with ConfusionMatrix.update_from_matrix."""
    import tensorflow as tf  # local: metrics stays importable (and fast) without TF
    return _tf_batch_confusion_matrix(tf)(labels, preds, int(num_classes), int(ignore_label))


_TF_FN = None


def _tf_batch_confusion_matrix(tf):
    global _TF_FN
    if _TF_FN is None:
        @tf.function(reduce_retracing=True)
        def fn(labels, preds, num_classes, ignore_label):
            labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
            preds = tf.reshape(tf.cast(preds, tf.int32), [-1])
            valid = tf.not_equal(labels, ignore_label)
            return tf.math.confusion_matrix(tf.boolean_mask(labels, valid),
                                            tf.boolean_mask(preds, valid),
                                            num_classes=num_classes, dtype=tf.int64)
        _TF_FN = fn
    return _TF_FN
