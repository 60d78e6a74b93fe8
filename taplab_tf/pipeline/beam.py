"""Many videos on Apache Beam: one element a video, the model loaded once per worker process.

    from taplab_tf.pipeline import beam as taplab_beam
    job = taplab_beam.BeamJob(checkpoint="model_dir", output_dir="out")
    report = taplab_beam.run(["a.mp4", "b.avi"], job, ["--direct_num_workers=2",
                                                       "--direct_running_mode=multi_processing"])

The pipeline: Create (one (video, output path) element a video, the names chosen on the launcher
as segment's directory mode chooses them) | Reshuffle (so the runner spreads the videos over its
workers) | ParDo(SegmentVideoFn) | CombineGlobally(ToList) | write the combined summary.

One element per video, not per frame: TapLab's state (the previous labels, warped by the motion
vectors, Algorithm 1) runs through each GOP, so a per-frame RunInference does not fit. Each
element runs segment.segment_one, the per-video step that segment's directory mode
(segment.segment_many) runs too: one code path. A missing or corrupt video becomes an error
record ({'video', 'error'}) in <output_dir>/<stem>.json and in the combined summary; the pipeline
itself does not fail.

Outputs, as segment's directory mode writes them: <stem>.mp4 (the overlay, optional),
<stem>_labels/NNNNNN_labelTrainIds.png (the labels, lossless), plus <stem>.json (the video's
summary or error record) and the combined summary.json and summary.md, each written whole or not
at all.

Runners: the pipeline options are Beam's own (apache_beam.options.pipeline_options), so
--runner=FlinkRunner / SparkRunner / DataflowRunner with their usual options run the same
pipeline. The videos and output_dir are plain paths opened by PyAV and written with os.replace:
on a cluster they must lie on a filesystem that every worker mounts under the same path.

apache_beam is the `beam` extra (pip install -e '.[beam]'); without it, run() raises one line
saying so. Importing this module loads no TensorFlow: the workers load it in setup().
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid
from typing import Dict, List, Optional, Sequence, Tuple

from taplab_tf import config as config_lib
from taplab_tf.pipeline.inputs import SegmentError

try:  # the optional extra: this module imports without it, run() says what is missing
    import apache_beam as _beam
except ImportError:  # pragma: no cover -- the test environment installs the extra
    _beam = None

SUMMARY_JSON, SUMMARY_MD = "summary.json", "summary.md"
MISSING = ("apache_beam is not installed: install the beam extra "
           "(pip install -e '.[beam]' in the checkout, or pip install 'taplab_tf[beam]')")


def require_beam():
    """The apache_beam module, or SegmentError with the one line that says how to install it."""
    if _beam is None:
        raise SegmentError(MISSING)
    return _beam


@dataclasses.dataclass(frozen=True)
class BeamJob:
    """What every worker needs to segment its videos. checkpoint: a model directory
    (experiments.train) or an exported SavedModel (experiments.export). input_scale None: chosen
    per video from the frame size the model was evaluated at, as segment does. overlay / labels: write
    <stem>.mp4 / <stem>_labels/. The rest are segment_file's options."""
    checkpoint: str
    output_dir: str
    config: config_lib.TapLabConfig = dataclasses.field(default_factory=config_lib.TapLabConfig)
    input_scale: Optional[float] = None
    overlay: bool = True
    labels: bool = True
    draw_regions: bool = True
    mark_keyframes: bool = True
    show_legend: bool = True
    transcode: str = "auto"
    gop_given: bool = False
    qscale: float = 3.0

    def segment_options(self, dataset: str) -> dict:
        """segment_file's keyword arguments (segment's directory mode passes the same ones)."""
        return dict(dataset=dataset, draw_regions=self.draw_regions,
                    mark_keyframes=self.mark_keyframes, show_legend=self.show_legend,
                    transcode=self.transcode, gop_given=self.gop_given, qscale=self.qscale,
                    progress=False)


def check_checkpoint(path: str) -> None:
    """A model directory or a SavedModel, checked without TensorFlow (one SegmentError line)."""
    if not os.path.isdir(path):
        raise SegmentError(f"checkpoint {path}: no such directory")
    if not any(os.path.isfile(os.path.join(path, name))
               for name in ("model.json", "saved_model.pb")):
        raise SegmentError(f"checkpoint {path}: holds neither model.json (experiments.train) "
                           f"nor saved_model.pb (experiments.export)")


def plan(videos: Sequence[str], output_dir: str) -> List[Tuple[str, str]]:
    """(video, overlay path) for each video, named as segment's directory mode names them
    (<stem>.mp4, numbered where two inputs share a stem); chosen once, on the launcher, so that
    the workers never race for a name."""
    from taplab_tf.pipeline.segment import output_name
    taken: Dict[str, int] = {}
    return [(v, output_name(v, output_dir, taken)) for v in videos]


# --------------------------------------------------------------------------- the worker side
_MODELS: Dict[str, tuple] = {}
_MODELS_LOCK = threading.Lock()
_LOADS = [0]  # models loaded by this process (the per-video records report it)


def shared_model(checkpoint: str):
    """(phi, metadata) loaded once per process and shared by every DoFn instance and bundle
    thread in it (a Beam worker runs several)."""
    key = os.path.abspath(checkpoint)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from taplab_tf.api import load_model
            _MODELS[key] = load_model(checkpoint)
            _LOADS[0] += 1
        return _MODELS[key]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _plain(obj):
    """obj as plain JSON values (numpy scalars as numbers): what travels between stages."""
    from taplab_tf.pipeline.segment import _json_default
    return json.loads(json.dumps(obj, default=_json_default))


class SegmentVideoFn(_beam.DoFn if _beam is not None else object):
    """Segments one video per element (video, overlay path) -> one record: the video's summary,
    or {'video', 'error'}. setup() loads the model (once per worker process, shared_model);
    process() runs segment.segment_one, the same per-video step as segment's directory mode."""

    def __init__(self, job: BeamJob):
        self.job = job
        self._model = self._meta = self._setup_error = None
        self._engines: Dict[float, object] = {}

    def setup(self):
        try:
            self._model, self._meta = shared_model(self.job.checkpoint)
        except Exception as e:  # noqa: BLE001 -- each video then says why, the pipeline ends
            self._setup_error = f"checkpoint {self.job.checkpoint}: {_first_line(e)}"

    def _engine_for(self, info):
        """One engine per input scale, as segment's app builds them."""
        from taplab_tf.data import labels as labels_lib
        from taplab_tf.pipeline import engine as engine_lib
        scale = self.job.input_scale
        if scale is None:
            scale = config_lib.auto_input_scale(labels_lib.phi_frame_height(self._meta),
                                                info.height, int(self._model.output_stride))
        if scale not in self._engines:
            self._engines[scale] = engine_lib.TapLabEngine(
                self._model, self.job.config.replace(input_scale=scale))
        return self._engines[scale]

    def process(self, element):
        video, overlay_path = element
        yield segment_video_record(video, overlay_path, self.job, self._engine_for, self._meta,
                                   self._setup_error)


def segment_video_record(video: str, overlay_path: str, job: BeamJob, engine_for, meta,
                         setup_error: Optional[str] = None) -> dict:
    """The per-video work of SegmentVideoFn: segment_one into the planned paths, then the
    record written whole to <stem>.json. Never raises: any failure is the error record."""
    from taplab_tf.pipeline import segment as segment_lib
    stem = os.path.splitext(overlay_path)[0]
    record_path = stem + ".json"
    worker = {"pid": os.getpid(), "model_loads": _LOADS[0]}
    if setup_error is not None:
        record = {"video": video, "error": setup_error}
    else:
        lines: List[str] = []
        summary, failure = segment_lib.segment_one(
            engine_for, video, overlay_path if job.overlay else None,
            labels_dir=segment_lib.labels_dir_for(overlay_path) if job.labels else None,
            log=lines.append, **job.segment_options(meta.get("dataset", "cityscapes")))
        if failure is not None:
            record = dict(failure)
        else:
            record = dict(summary, labels_dir=(segment_lib.labels_dir_for(overlay_path)
                                               if job.labels else None))
        if lines:
            record["log"] = lines
    record.update(summary_path=record_path, worker=worker)
    try:
        record = _plain(record)
        segment_lib.write_json_atomic(record_path, record)
    except Exception as e:  # noqa: BLE001 -- still an error record, not a failed pipeline
        record = {"video": video, "error": f"{record_path}: {_first_line(e)}",
                  "summary_path": None, "worker": worker}
    return record


# --------------------------------------------------------------------------- the combined summary
def write_report(records: Sequence[dict], job: BeamJob, run_id: str) -> dict:
    """The combined summary of all records: summary.json (segment's directory-mode fields
    'videos', 'failed', 'frames', 'wall_seconds', plus run_id and the workers seen) and
    summary.md (segment's table), each written whole. Returns the report."""
    from taplab_tf.pipeline import segment as segment_lib
    records = sorted(records, key=lambda r: r["video"])
    done = [r for r in records if "error" not in r]
    failed = [{"video": r["video"], "error": r["error"]} for r in records if "error" in r]
    report = {
        "run_id": run_id, "runner": "beam", "checkpoint": job.checkpoint,
        "settings": dict(job.config.to_dict(), input_scale=job.input_scale or "auto"),
        "videos": done, "failed": failed, "frames": sum(r["frames"] for r in done),
        "wall_seconds": sum(r["wall_seconds"] for r in done),
        "worker_pids": sorted({r["worker"]["pid"] for r in records}),
    }
    segment_lib.write_json_atomic(os.path.join(job.output_dir, SUMMARY_JSON), report)
    segment_lib.write_text_atomic(os.path.join(job.output_dir, SUMMARY_MD),
                                  segment_lib.format_table(done, failed) + "\n")
    return report


# --------------------------------------------------------------------------- the pipeline
def build(pipeline, elements: Sequence[Tuple[str, str]], job: BeamJob, run_id: str):
    """Adds the stages to `pipeline` (a beam.Pipeline): the videos in, the records, the
    combined summary. Returns the PCollection of records."""
    beam = require_beam()
    records = (pipeline
               | "Videos" >> beam.Create(list(elements))
               | "Spread" >> beam.Reshuffle()
               | "Segment" >> beam.ParDo(SegmentVideoFn(job)))
    _ = (records
         | "Collect" >> beam.combiners.ToList()
         | "Summary" >> beam.Map(write_report, job, run_id))
    return records


def run(videos: Sequence[str], job: BeamJob, beam_args: Sequence[str] = ()) -> dict:
    """Runs the pipeline on `videos` with Beam's pipeline options from `beam_args` (e.g.
    ['--runner=FlinkRunner', '--flink_master=host:8081']; DirectRunner by default), waits for it,
    and returns the combined summary it wrote (summary.json). SegmentError for a bad job or
    options; a bad video is an error record in the report, not an exception."""
    beam = require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    if not videos:
        raise SegmentError("no videos to segment")
    check_checkpoint(job.checkpoint)
    try:
        os.makedirs(job.output_dir, exist_ok=True)
    except OSError as e:
        raise SegmentError(f"output_dir {job.output_dir}: {e.strerror or e}") from None
    try:
        options = PipelineOptions(list(beam_args))
        if options.view_as(StandardOptions).runner is None:
            options.view_as(StandardOptions).runner = "DirectRunner"  # said, not logged
        pipeline = beam.Pipeline(options=options)
    except (ValueError, TypeError) as e:
        raise SegmentError(f"pipeline options {list(beam_args)}: {_first_line(e)}") from None
    run_id = uuid.uuid4().hex
    elements = plan(videos, job.output_dir)
    t0 = time.perf_counter()
    with pipeline:
        build(pipeline, elements, job, run_id)
    path = os.path.join(job.output_dir, SUMMARY_JSON)
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        report = None
    if not report or report.get("run_id") != run_id:
        raise SegmentError(f"{path}: the pipeline finished but its combined summary is not there "
                           f"(on a cluster, output_dir must be a filesystem the workers share)")
    report["pipeline_seconds"] = time.perf_counter() - t0
    return report


__all__ = ["BeamJob", "SegmentVideoFn", "build", "run", "plan", "check_checkpoint",
           "segment_video_record", "shared_model", "write_report", "require_beam", "MISSING"]
