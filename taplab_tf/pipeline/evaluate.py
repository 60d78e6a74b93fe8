"""Video evaluation following the paper's protocol (Sec. 4.1), plus per-distance mIoU.

For each clip (a Cityscapes-layout snippet: leftImg8bit_sequence frames, the annotated frame at
index 19; the synthetic generator labels every frame):
  1. a start frame is drawn at random (seeded) so that the annotated frame falls at a random
     position 0..g-1 of its GOP, and the frames from there to the end of the snippet are encoded
     to MPEG-4 Part 2 with GOP g (third_party.compressed_video.encode_video);
  2. the engine segments the compressed video;
  3. mIoU is computed on the annotated frames (the paper's number) and, where every frame is
     labelled (synthetic data), on all frames; mIoU per distance 0..g-1 from the last I-frame
     (the per-distance protocol of later compressed-domain work, e.g. AR-Seg, CVPR 2023) shows
     where propagation decays and where RGC/RGFS help.
"""
from __future__ import annotations

import os
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from taplab_tf import metrics as metrics_lib
from taplab_tf.data import cityscapes
from taplab_tf.data import datasets as datasets_lib
from taplab_tf.pipeline import engine as engine_lib


def clip_window(clip: cityscapes.Clip, gop: int, rng: np.random.Generator) -> int:
    """The start frame: the annotated frame lands at a random position 0..g-1 of its GOP (at
    most as far into the GOP as the snippet has frames before it)."""
    position = int(rng.integers(0, min(gop, clip.annotated_index + 1)))
    return clip.annotated_index - position


def evaluate_clips(engine: engine_lib.TapLabEngine, clips: Sequence[cityscapes.Clip],
                   dataset: str, gop: int, seed: int = 0, qscale: Optional[float] = None,
                   workdir: Optional[str] = None, max_clips: Optional[int] = None,
                   progress: Optional[Callable[[str], None]] = print) -> Dict:
    """Runs the protocol above over `clips`; returns the JSON-ready results."""
    from third_party.compressed_video import encode_video

    if not clips:
        raise ValueError("evaluate: no clips to evaluate")
    names = datasets_lib.class_names(dataset)
    nc = len(names)
    if engine.num_classes is not None and engine.num_classes != nc:
        raise ValueError(f"checkpoint predicts {engine.num_classes} classes but dataset "
                         f"{dataset!r} has {nc}: use a checkpoint trained on {dataset}")
    rng = np.random.default_rng(seed)
    annotated = metrics_lib.ConfusionMatrix(nc)
    every = metrics_lib.ConfusionMatrix(nc)
    per_distance = [metrics_lib.ConfusionMatrix(nc) for _ in range(gop)]
    frames_done, seconds, p_frames, rgfs_keys, positions = 0, 0.0, 0, 0, []
    clips = list(clips)[:max_clips] if max_clips else list(clips)
    tmp = tempfile.TemporaryDirectory(dir=workdir)
    try:
        for n, clip in enumerate(clips):
            start = clip_window(clip, gop, rng)
            positions.append(clip.annotated_index - start)
            frames = np.stack([cityscapes.load_image(p) for p in clip.frame_paths[start:]])
            video = os.path.join(tmp.name, f"{clip.name}.avi")
            encode_video(frames, video, gop=gop, qscale=qscale,
                         mv4=engine.config.encoder_mv4)  # 4MV where FFW reads 8x8 vectors
            t0 = time.perf_counter()
            results = list(engine.segment_video(video))
            seconds += time.perf_counter() - t0
            if len(results) != len(frames):
                raise RuntimeError(f"{clip.name}: the reader returned {len(results)} frames of "
                                   f"{len(frames)} encoded")
            for i, r in enumerate(results):
                label_path = clip.label_paths[start + i]
                if r.pict_type == "P":
                    p_frames += 1
                    rgfs_keys += r.action == "rgfs"
                if label_path is None:
                    continue
                gt = cityscapes.load_label(label_path)  # trainIds, 255 ignore
                if gt.shape != r.labels.shape:
                    raise ValueError(f"{label_path}: label {gt.shape} and frame "
                                     f"{r.labels.shape} sizes differ")
                every.update(gt, r.labels)
                per_distance[r.gop_position % gop].update(gt, r.labels)
                if start + i == clip.annotated_index:
                    annotated.update(gt, r.labels)
            frames_done += len(results)
            os.remove(video)
            if progress:
                progress(f"[{n + 1}/{len(clips)}] {clip.name}: annotated frame at GOP position "
                         f"{positions[-1]}, {len(results)} frames, running annotated mIoU "
                         f"{100 * annotated.miou():.1f}, {frames_done / max(seconds, 1e-9):.1f} fps")
    finally:
        tmp.cleanup()
    return {
        "miou": annotated.miou(),
        "per_class_iou": annotated.to_dict(names),
        "miou_all_frames": every.miou() if every.num_pixels else None,
        "per_distance_miou": [m.miou() if m.num_pixels else None for m in per_distance],
        "rgfs_fraction": rgfs_keys / p_frames if p_frames else 0.0,
        "fps": frames_done / seconds if seconds else None,
        "frames": frames_done,
        "clips": len(clips),
        "annotated_gop_positions": positions,
        "settings": {**engine.config.to_dict(), "dataset": dataset, "seed": seed,
                     "qscale": qscale, "propagation": engine.config.propagation},
    }


def list_clips(dataset: str, data_dir: str, split: str) -> List[cityscapes.Clip]:
    """Video clips of a Cityscapes-layout tree (Cityscapes itself or the synthetic data)."""
    if dataset not in ("cityscapes", "synthetic"):
        raise ValueError(f"dataset: video evaluation needs sequences; {dataset!r} has none here "
                         "(CamVid's SegNet copy holds stills one second apart)")
    return cityscapes.sequence_clips(data_dir, split)
