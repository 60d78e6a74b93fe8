"""Trains a segmentation network phi (BL1/BL2/BL3) with the paper's recipe.

    python -m experiments.train --dataset=synthetic --data_dir=runs/synthetic --model=bl2 \
        --logdir=runs/bl2_synthetic --steps=3000 --batch_size=8 --crop=256,256 \
        --width_multiplier=0.35 [--strategy=default|mirrored|multi_worker]

Defaults follow Sec. 4.1: Adam, --learning_rate=2e-4 with poly decay (power 0.9), batch 8,
weight decay 1e-6, softmax cross-entropy with label 255 ignored. Restarting with the same
--logdir resumes from its newest intact checkpoint (--restart starts over); a finished run run
again changes nothing. The final model goes to --export_dir (default
<logdir>/model) in the save_model format that the evaluator and the engine load.
TensorBoard: tensorboard --logdir=<logdir>.
"""
from __future__ import annotations

import os
import shlex
import sys

from absl import app, flags

from experiments import flags as flags_lib

FLAGS = flags.FLAGS
flags_lib.define_taplab_flags()  # --model (bl1 | bl2 | bl3) and the engine settings
flags.DEFINE_enum("dataset", "synthetic", ["synthetic", "cityscapes", "camvid"], "Training data.")
flags.DEFINE_string("data_dir", None, "Dataset root (Cityscapes layout, or the CamVid SegNet "
                    "layout).")
flags.DEFINE_string("logdir", None, "Run directory: checkpoints, TensorBoard events, model/.")
flags.DEFINE_string("init_from", None, "Warm start (fine-tuning): a saved model directory whose "
                    "weights initialise a new run; a logdir with checkpoints resumes instead.")
flags.DEFINE_string("export_dir", None, "Where the final model is saved (default <logdir>/model).")
flags.DEFINE_integer("steps", 60000, "Total training steps (poly decay ends here).", lower_bound=1)
flags.DEFINE_integer("batch_size", 8, "Global batch size (split across replicas).", lower_bound=1)
flags.DEFINE_list("crop", ["512", "512"], "Training crop HEIGHT,WIDTH.")
flags.DEFINE_list("scale_range", ["0.5", "2.0"], "Random scale range MIN,MAX before cropping.")
flags.DEFINE_float("photometric", 0.0, "Colour jitter strength in [0, 1] on training crops "
                   "(brightness, contrast, saturation, hue; 0: off).", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_float("learning_rate", 2e-4, "Initial Adam learning rate.", lower_bound=0.0)
flags.DEFINE_float("poly_power", 0.9, "Poly learning-rate decay power.", lower_bound=0.0)
flags.DEFINE_float("weight_decay", 1e-6, "L2 weight decay on conv kernels.", lower_bound=0.0)
flags.DEFINE_float("width_multiplier", None, "Backbone width multiplier (default: the model's: "
                   "bl1 0.5, bl2 1.0, bl3 1.0).", lower_bound=0.0)
flags.DEFINE_integer("decoder_channels", None, "BL2 FPN channels (default 128).", lower_bound=1)
flags.DEFINE_list("depths", None, "BL1/BL3 ResNet stage depths D1,D2,D3,D4.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy.")
flags.DEFINE_bool("use_sequence_frames", False, "cityscapes/synthetic: train and validate on "
                  "every labelled leftImg8bit_sequence frame, not only the annotated ones.")
flags.DEFINE_integer("log_every", 20, "Progress line and scalars every N steps.", lower_bound=1)
flags.DEFINE_integer("checkpoint_every", 200, "Checkpoint every N steps.", lower_bound=1)
flags.DEFINE_integer("eval_every", 0, "Validation mIoU every N steps (0: at the end).",
                     lower_bound=0)
flags.DEFINE_integer("image_every", 500, "Image summaries every N steps (0: never).",
                     lower_bound=0)
flags.DEFINE_integer("val_batches", 0, "Periodic validation (--eval_every) on the first N val "
                     "images (0: all); the final validation always uses the whole split.",
                     lower_bound=0)
flags.DEFINE_integer("bn_recalibration_batches", 50, "Re-estimate BatchNorm statistics on N "
                     "training batches before each evaluation and the export (0: off).",
                     lower_bound=0)
flags.DEFINE_enum("class_weighting", "none", ["none", "median_frequency",
                                               "sqrt_median_frequency"],
                  "Per-class loss weights from the training labels' class frequencies.")
flags.DEFINE_string("test_split", "", "Also evaluate this split at the end (e.g. test); its "
                    "mIoU and per-class IoU go into <export_dir>/metrics.json beside val's.")
flags.DEFINE_integer("seed", 0, "Random seed (initialisation; data order when > 0).",
                     lower_bound=0)
flags.DEFINE_bool("restart", False, "Train from step 0 even though --logdir holds checkpoints "
                  "(without it a logdir resumes from its newest intact checkpoint, and one whose "
                  "checkpoints are all damaged or of another network is an error).")
flags_lib.require_finite("photometric", "learning_rate", "poly_power", "weight_decay", "width_multiplier")


def _config():
    from taplab_tf.train import TrainConfig
    if not FLAGS.logdir:
        raise ValueError("--logdir is required")
    if not FLAGS.data_dir:
        raise ValueError("--data_dir is required")
    if not os.path.isdir(FLAGS.data_dir):
        raise ValueError(f"--data_dir {FLAGS.data_dir} is not a directory")
    try:
        crop = tuple(int(v) for v in FLAGS.crop)
        scale = tuple(float(v) for v in FLAGS.scale_range)
    except ValueError:
        raise ValueError("--crop must be HEIGHT,WIDTH integers and --scale_range MIN,MAX") \
            from None
    kwargs = {}
    if FLAGS.width_multiplier is not None:
        kwargs["width_multiplier"] = FLAGS.width_multiplier
    if FLAGS.decoder_channels is not None:
        if FLAGS.model != "bl2":
            raise ValueError(f"--decoder_channels applies to bl2, not {FLAGS.model}")
        kwargs["decoder_channels"] = FLAGS.decoder_channels
    if FLAGS.depths is not None:
        if FLAGS.model == "bl2":
            raise ValueError("--depths applies to bl1 and bl3 (ResNet), not bl2")
        kwargs["depths"] = [int(v) for v in FLAGS.depths]
    command = " ".join(["python -m experiments.train"] +
                       [shlex.quote(a) for a in sys.argv[1:]])
    cfg = TrainConfig(
        model=FLAGS.model, model_kwargs=kwargs, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
        logdir=FLAGS.logdir, steps=FLAGS.steps, batch_size=FLAGS.batch_size, crop=crop,
        scale_range=scale, photometric=FLAGS.photometric, use_sequence_frames=FLAGS.use_sequence_frames,
        learning_rate=FLAGS.learning_rate, poly_power=FLAGS.poly_power,
        weight_decay=FLAGS.weight_decay, strategy=FLAGS.strategy, log_every=FLAGS.log_every,
        checkpoint_every=FLAGS.checkpoint_every, eval_every=FLAGS.eval_every,
        image_every=FLAGS.image_every, val_batches=FLAGS.val_batches,
        bn_recalibration_batches=FLAGS.bn_recalibration_batches,
        export_dir=FLAGS.export_dir or "", seed=FLAGS.seed, command=command,
        init_from=FLAGS.init_from or "", class_weighting=FLAGS.class_weighting,
        test_split=FLAGS.test_split, restart=FLAGS.restart)
    from taplab_tf.models import model_kwargs
    model_kwargs(cfg.model, **kwargs)  # reject bad model arguments before any data is read
    return cfg.validate()


def main(argv):
    from experiments import common
    common.reject_extra_args(argv)

    def run():
        from taplab_tf.train import train
        result = train(_config())
        print(f"done: step {result['step']}, val mIoU {result['val_miou']}, model "
              f"{result['export_dir']}")

    common.run_or_exit(run)


if __name__ == "__main__":
    app.run(main)
