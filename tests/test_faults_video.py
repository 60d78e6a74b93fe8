"""Fault suite (issue 13), videos: encode never destroys or truncates what is at --output, warns
on a truncated input, names a damaged VOL header; the reader names skipped leading frames."""
import hashlib
import os
import subprocess
import sys
import warnings

import av
import numpy as np
import pytest

from third_party.compressed_video import (EncoderError, ReaderWarning, encode_video,
                                          open_compressed)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def frames(n=24, h=48, w=64, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, h, w, 3)).astype(np.uint8)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return encode_video(frames(), str(tmp_path_factory.mktemp("clip") / "clip.avi"), gop=6)


def test_encode_refuses_to_write_over_its_input(clip, tmp_path):
    before = sha(clip)
    with pytest.raises(EncoderError, match="is the input itself"):
        encode_video(clip, clip)
    link = tmp_path / "same.avi"
    os.link(clip, link)  # another name of the same file
    with pytest.raises(EncoderError, match="is the input itself"):
        encode_video(clip, str(link))
    assert sha(clip) == before


def test_encode_cli_same_file_is_one_line(clip):
    before = sha(clip)
    r = subprocess.run([sys.executable, "-m", "experiments.encode", f"--input={clip}",
                        f"--output={clip}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "is the input itself" in r.stderr.strip().splitlines()[-1]
    assert sha(clip) == before


def test_failed_encode_keeps_the_existing_output_and_leaves_no_file(tmp_path):
    out = tmp_path / "out.avi"
    out.write_bytes(b"the user's earlier video")
    bad = [frames(1)[0], frames(1, h=32)[0]]  # the second frame has another size
    with pytest.raises(EncoderError, match="frame 1"):
        encode_video(bad, str(out))
    assert out.read_bytes() == b"the user's earlier video"
    assert sorted(os.listdir(tmp_path)) == ["out.avi"]


def test_encode_never_writes_the_final_name_before_it_is_complete(tmp_path):
    out = tmp_path / "out.avi"
    seen = []

    def source():
        for k, f in enumerate(frames(8)):
            if k == 5:
                seen.append(out.exists())
            yield f
    encode_video(source(), str(out), gop=4)
    assert seen == [False]  # a kill at frame 5 would leave nothing at the final name
    assert sorted(os.listdir(tmp_path)) == ["out.avi"]
    with open_compressed(str(out)) as v:
        assert v.num_frames == 8

    def interrupted():
        yield from frames(3)
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        encode_video(interrupted(), str(out), gop=4)
    assert sorted(os.listdir(tmp_path)) == ["out.avi"]
    with open_compressed(str(out)) as v:
        assert v.num_frames == 8  # the earlier complete output is still there


def test_encoding_a_truncated_input_warns_how_many_frames(clip, tmp_path):
    data = open(clip, "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.warns(ReaderWarning, match=r"cut\.avi: input ended after (\d+) of 24 frames"):
        out = encode_video(str(cut), str(tmp_path / "re.avi"), gop=6)
    with open_compressed(out) as v:
        assert 0 < v.num_frames < 24


def patch_vol_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrites video_object_layer_width/height of the first MPEG-4 VOL header (14496-2 6.2.3)."""
    start = next(i for i in range(len(data) - 4) if data[i:i + 3] == b"\x00\x00\x01"
                 and 0x20 <= data[i + 3] <= 0x2F) + 4
    bits = "".join(f"{b:08b}" for b in data[start:start + 64])
    pos = 0

    def take(n):
        nonlocal pos
        pos += n
        return int(bits[pos - n:pos], 2)
    take(9)
    if take(1):
        take(7)
    if take(4) == 15:
        take(16)
    if take(1):
        take(3)
        if take(1):
            take(79)
    assert take(2) == 0
    take(1)
    res = take(16)
    take(1)
    if take(1):
        take(max(1, (res - 1).bit_length()))
    take(1)
    assert (take(13), take(1), take(13)) == (64, 1, 48)  # the parse found the real size
    bits = bits[:pos - 27] + f"{width:013b}1{height:013b}" + bits[pos:]
    return data[:start] + int(bits, 2).to_bytes(64, "big") + data[start + 64:]


def test_damaged_vol_header_is_named_with_the_input(clip, tmp_path):
    bad = tmp_path / "vol.avi"
    bad.write_bytes(patch_vol_size(open(clip, "rb").read(), 8190, 8190))
    with pytest.raises(EncoderError, match=r"vol\.avi: its MPEG-4 VOL header claims a "
                                           r"8190x8190 frame") as e:
        encode_video(str(bad), str(tmp_path / "out.partial"))
    assert "\n" not in str(e.value) and "out.partial" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == ["vol.avi"]


def drop_leading_packets(src, dst, k):
    """A copy of src without its first k frames (stream copy): it starts with P-frames."""
    with av.open(src) as i, av.open(dst, "w") as o:
        s = i.streams.video[0]
        t = o.add_stream_from_template(s)
        n = 0
        for pkt in i.demux(s):
            if pkt.size == 0:
                continue
            if n >= k:
                pkt.pts = pkt.dts = n - k
                pkt.stream = t
                o.mux(pkt)
            n += 1
    return dst


def test_reader_names_leading_frames_before_the_first_iframe(clip, tmp_path):
    path = drop_leading_packets(clip, str(tmp_path / "lead.avi"), 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_compressed(path) as v:
            got = list(v)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ReaderWarning)]
    assert len(got) == 18 and got[0].pict_type == "I"
    assert msgs == [f"{path}: skipped the 3 leading frames before the first I-frame (P-frames "
                    f"without their reference); frame 0 is that I-frame"], msgs
