"""Tests of encode_video / python -m experiments.encode (MPEG-4 Part 2, fixed GOP, no B-frames)."""
import os
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest

from tests.helpers.frames import texture
from third_party.compressed_video import EncoderError, encode_video, open_compressed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pan(n, dx=2, dy=1, h=64, w=96, seed=0):
    m = 8 + n * max(abs(dx), abs(dy))
    big = texture(h + 2 * m, w + 2 * m, seed)
    return np.stack([big[m - dy * t:m - dy * t + h, m - dx * t:m - dx * t + w] for t in range(n)])


def stream_info(path):
    with av.open(path) as c:
        s = c.streams.video[0]
        types = [int(f.pict_type) for f in c.decode(s)]
        return s.codec_context.name, s.codec_context.profile, types, float(s.average_rate)


def test_fixed_gop_without_scene_cut_iframes(tmp_path):
    # a hard cut to unrelated content in the middle of a GOP must not create an I-frame
    frames = np.concatenate([pan(17, seed=0), pan(13, seed=5)[:, ::-1]])
    p = encode_video(frames, str(tmp_path / "cut.avi"), gop=8, fps=25)
    codec, profile, types, fps = stream_info(p)
    assert codec == "mpeg4" and profile == "Simple Profile"
    assert types == [1 if k % 8 == 0 else 2 for k in range(30)]   # I=1, P=2, no B
    assert fps == 25


def test_inputs_directory_glob_video_and_range(tmp_path):
    frames = pan(12)
    d = tmp_path / "frames"
    d.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(d / f"img_{i:03d}.png"), f[:, :, ::-1])
    (d / "notes.txt").write_text("not an image")
    a = encode_video(str(d), str(tmp_path / "a.avi"), gop=4, qscale=2)
    b = encode_video(str(d / "img_*.png"), str(tmp_path / "b.avi"), gop=4, qscale=2, start=2,
                     num_frames=5)
    c = encode_video(a, str(tmp_path / "c.mp4"), gop=6, fps=None)     # keeps 17 fps
    with open_compressed(a) as v:
        got = list(v)
    assert len(got) == 12
    assert np.abs(got[3].image.astype(int) - frames[3]).mean() < 4  # RGB order kept
    with open_compressed(b) as v:
        got_b = list(v)
    assert len(got_b) == 5
    assert np.abs(got_b[0].image.astype(int) - frames[2]).mean() < 4
    _, _, types, fps = stream_info(c)
    assert types == [1 if k % 6 == 0 else 2 for k in range(12)] and fps == 17


def test_quality_controls(tmp_path):
    frames = pan(12, h=128, w=256)
    sizes = {q: os.path.getsize(encode_video(frames, str(tmp_path / f"q{q}.avi"), qscale=q))
             for q in (2, 20)}
    assert sizes[2] > 1.5 * sizes[20]
    low = encode_video(frames, str(tmp_path / "br.avi"), bitrate=20_000)
    assert os.path.getsize(low) < sizes[2]
    with pytest.raises(EncoderError, match="not both"):
        encode_video(frames, str(tmp_path / "x.avi"), qscale=3, bitrate=10_000)
    with pytest.raises(EncoderError, match="qscale"):
        encode_video(frames, str(tmp_path / "x.avi"), qscale=40)


def test_odd_and_unaligned_sizes_round_trip(tmp_path):
    for h, w in [(63, 95), (100, 150)]:
        frames = pan(5, h=h, w=w)
        p = encode_video(frames, str(tmp_path / f"s{h}.avi"), gop=3, qscale=2)
        with open_compressed(p) as v:
            got = list(v)
        assert (v.height, v.width) == (h, w) and len(got) == 5
        assert got[1].image.shape == (h, w, 3)
        assert np.abs(got[4].image.astype(int) - frames[4]).mean() < 5


def test_frame_arrays_of_other_types(tmp_path):
    frames = pan(4)
    grey = frames[..., 0]
    p = encode_video(list(grey), str(tmp_path / "g.avi"))
    assert len(stream_info(p)[2]) == 4
    p = encode_video((f.astype(np.float32) for f in frames), str(tmp_path / "f.avi"))
    assert len(stream_info(p)[2]) == 4


def test_bad_input_is_one_clear_line_and_leaves_no_file(tmp_path):
    out = tmp_path / "o.avi"
    cases = [
        (lambda: encode_video(str(tmp_path / "missing"), str(out)), "no such file"),
        (lambda: encode_video(str(tmp_path), str(out)), "holds no images"),
        (lambda: encode_video(np.zeros((0, 8, 8, 3), np.uint8), str(out)), "no frames"),
        (lambda: encode_video(pan(3), str(out), start=5), "no frames"),
        (lambda: encode_video([np.zeros((16, 16, 3), np.uint8), np.zeros((32, 16, 3), np.uint8)],
                              str(out)), "frame 1 is 16x32"),
        (lambda: encode_video(np.zeros((2, 8, 8, 5), np.uint8), str(out)), "expected an HxWx3"),
        (lambda: encode_video(pan(3), str(tmp_path / "nodir" / "o.avi")), "does not exist"),
        (lambda: encode_video(pan(3), str(out), gop=0), "gop"),
        (lambda: encode_video(str(tmp_path / "*.png"), str(out)), "glob matches no file"),
    ]
    (tmp_path / "text.avi").write_text("hello")
    cases.append((lambda: encode_video(str(tmp_path / "text.avi"), str(out)), "text.avi"))
    for fn, msg in cases:
        with pytest.raises(EncoderError, match=msg) as e:
            fn()
        assert "\n" not in str(e.value)
        assert not out.exists()


def test_command_line(tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    for i, f in enumerate(pan(10)):
        cv2.imwrite(str(d / f"{i:02d}.png"), f[:, :, ::-1])
    out = tmp_path / "cli.avi"
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "experiments.encode", f"--input={d}",
                        f"--output={out}", "--gop=4", "--fps=10", "--qscale=4", "--start=1",
                        "--num_frames=7"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "7 frames" in r.stdout and "2 GOPs" in r.stdout
    _, _, types, fps = stream_info(str(out))
    assert types == [1, 2, 2, 2, 1, 2, 2] and fps == 10
    r = subprocess.run([sys.executable, "-m", "experiments.encode", f"--input={tmp_path}/nope",
                        f"--output={out}"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in r.stderr
