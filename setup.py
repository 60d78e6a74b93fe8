"""TapLab-TF: real-time semantic video segmentation in the compressed domain.

The C++ kernels of taplab_tf.ops are compiled on first use (against the installed
TensorFlow's tf.sysconfig flags) into a cache directory; `python -m taplab_tf.ops.build`
rebuilds them explicitly. See README.md and WORKSPACE.md.
"""
from setuptools import find_packages, setup

setup(
    name="taplab_tf",
    version="0.1.0",
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
        "av",
        "opencv-python-headless",
        "absl-py",
        "matplotlib",
    ],
    extras_require={
        "test": ["pytest"],
    },
)
