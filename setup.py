"""TapLab-TF: real-time semantic video segmentation in the compressed domain.

The C++ kernels of taplab_tf.ops are compiled on first use (against the installed
TensorFlow's tf.sysconfig flags) into a cache directory; `python -m taplab_tf.ops.build`
rebuilds them explicitly. See README.md and WORKSPACE.md.

The version is written once, as __version__ in taplab_tf/__init__.py (read here as text: importing
taplab_tf would need its dependencies). The console scripts (taplab-segment, taplab-train,
taplab-encode, taplab-evaluate, taplab-benchmark) are listed once, in experiments/console.py, which
imports only the standard library at module level.
"""
import os
import re
import sys

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from experiments.console import entry_points  # noqa: E402  (needs HERE on sys.path)


def version():
    with open(os.path.join(HERE, "taplab_tf", "__init__.py")) as f:
        found = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.M)
    if not found:
        raise RuntimeError("taplab_tf/__init__.py: no __version__ = \"...\" line")
    return found.group(1)


setup(
    name="taplab_tf",
    version=version(),
    description="TapLab in TensorFlow: semantic video segmentation that taps into the compressed domain",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["taplab_tf", "taplab_tf.*", "third_party", "third_party.*",
                                    "experiments", "experiments.*"]),
    package_data={
        "taplab_tf.ops": ["cc/*.cc", "cc/*.h", "cc/**/*.cc", "cc/**/*.h"],
        "taplab_tf": ["assets/*", "assets/**/*"],
        "experiments": ["configs/*.flags"],
        "third_party.compressed_video": ["native/*.cc"],
    },
    install_requires=[
        "tensorflow==2.15.1",
        "tensorflow-addons==0.23.0",
        "numpy<2",
        # The reader relies on PyAV 18 internals (how a frame's side data is fetched, in
        # third_party/compressed_video/reader.py): the range tested here (18.1.0). Widen it only
        # after tests/test_reader*.py pass on the new version.
        "av>=18.1,<19",
        "opencv-python-headless",
        "absl-py",
        "matplotlib",
    ],
    extras_require={
        # ruff: the lint .ci/run runs before the tests (configuration in ruff.toml)
        "test": ["pytest", "ruff>=0.17,<0.18"],
        # beam: many videos on Apache Beam (taplab_tf.pipeline.beam, experiments.segment_beam).
        # 2.56..2.60 support Python 3.11 and resolve beside tensorflow==2.15.1 without lifting
        # protobuf to 5 or numpy to 2 (both of which TF 2.15 cannot load); 2.61 on was not
        # checked here. tests/test_beam.py checks that TF and the ops still load with it.
        "beam": ["apache-beam>=2.56,<2.61", "protobuf<5", "numpy<2"],
    },
    entry_points={"console_scripts": entry_points()},
)
