"""Packaging: the wheel holds what the apps need and its console scripts work outside the checkout.

Why this test is slower than the others (about 20-40 s here): it builds a real wheel with pip from
a copy of the sources (pip wheel --no-deps --no-build-isolation; the copy keeps build/ and
*.egg-info out of the working tree, and concurrent runs out of each other's way), installs it
into a fresh target folder with pip, and runs `taplab-encode` from a folder outside the checkout
with only that target folder on PYTHONPATH. Nothing is downloaded: the dependencies are the ones
this interpreter already has.
"""
import os
import re
import shutil
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _copy_sources(dst):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.o", "*.egg-info", "build")
    for name in ("taplab_tf", "third_party", "experiments"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(dst, name), ignore=ignore)
    for name in ("setup.py", "setup.cfg", "README.md"):
        if os.path.exists(os.path.join(ROOT, name)):
            shutil.copy(os.path.join(ROOT, name), dst)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("packaging")
    src, wheels, target = base / "src", base / "wheels", base / "site"
    src.mkdir()
    _copy_sources(str(src))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    r = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = wheels.glob("taplab_tf-*.whl")
    r = subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target),
                        str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    outside = base / "elsewhere"
    outside.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target), TF_CPP_MIN_LOG_LEVEL="2")
    return {"wheel": wheel, "target": target, "cwd": outside, "env": env}


def test_version_is_written_once():
    with open(os.path.join(ROOT, "setup.py")) as f:
        setup_py = f.read()
    assert not re.search(r"version\s*=\s*['\"]", setup_py), "setup.py must read __version__"
    import taplab_tf
    assert re.fullmatch(r"\d+\.\d+\.\d+", taplab_tf.__version__)


def test_wheel_holds_the_data_files_and_the_scripts(installed):
    import taplab_tf
    from experiments import console
    with zipfile.ZipFile(installed["wheel"]) as z:
        names = set(z.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(meta).decode()
        entry = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert installed["wheel"].name.startswith(f"taplab_tf-{taplab_tf.__version__}-")
    assert re.search(r"^Requires-Dist: av<19,>=18\.1$", metadata, re.M), metadata
    for needed in ("third_party/native_build.py", "third_party/compressed_video/native/residual.cc",
                   "taplab_tf/data/synthetic/render.py", "experiments/configs/cityscapes_bl2.flags"):
        assert needed in names, needed
    assert any(n.startswith("taplab_tf/ops/cc/") and n.endswith(".cc") for n in names)
    assert any(n.startswith("taplab_tf/assets/bl2_synthetic/") for n in names)
    for script, app_name in console.SCRIPTS.items():
        assert f"{script} = experiments.console:{app_name}" in entry
        assert os.path.isfile(os.path.join(ROOT, "experiments", app_name + ".py"))
        assert os.path.isfile(installed["target"] / "bin" / script)


def test_console_script_runs_from_outside_the_checkout(installed):
    frames = installed["cwd"] / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        cv2.imwrite(str(frames / f"f{i:02d}.png"), rng.integers(0, 256, (32, 48, 3), np.uint8))
    out = installed["cwd"] / "out.avi"
    script = str(installed["target"] / "bin" / "taplab-encode")
    r = subprocess.run([sys.executable, script, f"--input={frames}", f"--output={out}", "--gop=2"],
                       cwd=installed["cwd"], env=installed["env"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.stat().st_size > 0 and "5 frames" in r.stdout + r.stderr, r.stdout + r.stderr
    # the code that ran is the installed copy, not this checkout
    where = subprocess.run([sys.executable, "-c", "import experiments, taplab_tf, third_party; "
                            "print(experiments.__file__, taplab_tf.__file__, third_party.__file__)"],
                           cwd=installed["cwd"], env=installed["env"], capture_output=True,
                           text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert all(p.startswith(str(installed["target"])) for p in where.stdout.split()), where.stdout
    # a bad flag is one 'error:' line and a non-zero status, as with python -m experiments.encode
    bad = subprocess.run([sys.executable, script, f"--input={frames}", f"--output={out}",
                          "--gop=0"], cwd=installed["cwd"], env=installed["env"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "gop" in bad.stderr


def test_ci_lints_before_the_tests():
    """.ci/run runs ruff (ruff.toml: at least syntax errors and pyflakes) on the code before
    pytest. (Whether the tree passes is .ci/run's lint step itself, not a test.)"""
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    lint = next(i for i, line in enumerate(lines) if "ruff check" in line)
    tests = next(i for i, line in enumerate(lines) if "pytest" in line)
    assert lint < tests
    for folder in ("taplab_tf", "third_party", "experiments", "tests"):
        assert folder in lines[lint].split()
    with open(os.path.join(ROOT, "ruff.toml")) as f:
        config = f.read()
    assert re.search(r'"E9"', config) and re.search(r'"F"', config)
