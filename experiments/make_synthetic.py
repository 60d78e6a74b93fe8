"""Writes synthetic street clips in the Cityscapes layout (the project's default data).

    python -m experiments.make_synthetic --output_dir=data/synthetic --num_clips=8 \
        --clip_length=30 --height=256 --width=512 --seed=0 --split=train \
        [--difficulty=1.0] [--contact_sheet=sheet.png]

Layout (taplab_tf.data.synthetic.write_cityscapes_tree): every frame under
leftImg8bit_sequence/<split>/synthtown/, its labels (gtFine_labelIds and gtFine_labelTrainIds)
under gtFine/<split>/synthtown/, and the annotated frame (19, or the last frame of a clip shorter
than 20) under leftImg8bit/<split>/synthtown/.

The split is written whole or not at all: generated under a temporary folder inside --output_dir,
moved into place when complete (an error, Ctrl-C or SIGTERM removes it); a split and city that
--output_dir already holds is refused, not overwritten.

--calibrate encodes one generated clip (MPEG-4 Part 2, GOP 12, 17 fps, --qscale) instead and
prints its motion-vector and residual statistics next to the real-Cityscapes targets scaled to
--height x --width (docs/synthetic.md).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time

from absl import app, flags

from taplab_tf.data import synthetic

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", None, "Root of the Cityscapes-layout tree to write.")
flags.DEFINE_integer("num_clips", 4, "Number of clips (sequences).", lower_bound=1)
flags.DEFINE_integer("clip_length", 30, "Frames per clip.", lower_bound=1)
flags.DEFINE_integer("height", 256, "Frame height in pixels.", lower_bound=16)
flags.DEFINE_integer("width", 512, "Frame width in pixels.", lower_bound=16)
flags.DEFINE_integer("seed", 0, "Base seed; clip i of a split uses clip_seed(seed, split, i).",
                     lower_bound=0)
flags.DEFINE_string("split", "train", "Split name: train, val or test.")
flags.DEFINE_float("difficulty", 1.0, "Scales speeds, camera yaw and object density (0 = still).",
                   lower_bound=0.0, upper_bound=10.0)
flags.DEFINE_string("city", synthetic.CITY, "City name used in directories and file names.")
flags.DEFINE_string("contact_sheet", None,
                    "Also write a PNG of frames and colourised labels of the first clip here.")
flags.DEFINE_bool("calibrate", False, "Encode one clip and print compressed-domain statistics "
                  "instead of writing a tree.")
flags.DEFINE_float("qscale", 6.0, "--calibrate: MPEG-4 constant quantiser (Cityscapes: qmax 6).",
                   lower_bound=1.0, upper_bound=31.0)
flags.DEFINE_integer("gop", 12, "--calibrate: GOP length.", lower_bound=1)


def _calibrate():
    t0 = time.time()
    r = synthetic.calibrate(FLAGS.height, FLAGS.width, FLAGS.clip_length, FLAGS.seed,
                            FLAGS.difficulty, gop=FLAGS.gop, qscale=FLAGS.qscale)
    targets = synthetic.scaled_targets(FLAGS.height, FLAGS.width)
    r["targets_at_this_size"] = targets
    r["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(r, indent=1, default=lambda v: list(v) if isinstance(v, tuple) else str(v)))
    for key, (lo, hi) in targets.items():
        v = r[key]
        print(f"{key:24s} {v:12.4g}  target [{lo:.4g}, {hi:.4g}]  "
              f"{'in range' if lo <= v <= hi else 'OUT OF RANGE'}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.calibrate:
        _calibrate()
        return
    if not FLAGS.output_dir:
        raise app.UsageError("--output_dir is required")
    if FLAGS.split not in ("train", "val", "test"):
        raise app.UsageError(f"--split must be train, val or test, got {FLAGS.split!r}")
    t0 = time.time()
    kinds = ("gtFine", "leftImg8bit_sequence", "leftImg8bit")  # labels move in first
    finals = [os.path.join(FLAGS.output_dir, k, FLAGS.split, FLAGS.city) for k in kinds]
    held = [d for d in finals if os.path.exists(d)]
    if held:
        raise SystemExit(f"error: --output_dir {FLAGS.output_dir} already holds split "
                         f"{FLAGS.split!r} of city {FLAGS.city!r} ({held[0]}); choose another "
                         f"--output_dir, --split or --city, or remove it")

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt  # unwinds like Ctrl-C: the temporary folder is removed

    signal.signal(signal.SIGTERM, on_sigterm)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".make_synthetic.", dir=FLAGS.output_dir)
    try:
        try:
            out = synthetic.write_cityscapes_tree(
                staging, FLAGS.split, FLAGS.num_clips, FLAGS.clip_length, FLAGS.height,
                FLAGS.width, FLAGS.seed, FLAGS.difficulty, city=FLAGS.city,
                progress=lambda msg: print(f"[{time.time() - t0:7.1f}s] "
                                           f"{msg.replace(staging, FLAGS.output_dir)}",
                                           flush=True))
        except ValueError as e:
            raise app.UsageError(str(e))
        if FLAGS.contact_sheet:
            from taplab_tf.io_utils import atomic_write
            with atomic_write(FLAGS.contact_sheet) as tmp:
                synthetic.contact_sheet_from_tree(out["clips"][0]["frames"], path=tmp)
        for kind, final in zip(kinds, finals):
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.rename(os.path.join(staging, kind, FLAGS.split, FLAGS.city), final)
    except KeyboardInterrupt:
        raise SystemExit("interrupted: nothing was written to --output_dir") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    from experiments import common
    common.write_run_config(os.path.join(
        FLAGS.output_dir, f"make_synthetic_{FLAGS.split}_{FLAGS.city}.json"), "make_synthetic")
    print(f"wrote {FLAGS.num_clips} clips x {FLAGS.clip_length} frames to {FLAGS.output_dir} "
          f"(annotated frame {out['annotated_frame']}) in {time.time() - t0:.1f}s")
    if FLAGS.contact_sheet:
        print(f"contact sheet: {FLAGS.contact_sheet}")


if __name__ == "__main__":
    app.run(main)
