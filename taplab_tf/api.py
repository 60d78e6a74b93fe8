"""The small public API: load a model, segment a video.

    import taplab_tf
    model, meta = taplab_tf.load_model()                       # the shipped CamVid BL2
    summary = taplab_tf.segment_video("street.mp4", "street_seg.mp4", rgfs_fraction=0.1)

segment_video is the main job of `python -m experiments.segment --video=X` as one call: any codec
(re-encoded when needed), phi at the scale its model was evaluated at, labels at the video's size.
"""
from __future__ import annotations

import os
from typing import Optional

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
REAL_DATA_MODEL = os.path.join(ASSETS, "bl2_camvid")
SYNTHETIC_MODEL = os.path.join(ASSETS, "bl2_synthetic")
# The paper-size BL2 (width 1.0, 128-channel decoder) trained on the synthetic streets: what the
# speed tables time as "BL2 with trained weights" (experiments.benchmark --checkpoint=...).
PAPER_SIZE_MODEL = os.path.join(ASSETS, "bl2_paper_synthetic")
_ASSETS_IN_REPO = "taplab_tf/assets/"  # how recipes and README commands name a shipped model


def resolve_model_path(path: str) -> str:
    """`path` as given, unless it names a shipped model the way recipes do, relative to the
    repository root ('taplab_tf/assets/bl2_synthetic'), and no such path exists from the working
    directory: then that model in this installed package (e.g. a flagfile's --init_from run
    from another folder)."""
    if path and not os.path.isabs(path) and not os.path.exists(path):
        rel = path.replace(os.sep, "/")
        if rel.startswith(_ASSETS_IN_REPO):
            return os.path.join(ASSETS, *rel[len(_ASSETS_IN_REPO):].split("/"))
    return path


def load_model(path: Optional[str] = None):
    """(phi, metadata) from a model directory (experiments.train) or an exported SavedModel
    (experiments.export); the shipped real-data model when path is None."""
    from taplab_tf.models import export, load_model as load_keras
    directory = resolve_model_path(path) if path else REAL_DATA_MODEL
    if export.is_saved_model(directory):
        phi = export.load_saved_model(directory)
        return phi, dict(phi.metadata)
    return load_keras(directory)


def segment_video(video: str, output: Optional[str] = None, *, checkpoint: Optional[str] = None,
                  labels_dir: Optional[str] = None, input_scale: Optional[float] = None,
                  transcode: str = "auto", progress: bool = False, **config) -> dict:
    """Segments `video` (any codec) to an overlay video at `output` (None: no video) and label
    PNGs in `labels_dir`; config: TapLabConfig fields (gop, modules, rgfs_fraction, ...).
    input_scale None: chosen from the frame size the model was evaluated at
    (data.labels.phi_frame_height). Returns the run's summary."""
    from taplab_tf import config as config_lib
    from taplab_tf.data import labels as labels_lib
    from taplab_tf.pipeline import engine as engine_lib
    from taplab_tf.pipeline import segment as segment_lib
    info = segment_lib.check_video(video)
    model, meta = load_model(checkpoint)
    if input_scale is None:
        input_scale = config_lib.auto_input_scale(labels_lib.phi_frame_height(meta),
                                                  info.height, int(model.output_stride))
    cfg = config_lib.TapLabConfig(**config).replace(input_scale=input_scale)
    engine = engine_lib.TapLabEngine(model, cfg)
    return segment_lib.segment_file(engine, video, output, dataset=meta.get("dataset", "cityscapes"),
                                    labels_dir=labels_dir, transcode=transcode,
                                    progress=progress, log=lambda message: None)
