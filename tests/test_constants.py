"""Each shared constant has one home; the other modules import it (no second literal copy)."""
import os
import re

from taplab_tf import config
from taplab_tf.data import datasets, labels
from taplab_tf.models import builder, networks
from taplab_tf.train import losses

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOMES = {  # constant -> the one module that assigns it
    "MODEL_NAMES": "taplab_tf/config.py",
    "IGNORE_LABEL": "taplab_tf/data/labels.py",
    "IMAGENET_MEAN": "taplab_tf/data/datasets.py",
    "DATASET_NAMES": "taplab_tf/data/labels.py",
}


def test_the_importers_share_the_home_objects():
    assert builder.MODEL_NAMES is config.MODEL_NAMES
    assert set(networks.NETWORKS) == set(config.MODEL_NAMES)
    assert losses.IGNORE_LABEL is labels.IGNORE_LABEL == 255
    assert networks.IMAGENET_MEAN is datasets.IMAGENET_MEAN
    assert datasets.DATASET_NAMES is labels.DATASET_NAMES
    assert set(labels.DATASET_NAMES) == {"cityscapes", "synthetic", "camvid"}


def _scan():
    """(assignments of a shared constant outside its home, hand-written full name lists)."""
    assign = re.compile(r"^(\w+)\s*=\s*([(\[\d\"'])", re.M)
    full_list = re.compile(r"[\[(]\s*(\"\w+\",\s*){2}\"\w+\"\s*[\])]")
    names = ({"bl1", "bl2", "bl3"}, {"synthetic", "cityscapes", "camvid"})
    found, listed = [], []
    for folder in ("taplab_tf", "third_party", "experiments"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, ROOT)
                with open(path) as f:
                    text = f.read()
                for m in assign.finditer(text):
                    if m.group(1) in HOMES and HOMES[m.group(1)] != rel:
                        found.append(f"{rel}: {m.group(0)}")
                for m in full_list.finditer(text):
                    if set(re.findall(r"\"(\w+)\"", m.group(0))) in names and \
                            rel not in HOMES.values():
                        listed.append(f"{rel}: {m.group(0)}")
    return found, listed


def test_no_second_literal_copy_in_the_code():
    """No module but the home assigns a literal to the name (`X = labels_lib.X`, an alias, is
    fine)."""
    found, _ = _scan()
    assert not found, found


def test_apps_take_the_name_lists_from_their_homes():
    """No module spells out all the model names or all the dataset names by hand (a subset, such
    as the datasets that have sequences, is a choice, not a copy)."""
    _, listed = _scan()
    assert listed == [], listed
