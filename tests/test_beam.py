"""Many videos on Apache Beam (taplab_tf.pipeline.beam, experiments.segment_beam): the pipeline on
2 worker processes writes what segment_file writes for each video, a bad file is an error record,
the combined summary adds them up; TF and the custom ops still load with Beam installed."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from taplab_tf import config as C
from taplab_tf.pipeline import beam as B
from taplab_tf.pipeline import inputs
from tests.helpers import video as V
from third_party.compressed_video import encode_video, open_compressed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENGTHS = {"a_pan.avi": 13, "b_pan.avi": 9, "c_pan.avi": 11}
WORKERS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def env():
    e = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return e


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.helpers.training import tiny_checkpoint
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "bl2", "camvid")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Three tiny MPEG-4 clips (different textures and lengths) and one corrupt file."""
    src = tmp_path_factory.mktemp("videos")
    for k, (name, n) in enumerate(LENGTHS.items()):
        frames, _ = V.textured_pan(n, seed=k)
        encode_video(frames, str(src / name), gop=6)
    (src / "broken.mp4").write_bytes(b"\x00" * 300)
    return src


@pytest.fixture(scope="module")
def beam_run(tmp_path_factory, videos, checkpoint):
    """experiments.segment_beam on 2 worker processes: (process, output folder)."""
    out = tmp_path_factory.mktemp("beam_out")
    p = subprocess.run([sys.executable, "-m", "experiments.segment_beam", f"--videos={videos}",
                        f"--output_dir={out}", f"--checkpoint={checkpoint}", "--gop=6",
                        "--input_scale=1", *WORKERS],
                       cwd=ROOT, env=env(), capture_output=True, text=True, timeout=900)
    return p, out


def decoded(path):
    with open_compressed(str(path), rgb=True, residual=None) as v:
        return [np.asarray(f.image) for f in v]


def test_pipeline_writes_what_segment_file_writes(beam_run, videos, checkpoint, tmp_path):
    from taplab_tf.api import load_model
    from taplab_tf.pipeline import engine as E
    from taplab_tf.pipeline import segment as S
    p, out = beam_run
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr[-3000:]  # one video failed
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    model, meta = load_model(checkpoint)
    engine = E.TapLabEngine(model, C.TapLabConfig(gop=6, input_scale=1.0))
    job = B.BeamJob(checkpoint=checkpoint, output_dir=str(out))
    for name, n in LENGTHS.items():
        stem = os.path.splitext(name)[0]
        ref_labels = tmp_path / f"{stem}_labels"
        ref = S.segment_file(engine, str(videos / name), str(tmp_path / f"{stem}.mp4"),
                             labels_dir=str(ref_labels), log=lambda m: None,
                             **job.segment_options(meta["dataset"]))
        pngs = sorted(os.listdir(ref_labels))
        assert len(pngs) == n and sorted(os.listdir(out / f"{stem}_labels")) == pngs
        for png in pngs:
            assert (out / f"{stem}_labels" / png).read_bytes() == (ref_labels / png).read_bytes()
        beam_frames, ref_frames = decoded(out / f"{stem}.mp4"), decoded(tmp_path / f"{stem}.mp4")
        assert len(beam_frames) == len(ref_frames) == n
        assert all(np.array_equal(a, b) for a, b in zip(beam_frames, ref_frames))
        record = json.loads((out / f"{stem}.json").read_text())
        for key in ("frames", "i_frames", "rgfs_keyframes", "rgc_corrections", "input_scale"):
            assert record[key] == ref[key], key
        assert record["video"] == str(videos / name) and record["output"] == str(out / f"{stem}.mp4")
        # the model was loaded once in the worker process that ran this video
        assert record["worker"]["model_loads"] == 1 and record["worker"]["pid"] != os.getpid()


def test_bad_file_is_an_error_record_and_the_summary_adds_up(beam_run, videos):
    p, out = beam_run
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr[-3000:]
    error = json.loads((out / "broken.json").read_text())
    assert error["video"] == str(videos / "broken.mp4")
    assert "broken.mp4" in error["error"] and "\n" not in error["error"]
    assert not (out / "broken.mp4").exists() and not (out / "broken_labels").exists()
    report = json.loads((out / "summary.json").read_text())
    assert [os.path.basename(v["video"]) for v in report["videos"]] == list(LENGTHS)
    assert report["failed"] == [{"video": error["video"], "error": error["error"]}]
    assert report["frames"] == sum(LENGTHS.values())
    assert 1 <= len(report["worker_pids"]) <= 2
    assert report["settings"]["gop"] == 6
    table = (out / "summary.md").read_text()
    assert "| a_pan.avi | 13 |" in table and "broken.mp4 | failed" in table
    assert "| a_pan.avi | 13 |" in p.stdout and "wrote 3 of 4 videos" in p.stdout
    # Beam's INFO lines (runner chosen, type hints, caches) stay silent by default
    assert "Missing pipeline option" not in p.stderr and not re.search(r"^I\d{4} ", p.stderr,
                                                                          re.M), p.stderr[-2000:]
    # nothing half-written is left behind
    assert not [n for n in os.listdir(out) if ".partial" in n or n.startswith(".")]


def test_missing_video_is_an_error_record(tmp_path):
    job = B.BeamJob(checkpoint="unused", output_dir=str(tmp_path))
    missing = str(tmp_path / "gone.mp4")

    def no_engine(info):
        raise AssertionError("no engine is needed for a missing file")
    record = B.segment_video_record(missing, str(tmp_path / "gone.mp4"), job, no_engine,
                                    {"dataset": "camvid"})
    assert record["video"] == missing and "gone.mp4" in record["error"]
    assert json.loads((tmp_path / "gone.json").read_text())["error"] == record["error"]
    # a worker whose model did not load turns each of its videos into an error record
    record = B.segment_video_record(missing, str(tmp_path / "x.mp4"), job, no_engine, None,
                                    setup_error="checkpoint c: bad weights")
    assert record["error"] == "checkpoint c: bad weights"


def test_plan_names_outputs_as_the_directory_mode(tmp_path):
    plan = B.plan(["a/x.mp4", "b/x.avi", "c/y.mkv"], str(tmp_path))
    assert [os.path.basename(o) for _, o in plan] == ["x.mp4", "x_1.mp4", "y.mp4"]


def test_bad_options_and_inputs_say_one_line(tmp_path, videos, checkpoint):
    def app(*args):
        return subprocess.run([sys.executable, "-m", "experiments.segment_beam", *args],
                              cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    out = f"--output_dir={tmp_path / 'o'}"
    for args, needle in [
        ((f"--videos={videos}", out, f"--checkpoint={checkpoint}", "--runner=NoSuchRunner"),
         "NoSuchRunner"),
        ((f"--videos={videos}", out, f"--checkpoint={tmp_path / 'none'}"), "none"),
        ((f"--videos={tmp_path / 'empty_dir_*'}", out, f"--checkpoint={checkpoint}"),
         "matches no file"),
        ((f"--videos={videos}", out, f"--checkpoint={checkpoint}", "stray"), "stray"),
    ]:
        p = app(*args)
        assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
        last = p.stderr.strip().splitlines()[-1]
        assert last.startswith("error:") and needle in last, p.stderr[-2000:]


def test_missing_extra_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(B, "_beam", None)
    with pytest.raises(inputs.SegmentError, match=r"pip install -e '\.\[beam\]'"):
        B.run(["x.mp4"], B.BeamJob(checkpoint=str(tmp_path), output_dir=str(tmp_path)))


def test_tf_and_ops_load_with_beam_installed():
    """apache_beam imported first (its protobuf, numpy and grpc pins win), then TF and the
    compiled ops, which must still load and agree with their TF fallbacks."""
    code = """
import apache_beam, google.protobuf, numpy
import tensorflow as tf
from taplab_tf import ops
from tests.helpers.warp_reference import random_case
assert int(google.protobuf.__version__.split('.')[0]) < 5, google.protobuf.__version__
assert int(numpy.__version__.split('.')[0]) < 2, numpy.__version__
assert ops.backend() == 'cpp', ops.backend()
f, m = random_case(numpy.random.default_rng(0), 1, 40, 56, 8, 3)
numpy.testing.assert_allclose(ops.mv_warp(f, m, 8).numpy(), ops.mv_warp_tf(f, m, 8).numpy(),
                              atol=1e-5)
logits = tf.random.stateless_uniform([1, 5, 7, 4], seed=(1, 2))
assert (ops.upsample_argmax(logits, (20, 28)).numpy()
        == ops.upsample_argmax_tf(logits, (20, 28)).numpy()).all()
print('beam', apache_beam.__version__, 'tf', tf.__version__, 'protobuf',
      google.protobuf.__version__)
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env(), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "beam 2." in p.stdout and "tf 2.15" in p.stdout
