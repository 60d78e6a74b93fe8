"""Compressed-domain video for TapLab: a one-pass MPEG-4 Part 2 reader (frames, block motion
vectors, residuals and their summaries), an encoder to the fixed-GOP, no-B-frame layout it reads,
and a coviar-compatible API (``third_party.compressed_video.coviar``).

See reader.py (API and definitions), enums.py (PictureType and the option names), residual.py
(a P-frame's residual and the pass that computes it), motion.py (vector conventions, motion
compensation), native.py (the reader's C++ residual kernel: build, fallback, backend()),
encoder.py (encoding) and coviar.py (coviar-compatible load / get_num_frames / get_num_gops).
"""
from .encoder import encode_command, encode_video
from .enums import ColorConversion, PictureType, ResidualMode, RGBMode
from .errors import CompressedVideoError, EncoderError, ReaderError, ReaderWarning
from .motion import (accumulate_motion, block_motion, expand_motion, grid_shape,
                     motion_compensate)
from .reader import CompressedFrame, CompressedVideo, open_compressed

__all__ = [
    "open_compressed", "CompressedVideo", "CompressedFrame", "encode_video", "encode_command",
    "ReaderError", "ReaderWarning", "EncoderError", "CompressedVideoError", "motion_compensate",
    "expand_motion", "block_motion", "grid_shape", "accumulate_motion", "PictureType",
    "RGBMode", "ColorConversion", "ResidualMode",
]
