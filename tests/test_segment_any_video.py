"""The main job on the videos people have: any codec in (re-encoded on the fly), many files at once,
outputs written whole, the input checked before the model loads, the legend on the overlay."""
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from taplab_tf import config as C
from taplab_tf.pipeline import engine as E
from taplab_tf.pipeline import segment as S
from tests.helpers.stream import interrupt_output_after
from tests.helpers import video as V
from third_party.compressed_video import open_compressed
from third_party.compressed_video import transcode as T

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_clip(path, codec, n=20, bf=2, options=None):
    """textured_pan frames encoded with `codec` (B-frames where the codec has them)."""
    frames, _ = V.textured_pan(n)
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=Fraction(25))
    stream.width, stream.height = V.W, V.H
    stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    if bf and codec != "mjpeg":
        stream.codec_context.max_b_frames = bf
    if options:
        stream.codec_context.options = options
    for i, img in enumerate(frames):
        f = av.VideoFrame.from_ndarray(img, format="rgb24")
        f.pts = i
        for p in stream.encode(f):
            container.mux(p)
    for p in stream.encode():
        container.mux(p)
    container.close()
    return str(path)


def h264_with_b_frames(directory, n=20):
    return make_clip(directory / "phone.mp4", "libx264", n,
                     options={"bf": "2", "preset": "ultrafast", "g": "250"})


def engine(gop=6, modules="ffw,rgc,rgfs"):
    return E.TapLabEngine(V.tiny_model(), C.TapLabConfig(modules=modules, gop=gop))


def frames_of(path):
    with open_compressed(path, rgb=False, residual=None) as v:
        return v.num_frames


def test_probe_tells_what_needs_a_reencode(tmp_path):
    h264 = T.probe(h264_with_b_frames(tmp_path))
    assert h264.codec == "h264" and h264.has_b_frames and T.transcode_reason(h264)
    native = T.probe(V.encoded_pan(tmp_path, 13, gop=6))
    assert native.codec == "mpeg4" and not native.has_b_frames and native.gop == 6
    assert T.transcode_reason(native) is None
    mpeg4_b = T.probe(make_clip(tmp_path / "b.avi", "mpeg4"))
    assert "B-frames" in T.transcode_reason(mpeg4_b)


@pytest.mark.parametrize("content", [None, b"", b"not a video at all" * 10])
def test_probe_fails_fast_with_one_line(tmp_path, content):
    path = tmp_path / "x.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(T.TranscodeError) as e:
        T.probe(str(path))
    assert "x.mp4" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("codec, ext", [("libx264", "mp4"), ("mpeg2video", "ts"),
                                        ("mjpeg", "avi"), ("mpeg4", "mkv")])
def test_any_codec_is_reencoded_to_the_layout_the_reader_needs(tmp_path, codec, ext):
    src = make_clip(tmp_path / f"in.{ext}", codec, n=15)
    with T.TemporaryTranscode(src, gop=6, tmp_dir=str(tmp_path)) as tc:
        info = T.probe(tc.path)
        assert (info.codec, info.has_b_frames, info.gop) == ("mpeg4", False, 6)
        with open_compressed(tc.path, residual=None) as v:
            types = "".join(f.pict_type for f in v)
        folder = tc.folder
    assert types == "IPPPPPIPPPPPIPP" and tc.frames == 15
    assert not os.path.exists(folder)  # the temporary folder is gone


def test_h264_with_b_frames_is_segmented_end_to_end(tmp_path):
    src = h264_with_b_frames(tmp_path)
    out = str(tmp_path / "out" / "seg.mp4")
    logs = []
    summary = S.segment_file(engine(), src, out, dataset="cityscapes", progress=False,
                             tmp_dir=str(tmp_path), labels_dir=str(tmp_path / "labels"),
                             log=logs.append)
    assert summary["transcoded"] and summary["frames"] == 20 and frames_of(out) == 20
    assert summary["i_frames"] == 4  # GOP 6 of the re-encode, not the H.264 stream's
    assert summary["fps_wall_includes_transcode"] and summary["transcode_seconds"] > 0
    assert any("re-encoding" in line and "h264" in line for line in logs)
    assert len(os.listdir(tmp_path / "labels")) == 20
    assert not [n for n in os.listdir(tmp_path) if n.startswith("taplab-transcode-")]
    assert os.listdir(tmp_path / "out") == ["seg.mp4"]


def test_transcode_never_refuses_and_always_reencodes(tmp_path):
    src = h264_with_b_frames(tmp_path)
    with pytest.raises(S.SegmentError, match="h264 is not MPEG-4 Part 2"):
        S.segment_file(engine(), src, str(tmp_path / "o.mp4"), transcode="never",
                       progress=False)
    assert not (tmp_path / "o.mp4").exists()
    native = V.encoded_pan(tmp_path, 13, gop=6)
    s = S.segment_file(engine(gop=4), native, str(tmp_path / "a.mp4"), transcode="always",
                       progress=False, log=lambda m: None)
    assert s["transcoded"] and s["i_frames"] == 4  # re-encoded at GOP 4: frames 0, 4, 8, 12


def test_an_explicit_gop_that_differs_from_the_streams_is_said(tmp_path):
    native = V.encoded_pan(tmp_path, 13, gop=6)
    logs = []
    s = S.segment_file(engine(gop=12), native, str(tmp_path / "a.mp4"), gop_given=True,
                       progress=False, log=logs.append)
    assert s["i_frames"] == 3 and not s["transcoded"]
    assert any("GOP 6" in m and "--gop=12" in m for m in logs)
    logs.clear()
    S.segment_file(engine(gop=12), native, str(tmp_path / "b.mp4"), progress=False,
                   log=logs.append)
    assert not logs  # not asked for explicitly: nothing to say


def test_interrupted_reencoded_run_leaves_nothing_behind(tmp_path, monkeypatch):
    src = h264_with_b_frames(tmp_path)
    eng = engine(modules="ffw")
    interrupt_output_after(monkeypatch, eng, 5)
    before = set(os.listdir(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        S.segment_file(eng, src, str(tmp_path / "o.mp4"), progress=False, tmp_dir=str(tmp_path),
                       log=lambda m: None)
    assert set(os.listdir(tmp_path)) == before


def test_another_runs_temporary_file_is_never_touched(tmp_path):
    """Two runs with the same --output used to share '<out>.partial.mp4'."""
    native = V.encoded_pan(tmp_path, 13, gop=6)
    other = tmp_path / "o.partial.mp4"
    other.write_bytes(b"another run's half-written video")
    S.segment_file(engine(), native, str(tmp_path / "o.mp4"), progress=False)
    assert other.read_bytes() == b"another run's half-written video"
    assert frames_of(str(tmp_path / "o.mp4")) == 13


def test_output_over_the_input_is_refused(tmp_path):
    native = V.encoded_pan(tmp_path, 13, gop=6)
    size = os.path.getsize(native)
    with pytest.raises(S.SegmentError, match="overwrite the input"):
        S.segment_file(engine(), native, native, progress=False)
    assert os.path.getsize(native) == size


def test_many_videos_with_one_bad_file(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    V.encoded_pan(src, 13, gop=6)
    make_clip(src / "clip.mkv", "mpeg2video", n=10)
    (src / "broken.mp4").write_bytes(b"\x00" * 100)
    videos = S.find_videos(str(src))
    assert [os.path.basename(v) for v in videos] == ["broken.mp4", "clip.mkv", "pan.avi"]
    done, failed = S.segment_many(engine(), videos, str(tmp_path / "out"), progress=False,
                                  log=lambda m: None)
    assert [os.path.basename(d["video"]) for d in done] == ["clip.mkv", "pan.avi"]
    assert len(failed) == 1 and "broken.mp4" in failed[0]["error"]
    assert sorted(os.listdir(tmp_path / "out")) == ["clip.mp4", "pan.mp4"]
    table = S.format_table(done, failed)
    assert "| pan.avi | 13 |" in table and "broken.mp4 | failed" in table


def test_find_videos_errors_name_the_spec(tmp_path):
    with pytest.raises(S.SegmentError, match="no video files"):
        S.find_videos(str(tmp_path))
    with pytest.raises(S.SegmentError, match="matches no file"):
        S.find_videos(str(tmp_path / "*.mp4"))


def test_overlay_draws_the_legend():
    strip = S.legend("camvid", 480)
    assert strip.shape[1] == 480 and strip.shape[0] < 100 and strip.any()
    image = np.full((360, 480, 3), 128, np.uint8)
    labels = np.zeros((360, 480), np.uint8)
    plain = S.overlay(image, labels, "camvid")
    drawn = S.overlay(image, labels, "camvid", legend_strip=strip)
    h = strip.shape[0]
    assert (drawn[:-h] == plain[:-h]).all() and (drawn[-h:] != plain[-h:]).any()


def run_app(*args, timeout=300):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-m", "experiments.segment", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.helpers.training import tiny_checkpoint
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "bl2", "camvid")


def test_app_directory_mode_reports_and_exits_nonzero(tmp_path, checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    h264_with_b_frames(src)
    (src / "bad.avi").write_text("not a video")
    out = tmp_path / "out"
    p = run_app(f"--video={src}", f"--output_dir={out}", f"--checkpoint={checkpoint}",
                "--gop=6", f"--summary_json={tmp_path / 'new' / 'dir' / 's.json'}")
    assert p.returncode == 1, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    # TF's start-up lines stay silent by default (oneDNN, cuda factories, TensorRT)
    assert "oneDNN" not in p.stderr and "cuda" not in p.stderr.lower()
    assert "| phone.mp4 | 20 |" in p.stdout and "bad.avi | failed" in p.stdout
    report = json.loads((out / "summary.json").read_text())
    assert [os.path.basename(v["video"]) for v in report["videos"]] == ["phone.mp4"]
    assert report["videos"][0]["transcoded"] and report["frames"] == 20
    assert (out / "phone.mp4").is_file() and (out / "summary.md").is_file()
    assert json.loads((tmp_path / "new" / "dir" / "s.json").read_text())["failed"]


def test_app_checks_the_video_before_loading_the_model(tmp_path):
    (tmp_path / "bad.mp4").write_text("not a video")
    p = run_app(f"--video={tmp_path / 'bad.mp4'}", f"--checkpoint={tmp_path / 'no_model'}")
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert "bad.mp4" in p.stderr and "no_model" not in p.stderr  # the video fails first


def test_app_sigterm_leaves_no_temporary_files(tmp_path, checkpoint):
    src = make_clip(tmp_path / "long.mp4", "libx264", n=300, options={"bf": "2",
                                                                      "preset": "ultrafast"})
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    os.makedirs(env["TMPDIR"])
    proc = subprocess.Popen([sys.executable, "-m", "experiments.segment", f"--video={src}",
                             f"--output={out / 'o.mp4'}", f"--checkpoint={checkpoint}",
                             "--input_scale=1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    start = time.time()
    # A hang guard, not a speed bound: a loaded 2-core machine (the full suite beside it) takes
    # minutes to re-encode and load TF.
    while time.time() < start + 480 and proc.poll() is None and not os.listdir(out):
        time.sleep(0.2)  # until the output's temporary file appears
    if not os.listdir(out):
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the run never started writing (exit {proc.returncode} after "
                    f"{time.time() - start:.0f} s): {err[-2000:]}")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    # Every failure says what happened (the app's stderr), so that a rare one can be told apart.
    assert proc.returncode != 0 and "Traceback" not in err, (proc.returncode, err[-3000:])
    left = (os.listdir(out), os.listdir(env["TMPDIR"]))
    assert left == ([], []), (left, err[-2000:])


def test_app_one_phone_video_says_what_it_did(tmp_path, checkpoint):
    src = make_clip(tmp_path / "phone.mp4", "libx264", n=30,
                    options={"bf": "2", "preset": "ultrafast", "g": "250"})
    p = run_app(f"--video={src}", f"--output={tmp_path / 'o.mp4'}", f"--checkpoint={checkpoint}",
                "--gop=6", f"--summary_json={tmp_path / 's.json'}", "--input_scale=0.5")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "re-encoding" in p.stdout and "h264" in p.stdout
    assert "end to end, including the" in p.stdout  # the FPS says the re-encode is counted
    assert "note: RGFS never fired" in p.stdout     # the paper's 3.6e7 on this clip
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["frames"] == 30 and s["wall_seconds"] > 0 and s["transcoded"]
    assert s["settings"]["input_scale"] == 0.5 and s["frame_stride"] == 8


def test_app_rejects_a_bad_video_before_tensorflow_loads(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    code = ("import sys\nfrom absl import app\nimport experiments.segment as s\n"
            "try:\n    app.run(s.main, argv=['segment', '--video=' + sys.argv[1]])\n"
            "except SystemExit as e:\n    print('exit', e.code)\n"
            "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", code, str(bad)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert "bad.mp4" in p.stdout and "tensorflow loaded: False" in p.stdout, p.stderr[-2000:]
