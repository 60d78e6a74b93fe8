"""Exceptions of the compressed-video package.

Every error raised on bad input is a one-line message that names the file and the problem, e.g.
``ReaderError: clip.avi: truncated or corrupt stream at frame 37 (...)``; FFmpeg's own exceptions
never escape from the public functions.
"""


class CompressedVideoError(Exception):
    """Base class of the package's errors."""


class ReaderError(CompressedVideoError):
    """A video cannot be read as a compressed stream (missing, empty, not a video, wrong codec,
    B-frames, ...). The message is one line naming the file."""


class EncoderError(CompressedVideoError, ValueError):
    """encode_video() cannot encode the given input (bad frames, bad options, unwritable output)."""


class ReaderWarning(UserWarning):
    """Recoverable trouble while reading (truncated stream, non-MPEG-4 codec semantics)."""
