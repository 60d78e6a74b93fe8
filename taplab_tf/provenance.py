"""Where a result came from: the machine, the software and the code's git commit.

Every artefact that carries a measured figure (a trained model's metrics.json, a benchmark's
JSON) records these, so a number can be traced to the CPU and the code that produced it.
"""
from __future__ import annotations

import os
import platform
import subprocess
from typing import Dict, Optional


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform reports."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(path: Optional[str] = None) -> Dict[str, object]:
    """{'commit': sha or None, 'dirty': bool or None} of the checkout holding `path` (default:
    this package). None where the code is not in a git checkout (an installed wheel)."""
    where = os.path.dirname(os.path.abspath(path or __file__))
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=10)
        if sha.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=where, capture_output=True, text=True, timeout=10)
        return {"commit": sha.stdout.strip(),
                "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def machine_info() -> Dict[str, object]:
    """CPU, core count, GPUs seen by TensorFlow and the software versions."""
    import tensorflow as tf
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "gpus": gpus,
            "tensorflow": tf.__version__, "python": platform.python_version(),
            "platform": platform.platform()}
