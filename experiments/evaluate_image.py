"""Per-image segmentation accuracy of a checkpoint over a dataset split (phi alone, no video).

    python -m experiments.evaluate_image --dataset=synthetic|cityscapes|camvid --data_dir=D \
        --checkpoint=C --split=val --output_json=R.json [--batch_size=1] [--max_images=N] \
        [--use_sequence_frames] [--input_scale=S]

Every image of the split is segmented at full size: the model's logits (stride s) are resized
bilinearly (half-pixel centres) to s times their size, cropped to the image and arg-maxed, as the
TapLab engine does (--input_scale: phi sees the image resized first, as segment's option of that
name resizes a video's frames). One confusion matrix is accumulated over the whole split and scored with the
Cityscapes convention (taplab_tf.metrics: per-class IoU = TP / (TP + FP + FN), ignore pixels
skipped, classes absent from both ground truth and prediction left out of the mean).

Prints progress, then a per-class table; writes JSON with per-class IoU by name, mIoU, pixel
accuracy, the number of images, the checkpoint and the dataset. A checkpoint trained on another
dataset (or for another number of classes) is refused with one line; --allow_other_dataset
accepts a checkpoint of a dataset with the same classes (synthetic <-> cityscapes).
"""
from __future__ import annotations

import os
from typing import Optional

from absl import app, flags

from experiments import common
from experiments import flags as flags_lib
from taplab_tf.pipeline.evaluate_images import check_checkpoint, evaluate_dataset

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The app's flags; defined only when it runs as a program, so that tests (and other apps)
    can import its functions without clashing flag names."""
    if "allow_other_dataset" in FLAGS:
        return
    from taplab_tf.data import labels as labels_lib
    flags_lib.define_workspace_flags()
    flags.DEFINE_enum("dataset", "synthetic", list(labels_lib.DATASET_NAMES),
                      "Dataset layout and class set of --data_dir.")
    flags.DEFINE_string("data_dir", None, "Dataset root (Cityscapes layout: leftImg8bit/, "
                        "gtFine/; CamVid: the SegNet layout). Default for synthetic: "
                        "<workspace>/data/synthetic.")
    flags.DEFINE_string("checkpoint", None, "Model directory written by experiments.train "
                        "(save_model). Default: the shipped BL2 trained on synthetic data.")
    flags.DEFINE_string("split", "val", "Split to evaluate (train, val, test).")
    flags.DEFINE_string("output_json", None, "Results JSON (default "
                        "<workspace>/results/evaluate_image_<dataset>_<split>.json).")
    flags.DEFINE_integer("batch_size", 1, "Images per forward pass (same-size images only).",
                         lower_bound=1)
    flags.DEFINE_integer("max_images", None, "Evaluate only the first N images (sorted order).",
                         lower_bound=1)
    flags.DEFINE_bool("use_sequence_frames", False, "synthetic/cityscapes: every labelled frame "
                      "of the split's sequences (leftImg8bit_sequence with gtFine labels), not "
                      "only the annotated frame of each clip.")
    flags.DEFINE_float("input_scale", 1.0, "phi sees each image resized by this factor, as "
                       "segment --input_scale resizes a video's frames (snapped so that the "
                       "logits' stride on the image is an integer); the labels are compared at "
                       "the image's own size.", lower_bound=0.0625, upper_bound=4.0)
    flags.DEFINE_bool("allow_other_dataset", False, "Accept a checkpoint whose metadata names "
                      "another dataset with the same classes (e.g. synthetic -> cityscapes).")
    flags_lib.require_finite("input_scale")


def format_table(result: dict) -> str:
    names = result["class_names"]
    width = max(12, max(len(n) for n in names))
    lines = [f"{'class':<{width}}  IoU (%)", "-" * (width + 9)]
    for name in names:
        v = result["per_class_iou"][name]
        lines.append(f"{name:<{width}}  {'n/a' if v is None else f'{100 * v:6.2f}':>7}")
    lines.append("-" * (width + 9))
    miou = result["miou"]
    acc = result["pixel_accuracy"]
    lines.append(f"{'mIoU':<{width}}  {'n/a' if miou is None else f'{100 * miou:6.2f}':>7}  "
                 f"({result['num_classes_evaluated']} classes present)")
    lines.append(f"{'pixel acc.':<{width}}  {'n/a' if acc is None else f'{100 * acc:6.2f}':>7}")
    return "\n".join(lines)


def run(dataset: str, data_dir: str, split: str, checkpoint: Optional[str],
        output_json: str, batch_size: int = 1, max_images: Optional[int] = None,
        allow_other_dataset: bool = False, use_sequence_frames: bool = False,
        input_scale: float = 1.0) -> dict:
    from taplab_tf.data import datasets as datasets_lib

    pairs = common.run_or_exit(lambda: datasets_lib.file_pairs(dataset, data_dir, split,
                                                               use_sequence_frames))
    model, meta = common.load_checkpoint(checkpoint)
    common.run_or_exit(lambda: check_checkpoint(meta, dataset, allow_other_dataset))
    num_images = min(len(pairs), max_images) if max_images else len(pairs)
    ds = common.run_or_exit(lambda: datasets_lib.make_dataset(
        dataset, data_dir, split, training=False, batch_size=batch_size, limit=max_images,
        use_sequence_frames=use_sequence_frames))
    stride = int(meta.get("output_stride") or model.output_stride)
    print(f"evaluating {meta['model']} ({checkpoint or common.DEFAULT_CHECKPOINT}, trained on "
          f"{meta.get('dataset', '?')}) on {dataset} {split}: {num_images} images from "
          f"{data_dir}", flush=True)
    from taplab_tf import config as config_lib
    frame_stride = config_lib.frame_stride(stride, input_scale)
    if frame_stride != stride:
        print(f"phi at input scale {stride / frame_stride:g} (logits at stride {frame_stride} "
              f"of the image)", flush=True)
    cm, done, seconds = common.run_or_exit(lambda: evaluate_dataset(
        model, stride, ds, datasets_lib.num_classes(dataset), num_images,
        progress=lambda s: print(s, flush=True), input_scale=input_scale))
    result = {
        "dataset": dataset,
        "split": split,
        "use_sequence_frames": use_sequence_frames,
        "data_dir": os.path.abspath(data_dir),
        "checkpoint": os.path.abspath(checkpoint or common.DEFAULT_CHECKPOINT),
        "model": meta["model"],
        "checkpoint_dataset": meta.get("dataset"),
        "input_scale": stride / frame_stride,
        "num_images": done,
        "seconds": round(seconds, 3),
        **cm.to_dict(datasets_lib.class_names(dataset)),
    }
    print(format_table(result))
    from taplab_tf import io_utils
    io_utils.write_json(output_json, {**result,
                                      "run_config": common.run_record("evaluate_image")},
                        allow_nan=False, default=str)
    print(f"wrote {output_json}")
    return result


def main(argv):
    common.reject_extra_args(argv)
    data_dir = FLAGS.data_dir
    if data_dir is None:
        if FLAGS.dataset != "synthetic":
            raise SystemExit(f"error: --data_dir is required for --dataset={FLAGS.dataset}")
        data_dir = flags_lib.workspace_path("data", "synthetic")
    output_json = FLAGS.output_json or flags_lib.workspace_path(
        "results", f"evaluate_image_{FLAGS.dataset}_{FLAGS.split}.json")
    run(FLAGS.dataset, data_dir, FLAGS.split, FLAGS.checkpoint, output_json,
        batch_size=FLAGS.batch_size, max_images=FLAGS.max_images,
        allow_other_dataset=FLAGS.allow_other_dataset,
        use_sequence_frames=FLAGS.use_sequence_frames, input_scale=FLAGS.input_scale)


if __name__ == "__main__":
    define_flags()
    app.run(main)
