"""Named values of the reader's API: picture types and the options open_compressed takes.

All are ``enum.StrEnum``: a member *is* its string, so ``frame.pict_type == "I"``,
``f"{frame.pict_type}"`` (``I``) and ``json.dumps`` behave as with the bare strings the reader used
before, and ``repr`` names the member (``<PictureType.I: 'I'>``).

    PictureType      I, P (what the reader yields); B, S, SI, SP, BI (FFmpeg's other types, which
                     it rejects or maps: see reader.py)
    RGBMode          EAGER (rgb=True), LAZY (rgb='lazy'), OFF (rgb=False): when frames are
                     converted to RGB
    ColorConversion  SWSCALE (FFmpeg's swscale, default), CV2 (OpenCV COLOR_YUV2RGB_I420)
    ResidualMode     FULL (int16 map and summaries), SUMMARY (summaries only); None for no residual

The option parsers (``RGBMode.parse`` and the others) accept a member, its string (and for rgb the
old booleans) and raise one-line ValueErrors naming the allowed values.
"""
from __future__ import annotations

import enum
from typing import Optional


class PictureType(enum.StrEnum):
    """A frame's picture type, with FFmpeg's names (AVPictureType)."""
    I = "I"
    P = "P"
    B = "B"
    S = "S"    # MPEG-4 GMC sprite
    SI = "SI"
    SP = "SP"
    BI = "BI"

    @classmethod
    def from_ffmpeg(cls, code) -> Optional["PictureType"]:
        """The type for FFmpeg's AVPictureType number (PyAV's ``frame.pict_type``); None for
        AV_PICTURE_TYPE_NONE (0) and unknown numbers."""
        return _FFMPEG_CODES.get(int(code))


_FFMPEG_CODES = {1: PictureType.I, 2: PictureType.P, 3: PictureType.B, 4: PictureType.S,
                 5: PictureType.SI, 6: PictureType.SP, 7: PictureType.BI}


def _allowed(cls, extra=()) -> str:
    return ", ".join([*(repr(m.value) for m in cls), *extra])


def _lookup(cls, value, name: str, extra=()):
    """The member of cls named by value (a member or its string), else a one-line ValueError."""
    if isinstance(value, str):  # members are strs too
        try:
            return cls(value)
        except ValueError:
            pass
    raise ValueError(f"{name} must be one of {_allowed(cls, extra)} ({cls.__name__}), "
                     f"got {value!r}")


class RGBMode(enum.StrEnum):
    """When the reader converts frames to RGB (open_compressed's ``rgb``)."""
    EAGER = "eager"   # every frame, in the reader's thread (rgb=True)
    LAZY = "lazy"     # when frame.image is first read (rgb='lazy')
    OFF = "off"       # never, unless a residual needs it (rgb=False)

    @classmethod
    def parse(cls, value) -> "RGBMode":
        """True, False, 'lazy' (the old spellings), a member or its string."""
        if not isinstance(value, str):
            try:
                if value in (True, False):  # also 1/0 and numpy booleans, as before
                    return cls.EAGER if value else cls.OFF
            except (TypeError, ValueError):  # e.g. an array: rejected below
                pass
        return _lookup(cls, value, "rgb", extra=("True", "False"))


class ColorConversion(enum.StrEnum):
    """The YUV 4:2:0 -> RGB converter (open_compressed's ``color``)."""
    SWSCALE = "swscale"   # FFmpeg's swscale, BT.601 limited range (the faster here)
    CV2 = "cv2"           # OpenCV COLOR_YUV2RGB_I420 (odd sizes fall back to swscale)

    @classmethod
    def parse(cls, value) -> "ColorConversion":
        return _lookup(cls, value, "color")


class ResidualMode(enum.StrEnum):
    """What the reader computes of Res (open_compressed's ``residual``; None: nothing)."""
    FULL = "full"         # the int16 map and the summaries
    SUMMARY = "summary"   # residual_sum and the block counts, never the int16 map

    @classmethod
    def parse(cls, value) -> Optional["ResidualMode"]:
        if value is None:
            return None
        return _lookup(cls, value, "residual", extra=("None",))
