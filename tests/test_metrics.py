"""ConfusionMatrix: hand-computed example, an independent per-class computation, ignore handling,
merge, JSON, and the TF batch variant."""
import json
import math

import numpy as np
import pytest

from taplab_tf.metrics import ConfusionMatrix, batch_confusion_matrix


def _reference_iou(labels, preds, num_classes, ignore=255):
    """Straightforward per-class loops (the Cityscapes convention, written independently)."""
    labels = np.asarray(labels).ravel()
    preds = np.asarray(preds).ravel()
    valid = labels != ignore
    out = []
    for k in range(num_classes):
        tp = np.sum(valid & (labels == k) & (preds == k))
        fp = np.sum(valid & (labels != k) & (preds == k))
        fn = np.sum(valid & (labels == k) & (preds != k))
        out.append(tp / (tp + fp + fn) if tp + fp + fn else float("nan"))
    return np.array(out)


def test_hand_computed_example():
    labels = np.array([[0, 0, 1], [1, 2, 255]])
    preds = np.array([[0, 1, 1], [1, 0, 2]])
    cm = ConfusionMatrix(4).update(labels, preds)
    # class 0: TP 1, FN 1 (0->1), FP 1 (2->0) -> 1/3;  class 1: TP 2, FP 1 -> 2/3;
    # class 2: TP 0, FN 1 -> 0 (the 2 predicted on the ignored pixel is NOT a false positive);
    # class 3: absent everywhere -> NaN, left out of the mean.
    iou = cm.iou()
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 0.0])
    assert math.isnan(iou[3])
    assert cm.miou() == pytest.approx(1 / 3)
    assert cm.pixel_accuracy() == pytest.approx(3 / 5)
    assert cm.num_pixels == 5
    np.testing.assert_array_equal(cm.matrix, [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0],
                                              [0, 0, 0, 0]])


def test_random_against_reference_and_merge():
    rng = np.random.default_rng(0)
    c = 19
    total = ConfusionMatrix(c)
    parts = [ConfusionMatrix(c), ConfusionMatrix(c)]
    all_l, all_p = [], []
    for i in range(6):
        labels = rng.integers(0, c, size=(2, 37, 53)).astype(np.uint8)
        labels[rng.random(labels.shape) < 0.2] = 255
        labels[labels == 5] = 255          # class 5 never in the ground truth ...
        preds = rng.integers(0, c, size=labels.shape)
        preds[preds == 7] = 8              # ... class 7 never predicted
        labels[labels == 7] = 8            # class 7 absent from both -> NaN
        total.update(labels, preds)
        parts[i % 2].update(labels, preds)
        all_l.append(labels)
        all_p.append(preds)
    ref = _reference_iou(np.concatenate(all_l), np.concatenate(all_p), c)
    np.testing.assert_allclose(total.iou(), ref, equal_nan=True)
    assert math.isnan(total.iou()[7]) and not math.isnan(total.iou()[5])
    assert total.iou()[5] == 0.0           # predicted but absent from GT: IoU 0, counted
    assert total.miou() == pytest.approx(np.nanmean(ref))
    merged = parts[0].merge(parts[1])
    np.testing.assert_array_equal(merged.matrix, total.matrix)
    lab = np.concatenate(all_l).ravel()
    prd = np.concatenate(all_p).ravel()
    v = lab != 255
    assert total.pixel_accuracy() == pytest.approx(np.mean(lab[v] == prd[v]))


def test_ignored_prediction_is_false_negative_only():
    cm = ConfusionMatrix(2).update(np.array([0, 0, 1, 1]), np.array([0, 255, 1, 1]))
    np.testing.assert_allclose(cm.iou(), [0.5, 1.0])
    assert cm.num_pixels == 4 and cm.pixel_accuracy() == pytest.approx(0.75)


def test_empty_and_errors():
    cm = ConfusionMatrix(3)
    cm.update(np.full((4, 4), 255), np.zeros((4, 4), int))
    assert math.isnan(cm.miou()) and cm.num_pixels == 0
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="label value 7"):
        cm.update(np.array([7]), np.array([0]))
    with pytest.raises(ValueError, match="predicted value 3"):
        cm.update(np.array([0]), np.array([3]))
    with pytest.raises(ValueError, match="integer"):
        cm.update(np.zeros(2, int), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="num_classes"):
        cm.merge(ConfusionMatrix(4))
    with pytest.raises(ValueError, match="ignore_label"):
        ConfusionMatrix(3, ignore_label=1)


def test_to_dict_is_json():
    cm = ConfusionMatrix(3).update(np.array([0, 1]), np.array([0, 1]))
    d = cm.to_dict(["a", "b", "c"])
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["per_class_iou"] == {"a": 1.0, "b": 1.0, "c": None}
    assert back["miou"] == 1.0 and back["num_classes_evaluated"] == 2
    with pytest.raises(ValueError, match="class names"):
        cm.to_dict(["a"])


def test_tf_batch_confusion_matrix_matches_numpy():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, size=(2, 9, 11)).astype(np.uint8)
    labels[labels == 4] = 255
    preds = rng.integers(0, 4, size=labels.shape).astype(np.int32)
    m = batch_confusion_matrix(labels, preds, 4).numpy()
    ref = ConfusionMatrix(4).update(labels, preds)
    np.testing.assert_array_equal(m, ref.matrix)
    acc = ConfusionMatrix(4).update_from_matrix(m)
    np.testing.assert_allclose(acc.iou(), ref.iou(), equal_nan=True)
