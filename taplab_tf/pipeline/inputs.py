"""The main job's inputs, checked without TensorFlow: which files a --video names, and whether
each is a video this project can read (directly or after a re-encode). The apps call these before
loading a model, so a bad input fails at once.
"""
from __future__ import annotations

import os
from typing import List

VIDEO_EXTENSIONS = (".avi", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".ts", ".mts", ".m2ts",
                    ".mpg", ".mpeg", ".3gp", ".flv", ".wmv", ".h264", ".264", ".hevc", ".265")


class SegmentError(ValueError):
    """A video cannot be segmented as asked; the message names the file."""


def check_video(path: str):
    """Probes a video before anything heavy is loaded: one SegmentError line for a missing,
    empty, truncated or non-video file. Returns its StreamInfo."""
    from third_party.compressed_video.transcode import TranscodeError, probe
    try:
        return probe(path)
    except TranscodeError as e:
        raise SegmentError(str(e)) from None


def find_videos(spec: str) -> List[str]:
    """The videos named by `spec`: a file, a directory (its video files, sorted by name) or a
    glob pattern. SegmentError where it names nothing."""
    import glob
    if os.path.isdir(spec):
        found = sorted(os.path.join(spec, n) for n in os.listdir(spec)
                       if os.path.isfile(os.path.join(spec, n))
                       and os.path.splitext(n)[1].lower() in VIDEO_EXTENSIONS)
        if not found:
            raise SegmentError(f"{spec}: the directory holds no video files "
                               f"({', '.join(VIDEO_EXTENSIONS[:6])}, ...)")
        return found
    if any(c in spec for c in "*?["):
        found = sorted(p for p in glob.glob(spec) if os.path.isfile(p))
        if not found:
            raise SegmentError(f"{spec}: the pattern matches no file")
        return found
    return [spec]
