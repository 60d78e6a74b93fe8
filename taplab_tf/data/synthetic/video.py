"""The synthetic clip encoder: a generated clip encoded to MPEG-4 Part 2 as TapLab reads it.

The one home for "a synthetic street clip, encoded": the benchmarks, the apps' embedded default
input, the codec calibration and the tests all call encode_clip.
"""
from __future__ import annotations

from typing import Callable, Optional

from taplab_tf.data.synthetic.base import FPS, Frame, _check_args
from taplab_tf.data.synthetic.render import iter_clip


def encode_clip(path: str, height: int, width: int, num_frames: int, seed: int = 0,
                difficulty: float = 1.0, *, gop: int = 12, qscale: Optional[float] = None,
                fps: float = FPS, mv4: bool = False,
                on_frame: Optional[Callable[[Frame], None]] = None) -> str:
    """Renders generate_clip(height, width, num_frames, seed, difficulty) frame by frame and
    encodes it to `path` (MPEG-4 Part 2, fixed GOP `gop`, no B-frames, `fps`; third_party's
    encode_video, written whole or not at all). Returns the path.

    on_frame(frame) is called with every rendered Frame (index, image, label, flow) before the
    frame is encoded, for callers that also want the labels or the ground-truth flow; the clip
    is never held in memory as a whole. Bad arguments raise ValueError naming the argument
    before anything is written.
    """
    from third_party.compressed_video import encode_video

    height, width, num_frames, seed, difficulty = _check_args(height, width, num_frames, seed,
                                                              difficulty)

    def frames():
        for fr in iter_clip(height, width, num_frames, seed, difficulty):
            if on_frame is not None:
                on_frame(fr)
            yield fr.image

    return encode_video(frames(), path, gop=gop, fps=fps, qscale=qscale, mv4=mv4)
