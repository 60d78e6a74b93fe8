"""Label definitions: the one home of class names, id mappings and palettes.

Cityscapes: 34 labelIds (gtFine_labelIds.png) map to the 19 train classes (trainIds 0-18), every
other id to IGNORE_LABEL (255), as in cityscapesScripts' labels.py.
CamVid (SegNet layout): 11 classes 0-10, 11 = void, mapped to IGNORE_LABEL.
"""
from __future__ import annotations

import numpy as np

from taplab_tf import config as config_lib

IGNORE_LABEL = 255

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)

# labelId of each trainId (cityscapesScripts labels.py).
CITYSCAPES_TRAIN_TO_LABEL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                                31, 32, 33)

CITYSCAPES_PALETTE = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32)], dtype=np.uint8)


def _label_id_to_train_id_lut() -> np.ndarray:
    lut = np.full(256, IGNORE_LABEL, dtype=np.uint8)
    for train_id, label_id in enumerate(CITYSCAPES_TRAIN_TO_LABEL_ID):
        lut[label_id] = train_id
    return lut


CITYSCAPES_LABEL_ID_TO_TRAIN_ID = _label_id_to_train_id_lut()


def cityscapes_label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """gtFine labelIds (uint8 HxW) -> trainIds 0-18, 255 elsewhere."""
    return CITYSCAPES_LABEL_ID_TO_TRAIN_ID[np.asarray(label_ids, dtype=np.uint8)]


def cityscapes_train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """trainIds 0-18 (255 ignore) -> labelIds; ignore maps to 0 ('unlabeled')."""
    lut = np.zeros(256, dtype=np.uint8)
    lut[:len(CITYSCAPES_TRAIN_TO_LABEL_ID)] = CITYSCAPES_TRAIN_TO_LABEL_ID
    return lut[np.asarray(train_ids, dtype=np.uint8)]


CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign symbol", "fence",
                  "car", "pedestrian", "bicyclist")
CAMVID_VOID = 11
CAMVID_PALETTE = np.array([
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)],
    dtype=np.uint8)


def camvid_to_train_ids(labels: np.ndarray) -> np.ndarray:
    """SegNet-layout CamVid labels (0-10, 11 void) -> 0-10, void -> 255."""
    labels = np.asarray(labels, dtype=np.uint8)
    return np.where(labels == CAMVID_VOID, IGNORE_LABEL, labels).astype(np.uint8)


DATASETS = {
    "cityscapes": (CITYSCAPES_CLASSES, CITYSCAPES_PALETTE),
    "synthetic": (CITYSCAPES_CLASSES, CITYSCAPES_PALETTE),
    "camvid": (CAMVID_CLASSES, CAMVID_PALETTE),
}
DATASET_NAMES = tuple(DATASETS)  # the one list of dataset names


# Frame height of each dataset's images, the scale at which a model trained on it sees objects
# (the synthetic streets of the shipped model are 512x1024). A model's model.json may state its
# own "train_frame_height"; see training_frame_height.
FRAME_HEIGHT = {"cityscapes": 1024, "synthetic": 512, "camvid": 360}


def training_frame_height(metadata: dict) -> int | None:
    """The frame height a saved model was trained at (model.json's train_frame_height, else its
    dataset's); None where neither is known."""
    h = metadata.get("train_frame_height")
    if h:
        return int(h)
    return FRAME_HEIGHT.get(metadata.get("dataset", ""))


def phi_frame_height(metadata: dict) -> float | None:
    """The frame height at which phi sees objects at the size it was evaluated at: the training
    frame height (training_frame_height) times model.json's input_scale (the trainer's
    eval_input_scale; 1 where absent). What config.auto_input_scale matches a video to."""
    h = training_frame_height(metadata)
    if not h:
        return None
    scale = metadata.get("input_scale", 1.0)
    if not config_lib.valid_input_scale(scale):
        raise ValueError(f"model.json: input_scale must be a number in (0, 4], got {scale!r}")
    return h * scale


def class_names(dataset: str):
    try:
        return DATASETS[dataset][0]
    except KeyError:
        raise ValueError(f"dataset: unknown {dataset!r}; choose from {sorted(DATASETS)}") from None


def num_classes(dataset: str) -> int:
    return len(class_names(dataset))


def colorize(train_ids: np.ndarray, dataset: str = "cityscapes") -> np.ndarray:
    """trainIds (HxW) -> RGB uint8 in the dataset's palette; ignore (255) is black."""
    palette = DATASETS[dataset][1] if dataset in DATASETS else CITYSCAPES_PALETTE
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:len(palette)] = palette
    return lut[np.asarray(train_ids, dtype=np.uint8)]
