"""Trains a segmentation network phi (BL1/BL2/BL3) with the paper's recipe.

    python -m experiments.train --dataset=synthetic --data_dir=runs/synthetic --model=bl2 \
        --logdir=runs/bl2_synthetic --steps=3000 --batch_size=8 --crop=256,256 \
        --width_multiplier=0.35 [--strategy=default|mirrored|multi_worker]

--config=NAME starts from a named experiment (taplab_tf.experiment: cityscapes_bl1/bl2/bl3,
camvid_bl2, synthetic) and every flag given overrides its field; the resolved experiment is
written to <logdir>/train_experiment.json. Without --config, the defaults follow Sec. 4.1:
Adam, --learning_rate=2e-4 with poly decay (power 0.9), batch 8, weight decay 1e-6, softmax
cross-entropy with label 255 ignored. Restarting with the same --logdir resumes from its newest
intact checkpoint (--restart starts over); a finished run run again changes nothing. The final
model goes to --export_dir (default <logdir>/model) in the save_model format that the evaluator
and the engine load. TensorBoard: tensorboard --logdir=<logdir>.
"""
from __future__ import annotations

import os
import shlex
import sys

from absl import app, flags

from experiments import flags as flags_lib

from taplab_tf.data.datasets import CLASS_WEIGHTINGS
from taplab_tf.data.labels import DATASET_NAMES
from taplab_tf.experiment import DataConfig, TrainSettings

FLAGS = flags.FLAGS
# The defaults are the config dataclasses' (one source); a flag overrides its field only when it
# is given, over the named experiment (--config) or over those defaults.
_DATA, _TRAIN = DataConfig(), TrainSettings()
flags_lib.define_taplab_flags()  # --model (bl1 | bl2 | bl3) and the engine settings
flags.DEFINE_enum("dataset", _DATA.dataset, list(DATASET_NAMES), "Training data.")
flags.DEFINE_string("data_dir", None, "Dataset root (Cityscapes layout, or the CamVid SegNet "
                    "layout).")
flags.DEFINE_string("logdir", None, "Run directory: checkpoints, TensorBoard events, model/.")
flags.DEFINE_string("init_from", None, "Warm start (fine-tuning): a saved model directory whose "
                    "weights initialise a new run; a logdir with checkpoints resumes instead.")
flags.DEFINE_bool("init_skip_mismatch", False, "With --init_from: a model of the same network "
                  "for another class count (e.g. pretrained on the synthetic streets) gives all "
                  "its weights but the classifier's.")
flags.DEFINE_string("export_dir", None, "Where the final model is saved (default <logdir>/model).")
flags.DEFINE_integer("steps", _TRAIN.steps, "Total training steps (poly decay ends here).", lower_bound=1)
flags.DEFINE_integer("batch_size", _TRAIN.batch_size, "Global batch size (split across replicas).", lower_bound=1)
flags.DEFINE_list("crop", [str(v) for v in _DATA.crop], "Training crop HEIGHT,WIDTH.")
flags.DEFINE_list("scale_range", [str(v) for v in _DATA.scale_range], "Random scale range MIN,MAX before cropping.")
flags.DEFINE_float("photometric", _DATA.photometric, "Colour jitter strength in [0, 1] on training crops "
                   "(brightness, contrast, saturation, hue; 0: off).", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_float("learning_rate", _TRAIN.learning_rate, "Initial Adam learning rate.", lower_bound=0.0)
flags.DEFINE_float("poly_power", _TRAIN.poly_power, "Poly learning-rate decay power.", lower_bound=0.0)
flags.DEFINE_float("weight_decay", _TRAIN.weight_decay, "L2 weight decay on conv kernels.", lower_bound=0.0)
flags.DEFINE_float("ema_decay", _TRAIN.ema_decay, "Keep an exponential moving average of the "
                   "weights with this decay (e.g. 0.999; 0: off); the exported model and its "
                   "final metrics use the average, metrics.json also gives the raw weights'.",
                   lower_bound=0.0, upper_bound=0.9999)
flags.DEFINE_float("width_multiplier", None, "Backbone width multiplier (default: the model's: "
                   "bl1 0.5, bl2 1.0, bl3 1.0).", lower_bound=0.0)
flags.DEFINE_integer("decoder_channels", None, "BL2 FPN channels (default 128).", lower_bound=1)
flags.DEFINE_list("depths", None, "BL1/BL3 ResNet stage depths D1,D2,D3,D4.")
flags.DEFINE_enum("strategy", _TRAIN.strategy, ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy.")
flags.DEFINE_bool("use_sequence_frames", _DATA.use_sequence_frames, "cityscapes/synthetic: train and validate on "
                  "every labelled leftImg8bit_sequence frame, not only the annotated ones.")
flags.DEFINE_integer("log_every", _TRAIN.log_every, "Progress line and scalars every N steps.", lower_bound=1)
flags.DEFINE_integer("checkpoint_every", _TRAIN.checkpoint_every, "Checkpoint every N steps.", lower_bound=1)
flags.DEFINE_integer("eval_every", _TRAIN.eval_every, "Validation mIoU every N steps (0: at the end).",
                     lower_bound=0)
flags.DEFINE_integer("image_every", _TRAIN.image_every, "Image summaries every N steps (0: never).",
                     lower_bound=0)
flags.DEFINE_integer("val_batches", _TRAIN.val_batches, "Periodic validation (--eval_every) on the first N val "
                     "images (0: all); the final validation always uses the whole split.",
                     lower_bound=0)
flags.DEFINE_integer("bn_recalibration_batches", _TRAIN.bn_recalibration_batches,
                     "Re-estimate BatchNorm statistics on N training batches before each "
                     "evaluation and the export (0: off).",
                     lower_bound=0)
flags.DEFINE_enum("class_weighting", _DATA.class_weighting, list(CLASS_WEIGHTINGS),
                  "Per-class loss weights from the training labels' class frequencies.")
flags.DEFINE_string("test_split", _DATA.test_split, "Also evaluate this split at the end (e.g. test); its "
                    "mIoU and per-class IoU go into <export_dir>/metrics.json beside val's.")
flags.DEFINE_string("train_split", _DATA.train_split, "The split trained on; 'a+b' joins splits, "
                    "e.g. train+val for a final model (val's mIoU is then not held out).")
flags.DEFINE_float("eval_input_scale", _DATA.eval_input_scale, "Every evaluation runs phi on the "
                   "dataset's frames resized by this (evaluate_image --input_scale); model.json "
                   "keeps it, and segment's automatic --input_scale then keeps objects at that "
                   "size.", lower_bound=0.0)
flags.DEFINE_integer("seed", _TRAIN.seed, "Random seed (initialisation; data order when > 0).",
                     lower_bound=0)
flags.DEFINE_bool("restart", _TRAIN.restart, "Train from step 0 even though --logdir holds checkpoints "
                  "(without it a logdir resumes from its newest intact checkpoint, and one whose "
                  "checkpoints are all damaged or of another network is an error).")
flags_lib.require_finite("photometric", "learning_rate", "poly_power", "weight_decay", "ema_decay",
                         "eval_input_scale", "width_multiplier")


def _config():
    """The resolved experiment (--config with the given flags over it) and its TrainConfig."""
    if not FLAGS.config and not FLAGS.logdir:
        raise ValueError("--logdir is required (or --config=NAME, whose run folder is its own)")
    cfg = flags_lib.experiment_from_flags(("model", "data", "taplab", "train"))
    if not cfg.data.data_dir:
        raise ValueError("--data_dir is required")
    if not os.path.isdir(cfg.data.data_dir):
        raise ValueError(f"--data_dir {cfg.data.data_dir} is not a directory")
    command = " ".join(["python -m experiments.train"] +
                       [shlex.quote(a) for a in sys.argv[1:]])
    try:
        train_cfg = cfg.train_config(command=command)
    except ValueError as e:
        raise ValueError(flags_lib.as_flag_message(str(e))) from None
    from taplab_tf.models import model_kwargs
    model_kwargs(train_cfg.model, **train_cfg.model_kwargs)  # bad model arguments: before data
    return cfg, train_cfg


def main(argv):
    from experiments import common
    common.reject_extra_args(argv)

    def run():
        from taplab_tf.train import train
        cfg, train_cfg = _config()
        from taplab_tf.train import distribute
        worker = distribute.check_tf_config() if train_cfg.strategy == "multi_worker" else None
        if worker is None or worker.is_chief:  # several workers: the chief writes the run
            common.write_run_config(
                os.path.join(train_cfg.logdir, "train_experiment.json"), "train", cfg)
        result = train(train_cfg)
        print(f"done: step {result['step']}, val mIoU {result['val_miou']}, model "
              f"{result['export_dir']}")

    common.run_or_exit(run)


if __name__ == "__main__":
    app.run(main)
