"""tf.data input pipelines for Cityscapes, the synthetic Cityscapes-layout tree and CamVid.

make_dataset(dataset, data_dir, split, training, batch_size, crop_size=None,
             scale_range=(0.5, 2.0), shuffle_seed=None, ...) -> tf.data.Dataset yielding
  (image float32 [N, H, W, 3] RGB in [0, 255], label uint8 [N, H, W] trainIds, 255 = ignore).

Images are NOT mean-subtracted or scaled: the models normalise inside (they take [0, 255]).

training=True (the paper's augmentation), per image, in this order:
  1. random scale s ~ U[scale_range] (default [0.5, 2.0]); image bilinear, label nearest neighbour;
  2. random crop of crop_size (default 800x800 for cityscapes/synthetic, 600x600 for camvid)
     from the scaled image padded bottom/right up to the crop size where it is smaller: padding
     is the ImageNet mean pixel in the image (~0 after the model's normalisation) and 255 in the
     label (the window is sliced first and only it is padded);
  3. random horizontal flip (p = 0.5) of image and label together.
  Then shuffle (whole file list, reshuffled each epoch), batch with drop_remainder=True (static
  shapes). With shuffle_seed set, the order AND the augmentation are deterministic: every
  image's random draws come from a stateless seed taken from
  tf.data.Dataset.random(shuffle_seed), so two datasets built with the same seed yield identical
  batches, also with parallel decoding. The dataset is finite (one epoch); call .repeat() for more.
training=False: full-size images, no augmentation, file order, batch_size images per batch
  (sizes must agree within a batch: use batch_size=1 for mixed sizes, or image_size=(H, W) to
  resize everything first), no drop_remainder.

Decoding (tf.io PNG decoding, labelId/void mapping by lookup table) runs with
num_parallel_calls=AUTOTUNE and the result is prefetched.

Bad input fails when the dataset is built, with one line naming the problem: unknown dataset,
missing directory or split, image without label (FileNotFoundError / ValueError). CamVid label
values above 11 are checked eagerly by default (validate_labels; ~1 s for the shared copy) and
again inside the pipeline (InvalidArgumentError naming the file).

Also: num_classes(dataset), class_names(dataset), file_pairs(dataset, data_dir, split),
default_crop_size(dataset), IMAGENET_MEAN.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from taplab_tf.data import camvid as camvid_lib
from taplab_tf.data import cityscapes as cityscapes_lib
from taplab_tf.data import labels as labels_lib

DATASET_NAMES = labels_lib.DATASET_NAMES
# RGB mean of ImageNet in [0, 255]: the padding value of augmented images, and the mean the
# networks normalise their input with (taplab_tf.models.networks imports it from here).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
_DEFAULT_CROP = {"cityscapes": (800, 800), "synthetic": (800, 800), "camvid": (600, 600)}


def _check_dataset(dataset: str) -> str:
    if dataset not in DATASET_NAMES:
        raise ValueError(f"dataset: unknown {dataset!r}; choose from {list(DATASET_NAMES)}")
    return dataset


def num_classes(dataset: str) -> int:
    return labels_lib.num_classes(_check_dataset(dataset))


def class_names(dataset: str) -> Tuple[str, ...]:
    return tuple(labels_lib.class_names(_check_dataset(dataset)))


def default_crop_size(dataset: str) -> Tuple[int, int]:
    return _DEFAULT_CROP[_check_dataset(dataset)]


def file_pairs(dataset: str, data_dir: str, split: str,
               use_sequence_frames: bool = False) -> List[Tuple[str, str]]:
    """Sorted (image path, label path) pairs of a split. use_sequence_frames (cityscapes /
    synthetic only): all labelled leftImg8bit_sequence frames instead of the annotated images.
    'a+b' is the union of splits a and b (e.g. CamVid's usual 'train+val' for a final model)."""
    _check_dataset(dataset)
    if "+" in split:
        parts = split.split("+")
        if any(not p for p in parts) or len(set(parts)) != len(parts):
            raise ValueError(f"file_pairs: split {split!r} must name distinct splits joined by "
                             f"'+', e.g. 'train+val'")
        return sorted({pair for p in parts
                       for pair in file_pairs(dataset, data_dir, p, use_sequence_frames)})
    if dataset == "camvid":
        if use_sequence_frames:
            raise ValueError("file_pairs: use_sequence_frames applies to cityscapes/synthetic, "
                             "not camvid")
        return camvid_lib.image_label_pairs(data_dir, split)
    return cityscapes_lib.image_label_pairs(data_dir, split,
                                           use_sequence_frames=use_sequence_frames)


def _label_lut(dataset: str) -> np.ndarray:
    if dataset == "camvid":
        lut = np.full(256, labels_lib.IGNORE_LABEL, dtype=np.uint8)
        lut[:labels_lib.CAMVID_VOID] = np.arange(labels_lib.CAMVID_VOID, dtype=np.uint8)
        return lut
    return labels_lib.CITYSCAPES_LABEL_ID_TO_TRAIN_ID


def _pair(value, name) -> Tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"make_dataset: {name} must be an int or (height, width), got "
                         f"{value!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"make_dataset: {name} must be positive, got {value!r}")
    return h, w


def make_dataset(dataset: str, data_dir: str, split: str, training: bool, batch_size: int,
                 crop_size: Union[None, int, Sequence[int]] = None,
                 scale_range: Sequence[float] = (0.5, 2.0),
                 shuffle_seed: Optional[int] = None,
                 random_flip: bool = True,
                 shuffle: Optional[bool] = None,
                 use_sequence_frames: bool = False,
                 limit: Optional[int] = None,
                 validate_labels: Optional[bool] = None,
                 pad_value: Sequence[float] = IMAGENET_MEAN,
                 image_size: Union[None, int, Sequence[int]] = None,
                 photometric: float = 0.0):
    """See the module docstring. `shuffle` defaults to `training`; `limit` keeps the first N
    file pairs (in sorted order, before shuffling); validate_labels defaults to True for camvid
    (eager value check of every label file), False otherwise (Cityscapes labelIds of any value
    are valid: unknown ids map to 255). image_size=(H, W): every image (bilinear) and label
    (nearest) is first resized to it, e.g. to batch or to evaluate at a lower resolution (the
    metric is then computed at that resolution, not the original one). photometric=s in [0, 1]
    (training only): colour jitter of strength s on the crop, see _photometric."""
    import tensorflow as tf

    _check_dataset(dataset)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"make_dataset: batch_size must be a positive int, got {batch_size!r}")
    crop = _pair(crop_size if crop_size is not None else default_crop_size(dataset), "crop_size")
    try:
        lo, hi = (float(v) for v in scale_range)
    except (TypeError, ValueError):
        raise ValueError(f"make_dataset: scale_range must be (min, max), got "
                         f"{scale_range!r}") from None
    if not 0 < lo <= hi:
        raise ValueError(f"make_dataset: scale_range must satisfy 0 < min <= max, got "
                         f"{scale_range!r}")
    if len(tuple(pad_value)) != 3:
        raise ValueError("make_dataset: pad_value must be 3 numbers (RGB)")
    photometric = float(photometric)
    if not 0.0 <= photometric <= 1.0:  # also rejects NaN
        raise ValueError(f"make_dataset: photometric must be in [0, 1], got {photometric!r}")
    if limit is not None and int(limit) < 1:
        raise ValueError(f"make_dataset: limit must be >= 1, got {limit!r}")

    pairs = file_pairs(dataset, data_dir, split, use_sequence_frames=use_sequence_frames)
    if limit is not None:
        pairs = pairs[:int(limit)]
    if validate_labels is None:
        validate_labels = dataset == "camvid"
    if validate_labels and dataset == "camvid":
        camvid_lib.check_labels(pairs)
    if training and len(pairs) < batch_size:
        raise ValueError(f"make_dataset: {len(pairs)} {split!r} images is fewer than "
                         f"batch_size={batch_size} (training drops incomplete batches)")

    lut = tf.constant(_label_lut(dataset))
    max_raw = labels_lib.CAMVID_VOID if dataset == "camvid" else 255
    mean = tf.constant(tuple(pad_value), tf.float32)
    crop_h, crop_w = crop
    fixed = _pair(image_size, "image_size") if image_size is not None else None
    ignore = labels_lib.IGNORE_LABEL

    def load(image_path, label_path):
        image = tf.io.decode_image(tf.io.read_file(image_path), channels=3,
                                   expand_animations=False)
        raw = tf.io.decode_png(tf.io.read_file(label_path), channels=0)
        checks = [tf.debugging.assert_equal(
            tf.shape(raw)[2], 1,
            message=tf.strings.join(["label is not a single-channel id image: ", label_path]))]
        with tf.control_dependencies(checks):
            raw = raw[..., 0]
        checks = [tf.debugging.assert_equal(
            tf.shape(image)[:2], tf.shape(raw),
            message=tf.strings.join(["image and label sizes differ: ", image_path, " vs ",
                                     label_path]))]
        if max_raw < 255:
            checks.append(tf.debugging.assert_less_equal(
                tf.reduce_max(raw), tf.constant(max_raw, tf.uint8),
                message=tf.strings.join(["label value out of range (> ", str(max_raw), ") in ",
                                         label_path])))
        with tf.control_dependencies(checks):
            label = tf.gather(lut, tf.cast(raw, tf.int32))
        image = tf.cast(image, tf.float32)
        if fixed is not None:
            image = tf.image.resize(image, fixed, method="bilinear")
            label = tf.image.resize(label[..., None], fixed, method="nearest")[..., 0]
        image.set_shape([None, None, 3])
        label.set_shape([None, None])
        return image, label

    def augment(image, label, seed):
        seeds = tf.random.experimental.stateless_split(seed, 4)
        shape = tf.shape(label)
        if lo != 1.0 or hi != 1.0:
            s = tf.random.stateless_uniform([], seeds[0], lo, hi)
            size = tf.maximum(tf.cast(tf.round(tf.cast(shape, tf.float32) * s), tf.int32), 1)
            image = tf.image.resize(image, size, method="bilinear")
            label = tf.image.resize(label[..., None], size, method="nearest")[..., 0]
            shape = size
        # Random crop of the image padded bottom/right to at least the crop size: the offset is
        # drawn over the padded canvas, the window sliced from the (unpadded) scaled image and
        # only the window is padded (mean pixel / ignore), so no full-size padded copy is made.
        top = tf.random.stateless_uniform([], seeds[1], 0, tf.maximum(shape[0] - crop_h, 0) + 1,
                                          dtype=tf.int32)
        left = tf.random.stateless_uniform([], seeds[2], 0, tf.maximum(shape[1] - crop_w, 0) + 1,
                                           dtype=tf.int32)
        image = image[top:top + crop_h, left:left + crop_w]
        label = label[top:top + crop_h, left:left + crop_w]
        if photometric > 0:
            image = _photometric(image, tf.random.experimental.stateless_fold_in(seed, 1),
                                 photometric)
        pad_h = crop_h - tf.shape(label)[0]
        pad_w = crop_w - tf.shape(label)[1]
        image = tf.pad(image - mean, [[0, pad_h], [0, pad_w], [0, 0]]) + mean
        label = tf.pad(label, [[0, pad_h], [0, pad_w]], constant_values=ignore)
        if random_flip:
            flip = tf.random.stateless_uniform([], seeds[3]) < 0.5
            image, label = tf.cond(flip, lambda: (image[:, ::-1], label[:, ::-1]),
                                   lambda: (image, label))
        image = tf.ensure_shape(image, [crop_h, crop_w, 3])
        label = tf.ensure_shape(label, [crop_h, crop_w])
        return image, label

    images = [p[0] for p in pairs]
    labels = [p[1] for p in pairs]
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle if shuffle is not None else training:
        ds = ds.shuffle(len(pairs), seed=shuffle_seed, reshuffle_each_iteration=True)
    autotune = tf.data.AUTOTUNE
    if training:
        seeds = tf.data.Dataset.random(seed=shuffle_seed,
                                       rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds))
        ds = ds.map(lambda paths, seed: augment(*load(*paths), seed),
                    num_parallel_calls=autotune, deterministic=True)
        ds = ds.batch(batch_size, drop_remainder=True)
    else:
        ds = ds.map(load, num_parallel_calls=autotune, deterministic=True)
        ds = ds.batch(batch_size, drop_remainder=False)
    return ds.prefetch(autotune)


def _photometric(image, seed, strength: float):
    """Colour jitter of a float RGB crop in [0, 255], the same random draw for a given seed:
    brightness +-0.2*s (of full scale), contrast and saturation x[1-0.4s, 1+0.4s], hue +-0.05*s
    turns, in that order, clipped to [0, 255]. Cross-sequence lighting (CamVid's test sequences
    are not in its train split) is what it is for; the geometry and labels are untouched."""
    import tensorflow as tf
    seeds = tf.random.experimental.stateless_split(seed, 4)
    x = image / 255.0
    x = tf.image.stateless_random_brightness(x, 0.2 * strength, seeds[0])
    x = tf.image.stateless_random_contrast(x, 1 - 0.4 * strength, 1 + 0.4 * strength, seeds[1])
    x = tf.clip_by_value(x, 0.0, 1.0)
    x = tf.image.stateless_random_saturation(x, 1 - 0.4 * strength, 1 + 0.4 * strength,
                                             seeds[2])
    x = tf.image.stateless_random_hue(x, 0.05 * strength, seeds[3])
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


CLASS_WEIGHTINGS = ("none", "median_frequency", "sqrt_median_frequency")


def class_frequencies(dataset: str, data_dir: str, split: str = "train") -> np.ndarray:
    """float64 [C]: freq_c = (pixels of class c) / (pixels of the images where c occurs), the
    frequency of median-frequency balancing (Eigen & Fergus 2015; SegNet's CamVid weights).
    A class absent from the split gets 0."""
    from taplab_tf.data import image_io
    c = num_classes(dataset)
    lut = _label_lut(dataset)
    counts = np.zeros(c, np.float64)
    totals = np.zeros(c, np.float64)
    for _, label_path in file_pairs(dataset, data_dir, split):
        raw = image_io.read_label(label_path, "class_frequencies")
        if raw.ndim != 2:
            raise ValueError(f"class_frequencies: label {label_path!r} is not a single-channel "
                             f"id image (shape {raw.shape})")
        ids = lut[np.clip(raw.astype(np.int64), 0, 255)]
        hist = np.bincount(ids.reshape(-1), minlength=256)[:c].astype(np.float64)
        counts += hist
        totals[hist > 0] += ids.size
    return np.divide(counts, totals, out=np.zeros(c), where=totals > 0)


def class_weights(frequencies: Sequence[float], mode: str) -> np.ndarray:
    """Per-class loss weights from class_frequencies: 'none' -> all 1; 'median_frequency' ->
    median(freq) / freq_c; 'sqrt_median_frequency' -> its square root (gentler on the rare
    classes). Absent classes (freq 0) get weight 0 in the balanced modes."""
    freq = np.asarray(frequencies, np.float64)
    if mode not in CLASS_WEIGHTINGS:
        raise ValueError(f"class_weighting: unknown {mode!r}; choose from "
                         f"{list(CLASS_WEIGHTINGS)}")
    if mode == "none":
        return np.ones_like(freq)
    present = freq > 0
    if not present.any():
        raise ValueError("class_weighting: no class occurs in the training labels")
    w = np.zeros_like(freq)
    w[present] = np.median(freq[present]) / freq[present]
    return np.sqrt(w) if mode == "sqrt_median_frequency" else w
