"""The public API: taplab_tf.load_model and taplab_tf.segment_video."""
import os

import taplab_tf
from tests.helpers import video as V


def test_all_names_resolve():
    for name in taplab_tf.__all__:
        assert getattr(taplab_tf, name) is not None


def test_load_model_defaults_to_the_shipped_real_data_model():
    model, meta = taplab_tf.load_model()
    assert meta["dataset"] == "camvid" and meta["num_classes"] == 11
    assert model.output_stride == 4
    assert os.path.isfile(os.path.join(os.path.dirname(taplab_tf.__file__), "assets",
                                       "bl2_camvid", "metrics.json"))


def test_every_shipped_model_loads_with_its_metrics_beside_it():
    """The shipped models (the main job's two, and the paper-size BL2 the speed tables time)
    load, and each carries the metrics JSON of the run that trained it."""
    import json

    from taplab_tf import api
    for directory in (api.REAL_DATA_MODEL, api.SYNTHETIC_MODEL, api.PAPER_SIZE_MODEL):
        model, meta = taplab_tf.load_model(directory)
        assert model.output_stride == 4 and meta["model"] == "bl2"
        with open(os.path.join(directory, "metrics.json")) as f:
            assert json.load(f)
    _, meta = taplab_tf.load_model(api.PAPER_SIZE_MODEL)
    assert meta["kwargs"] == {"width_multiplier": 1.0, "decoder_channels": 128}


def test_segment_video_in_one_call(tmp_path):
    src = V.encoded_pan(tmp_path, 13, gop=6)
    out = str(tmp_path / "seg.mp4")
    s = taplab_tf.segment_video(src, out, gop=6, modules="ffw,rgc,rgfs", rgfs_fraction=0.2,
                                input_scale=1.0, labels_dir=str(tmp_path / "labels"))
    assert s["frames"] == 13 and os.path.isfile(out) and not s["transcoded"]
    assert len(os.listdir(tmp_path / "labels")) == 13


def test_a_shipped_model_named_from_the_repository_root_resolves_from_any_folder(tmp_path,
                                                                                   monkeypatch):
    """Recipes name shipped models relative to the repository root (the CamVid flagfile's
    --init_from=taplab_tf/assets/bl2_synthetic); run from elsewhere they still find them."""
    from taplab_tf import api
    monkeypatch.chdir(tmp_path)
    assert api.resolve_model_path("taplab_tf/assets/bl2_synthetic") == api.SYNTHETIC_MODEL
    assert os.path.isfile(os.path.join(api.SYNTHETIC_MODEL, "model.json"))
    assert api.resolve_model_path("runs/mine/model") == "runs/mine/model"  # not a shipped name
    local = tmp_path / "taplab_tf" / "assets" / "bl2_synthetic"
    local.mkdir(parents=True)  # a folder of that name here wins: the path is taken as given
    assert api.resolve_model_path("taplab_tf/assets/bl2_synthetic") == \
        "taplab_tf/assets/bl2_synthetic"
