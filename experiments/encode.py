"""Re-encode frames or a video to the stream layout TapLab reads: MPEG-4 Part 2 Simple Profile, an
I-frame every --gop frames (no scene-cut I-frames), no B-frames.

    python -m experiments.encode --input=<frame directory, glob, or any video> --output=X.avi \
        --gop=12 [--fps=17] [--qscale=Q | --bitrate=B] [--start=K --num_frames=N] [--mv4]

--input: a directory of images (sorted by name), a quoted glob ('frames/*.png') or a video file.
--fps: output frame rate (default: the input video's, 17 for images). Default quality: qscale 3.
Prints one summary line (frames, GOPs, size); bad input ends with one 'error:' line, a truncated
or damaged input video gives one 'warning:' line (frames encoded, where it stopped). The output is
written under a temporary name and renamed when complete; --output equal to --input is refused.
See third_party/compressed_video/encoder.py for the details (odd sizes, containers).
"""
from __future__ import annotations

import os
import signal
import sys
import time
import warnings

from absl import app, flags

FLAGS = flags.FLAGS


def _define():
    def once(kind, name, default, help_, **kw):
        if name not in FLAGS:
            getattr(flags, f"DEFINE_{kind}")(name, default, help_, **kw)
    once("string", "input", None, "Frame directory, glob pattern or video file.")
    once("string", "output", None, "Output video (.avi recommended).")
    once("integer", "gop", 12, "GOP length: one I-frame every gop frames.", lower_bound=1)
    once("float", "fps", None, "Frame rate (default: the input video's, else 17).",
         lower_bound=1e-3, upper_bound=1e4)
    once("float", "qscale", None, "Constant quantiser 1..31 (smaller is better; default 3).",
         lower_bound=1, upper_bound=31)
    once("integer", "bitrate", None, "Target bit rate in bits/s (instead of --qscale).")
    once("integer", "start", 0, "First input frame to encode.", lower_bound=0)
    once("integer", "num_frames", None, "Number of frames to encode (default: all).")
    once("bool", "mv4", False, "Allow 8x8 (4MV) prediction blocks.")


_define()


def main(argv):
    from experiments.common import reject_extra_args, run_or_exit
    from third_party.compressed_video import encode_video, open_compressed
    reject_extra_args(argv)
    if not FLAGS.input or not FLAGS.output:
        raise SystemExit("error: --input and --output are required")
    if FLAGS.qscale is not None and FLAGS.bitrate is not None:
        raise SystemExit("error: give --qscale or --bitrate, not both")
    t0 = time.perf_counter()

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt  # unwinds like Ctrl-C: the temporary output is removed

    signal.signal(signal.SIGTERM, on_sigterm)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = run_or_exit(lambda: encode_video(
            FLAGS.input, FLAGS.output, gop=FLAGS.gop, fps=FLAGS.fps, qscale=FLAGS.qscale,
            bitrate=FLAGS.bitrate, start=FLAGS.start, num_frames=FLAGS.num_frames,
            mv4=FLAGS.mv4))
    for w in caught:  # e.g. a truncated input: one line each
        print(f"warning: {w.message}", file=sys.stderr)
    dt = time.perf_counter() - t0

    def summary():
        with open_compressed(out, rgb=False, residual=None) as v:
            return (f"{out}: {v.num_frames} frames {v.width}x{v.height} {v.fps:g} fps, "
                    f"{v.num_gops} GOPs of {FLAGS.gop}, mpeg4 (no B-frames), "
                    f"{os.path.getsize(out) / 1e6:.2f} MB, encoded in {dt:.1f} s")
    print(run_or_exit(summary))


if __name__ == "__main__":
    app.run(main)
