"""Console scripts (setup.py entry_points): `taplab-segment` is `python -m experiments.segment`.

  taplab-segment    experiments.segment     segment a video (the main job)
  taplab-train      experiments.train       train phi
  taplab-encode     experiments.encode      re-encode frames or a video to MPEG-4 Part 2
  taplab-evaluate   experiments.evaluate    video mIoU by the paper's protocol
  taplab-benchmark  experiments.benchmark   speed and accuracy tables
  taplab-segment-beam  experiments.segment_beam  many videos on Apache Beam (the beam extra)

Each entry point imports its app (which defines the app's absl flags) and runs its main through
absl's app.run, exactly as `python -m experiments.X` does; flags, output and exit status are the
same. The import happens inside the function, so installing or listing the scripts loads nothing.
"""
import importlib

SCRIPTS = {
    "taplab-segment": "segment",
    "taplab-train": "train",
    "taplab-encode": "encode",
    "taplab-evaluate": "evaluate",
    "taplab-benchmark": "benchmark",
    "taplab-segment-beam": "segment_beam",
}


def _run(app_name: str):
    from absl import app

    module = importlib.import_module(f"experiments.{app_name}")
    app.run(module.main)


def segment():
    _run("segment")


def train():
    _run("train")


def encode():
    _run("encode")


def evaluate():
    _run("evaluate")


def benchmark():
    _run("benchmark")


def segment_beam():
    # its own flags parser: the flags absl does not know go to Beam's PipelineOptions
    from experiments import segment_beam as module
    module.run()


def entry_points():
    """The console_scripts lines for setup.py: 'taplab-segment = experiments.console:segment'."""
    return [f"{script} = experiments.console:{name}" for script, name in SCRIPTS.items()]
