"""Fault suite (issue 13), outputs and inputs of the library: every writer leaves the old file or
the whole new one (taplab_tf.io_utils.atomic_write), complex motion vectors are refused, and a
compiled-ops backend that cannot be built is one line in the apps."""
import json
import os
import stat

import numpy as np
import pytest

from taplab_tf import io_utils


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path):
    target = tmp_path / "sub" / "out.json"  # a missing folder is created
    io_utils.write_json(str(target), {"a": 1})
    assert json.load(open(target)) == {"a": 1}
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~_umask()
    with pytest.raises(RuntimeError, match="boom"):
        with io_utils.atomic_write(str(target)) as tmp:
            assert os.path.dirname(tmp) == str(target.parent) and tmp.endswith(".json")
            open(tmp, "w").write('{"a": 2, "trunc')
            raise RuntimeError("boom")
    assert json.load(open(target)) == {"a": 1}
    assert os.listdir(target.parent) == ["out.json"]
    with io_utils.atomic_write(str(target)) as a, io_utils.atomic_write(str(target)) as b:
        assert a != b  # two writers of one output never share a temporary file


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def _half_then_fail(*args, **kwargs):
    target = args[1] if len(args) > 1 else kwargs.get("fp") or kwargs.get("fname")
    if hasattr(target, "write"):
        target.write("{\"half\": ")
    else:
        open(target, "w").write("half a file")
    raise OSError("disk full")


def test_benchmark_json_and_plots_are_written_whole(tmp_path, monkeypatch):
    import matplotlib.figure
    from taplab_tf import reporting
    path = str(tmp_path / "benchmark.json")
    reporting.write_json({"rows": [1, 2]}, path)
    plot = str(tmp_path / "sweep.png")
    rows = [{"x": 1, "y": 0.5}, {"x": 2, "y": 0.6}]
    reporting.plot_sweep(rows, "x", [("y", "y")], plot, "x", "t")
    before = {p: open(os.path.join(tmp_path, p), "rb").read() for p in os.listdir(tmp_path)}
    monkeypatch.setattr(json, "dump", _half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        reporting.write_json({"rows": [3]}, path)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda self, fname, **kw: _half_then_fail(self, fname))
    with pytest.raises(OSError, match="disk full"):
        reporting.plot_sweep(rows, "x", [("y", "y")], plot, "x", "t")
    after = {p: open(os.path.join(tmp_path, p), "rb").read() for p in os.listdir(tmp_path)}
    assert after == before


@pytest.mark.parametrize("backend", ["tf", None])
def test_complex_motion_vectors_are_refused(backend):
    # (the functions from their module: once taplab_tf.ops.mv_warp is imported as a module,
    # the lazy attribute taplab_tf.ops.mv_warp is that module, not the function)
    from taplab_tf.ops.mv_warp import mv_warp, mv_warp_tf
    features = np.zeros((1, 4, 4, 2), np.float32)
    mv = np.full((1, 1, 1, 2), 1 + 1j, np.complex64)
    with pytest.raises(TypeError, match="motion_vectors must be real .*complex64"):
        mv_warp(features, mv, 4, backend=backend)
    with pytest.raises(TypeError, match="motion_vectors must be real .*complex64"):
        mv_warp_tf(features, mv, 4)
    assert mv_warp(features, mv.real, 4, backend=backend).shape == (1, 4, 4, 2)


def test_required_cpp_backend_with_an_unwritable_cache_is_one_line(tmp_path, monkeypatch):
    from experiments import common
    from taplab_tf import ops
    from taplab_tf.ops import _loader
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")  # read-only even for root
    monkeypatch.setenv("TAPLAB_TF_CACHE", str(blocker))
    monkeypatch.setenv("TAPLAB_TF_OPS_BACKEND", "cpp")
    monkeypatch.setattr(_loader, "_library", None)
    monkeypatch.setattr(_loader, "_failure", None)
    with pytest.raises(SystemExit) as e:
        common.run_or_exit(ops.backend)
    msg = str(e.value)
    assert msg.startswith("error: taplab_tf.ops: building the op library failed: cannot create "
                          f"the op cache directory {blocker}") and "\n" not in msg
    assert "TAPLAB_TF_CACHE at a writable folder" in msg
    with pytest.raises(_loader.OpsUnavailableError):  # still the error type callers catch
        ops.backend()
