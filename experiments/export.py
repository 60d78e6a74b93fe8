"""Export phi as a SavedModel with a serving signature (uint8 image -> logits and labels).

    python -m experiments.export --checkpoint=taplab_tf/assets/bl2_camvid --output=exported/bl2

The SavedModel serves with TF Serving (see README, "Serving phi") and runs in the engine:
`segment --checkpoint=exported/bl2` (a worker then needs only the SavedModel and the ops).
An existing --output is never overwritten.
"""
from absl import app, flags

from experiments import common

flags.DEFINE_string("checkpoint", None, "Model directory written by experiments.train (default: "
                    "the shipped real-data model).")
flags.DEFINE_string("output", None, "SavedModel folder to create (must not exist).")
FLAGS = flags.FLAGS


def main(argv):
    common.reject_extra_args(argv)
    common.quiet_tensorflow(FLAGS.verbosity)
    if not FLAGS.output:
        raise SystemExit("error: --output is required (a new folder)")
    import os
    if os.path.exists(FLAGS.output):
        raise SystemExit(f"error: --output {FLAGS.output} already exists; choose a new folder")
    checkpoint = FLAGS.checkpoint or common.REAL_DATA_CHECKPOINT
    model, meta = common.load_checkpoint(checkpoint)
    from taplab_tf.models import export
    common.run_or_exit(lambda: export.export_saved_model(model, FLAGS.output, meta))
    # The run's settings, where SavedModel keeps files that are not the graph (TF Serving reads
    # assets.extra only for its own warm-up file and ignores the rest).
    common.write_run_config(os.path.join(FLAGS.output, "assets.extra", "export_config.json"),
                            "export", settings={"checkpoint": checkpoint})
    print(f"wrote {FLAGS.output}: SavedModel of {meta['model']} ({meta.get('dataset')}, "
          f"{meta['num_classes']} classes, output stride {model.output_stride}); signatures "
          f"serving_default (uint8 images -> logits, labels) and logits")


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    app.run(main)
