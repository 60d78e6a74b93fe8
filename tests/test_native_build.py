"""The shared compile-on-first-use builder (third_party.native_build) and its three users:
taplab_tf.ops.build, taplab_tf.ops.cuda and third_party.compressed_video.native."""
import ctypes
import os
import pathlib
import shutil
import sys
import threading

import pytest

from third_party import native_build


def _fake_compile(calls, delay=0.2):
    def compile_fn(target):
        calls.append(target)
        with native_build.staged(target) as partial:
            pathlib.Path(partial).write_bytes(b"x")
            threading.Event().wait(delay)
    return compile_fn


def test_concurrent_builders_compile_once(tmp_path):
    target = tmp_path / "cache" / native_build.tag([b"src", "cmd"]) / "lib.so"
    calls, results = [], []
    fn = _fake_compile(calls)
    threads = [threading.Thread(target=lambda: results.append(native_build.ensure_built(target, fn)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and results == [target] * 4 and target.read_bytes() == b"x"
    native_build.ensure_built(target, fn, force=True)
    assert len(calls) == 2
    # nothing but the library in its folder (the staging folder is gone), the lock beside it
    assert os.listdir(target.parent) == ["lib.so"]
    assert (target.parent.with_name(target.parent.name + ".lock")).exists()


def test_staged_leaves_nothing_when_the_build_fails(tmp_path):
    target = tmp_path / "lib.so"
    with pytest.raises(RuntimeError, match="boom"):
        with native_build.staged(target) as partial:
            pathlib.Path(partial).write_bytes(b"half")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_tag_depends_on_every_part_and_the_variant():
    base = native_build.tag([b"source", "g++ -O3"])
    assert len(base) == 16 and base == native_build.tag([b"source", "g++ -O3"])
    assert base != native_build.tag([b"source", "g++ -O2"])
    assert base != native_build.tag([b"sourcf", "g++ -O3"])
    assert native_build.tag([b"source", "g++ -O3"], "tf2-", "address") == f"tf2-{base}-address"


def test_failing_command_is_one_line_with_the_first_error_and_the_log(tmp_path):
    script = ("import sys; print('note: building'); print('x.cc:3: error: not_declared'); "
              "print('x.cc:4: error: second'); sys.exit(3)")
    ok = [sys.executable, "-c", "pass"]
    with pytest.raises(native_build.BuildError) as e:
        native_build.run([("first", ok), ("compiling x.cc with cc", [sys.executable, "-c", script]),
                          ("third", [sys.executable, "-c", "import sys; sys.exit(4)"])], tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("compiling x.cc with cc failed (exit 3): x.cc:3: error: not_declared")
    log = tmp_path / "build-error.log"
    assert f"[full log: {log}]" in msg and "second" in log.read_text()


def test_first_error_prefers_error_colon():
    assert native_build.first_error("/home/errors/x.cc: note\nx.cc:1: error: bad\n") == \
        "x.cc:1: error: bad"
    assert native_build.first_error("a\nlast line\n\n") == "last line"
    assert native_build.first_error("") == "(no output)"


def test_missing_program_and_unwritable_cache_are_one_line(tmp_path):
    class MyError(native_build.BuildError):
        pass

    with pytest.raises(MyError, match="no-such-tool-xyz' not found on PATH \\(set \\$X\\)"):
        native_build.find_tool("no-such-tool-xyz", MyError, "set $X")
    with pytest.raises(MyError, match="cannot run /no/such/cc"):
        native_build.run([("compiling", ["/no/such/cc", "-c"])], tmp_path, MyError)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(MyError, match=f"cannot create the op cache directory {blocker}/t") as e:
        native_build.ensure_built(blocker / "t" / "lib.so", lambda t: None, error=MyError,
                                  what="op cache directory")
    assert "\n" not in str(e.value)


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="no C++ compiler")
def test_builds_and_loads_a_real_library(tmp_path):
    src = tmp_path / "add.cc"
    src.write_text('extern "C" int add(int a, int b) { return a + b; }\n')
    cxx = native_build.find_tool(os.environ.get("CXX", "g++"))
    cmd = [cxx, "-shared", "-fPIC", "-O2"]
    target = tmp_path / "cache" / native_build.tag([src.read_bytes(), " ".join(cmd)]) / "add.so"

    def compile_fn(t):
        with native_build.staged(t) as partial:
            native_build.run([("compiling add.cc", [*cmd, str(src), "-o", partial])], t.parent)

    path = native_build.ensure_built(target, compile_fn)
    assert ctypes.CDLL(str(path)).add(2, 3) == 5


def test_cache_dir_reads_its_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("SOME_CACHE_XYZ", str(tmp_path))
    assert native_build.cache_dir("SOME_CACHE_XYZ", "name", "kind") == tmp_path / "kind"
    monkeypatch.delenv("SOME_CACHE_XYZ")
    assert native_build.cache_dir("SOME_CACHE_XYZ", "name", "kind") == \
        pathlib.Path("~/.cache/name/kind").expanduser()


def test_the_three_users_share_the_builder(monkeypatch, tmp_path):
    """ops.build, ops.cuda and the residual kernel raise the shared BuildError, one line each;
    the CUDA builder is exercised here with a failing nvcc (no GPU or CUDA needed)."""
    from taplab_tf.ops import build, cuda
    from third_party.compressed_video import native
    for err in (build.BuildError, cuda.CudaBuildError, native.BuildError):
        assert issubclass(err, native_build.BuildError)
    monkeypatch.setenv("TAPLAB_TF_CACHE", str(tmp_path))
    monkeypatch.setenv("NVCC", shutil.which("false") or "/bin/false")
    with pytest.raises(cuda.CudaBuildError, match=r"^nvcc failed \(exit 1\): .*\[full log: ") as e:
        cuda.build()
    assert "\n" not in str(e.value) and str(tmp_path / "cuda") in str(e.value)
    assert not cuda.library_path().exists()
