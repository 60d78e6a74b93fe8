"""Speed of the compressed-stream reader against its floor and against optical flow.

    nice -n 5 python -m experiments.benchmark_reader [--height=1024 --width=2048 --frames=600
        --gop=12 --flow_pairs=10 --mvx_python=/tmp/mvx-venv/bin/python --video=X.avi]

Side by side on one clip (GOP 12, MPEG-4 Part 2, no B-frames), in one run:
  * pyav-decode   : PyAV decoding alone (no MV export, no colour conversion): the floor;
  * pyav-mvs      : PyAV decoding with flags2=+export_mvs, side data fetched, nothing else;
  * mv            : open_compressed(rgb=False, residual=None)          -> motion vectors;
  * rgb+mv        : open_compressed(rgb=True,  residual=None);
  * rgb+mv+res    : open_compressed(rgb=True,  residual='full')        (int16 map + summaries);
  * rgb+mv+summary: open_compressed(rgb=True,  residual='summary')     (|Res| summaries only);
    (the residual modes use the backend third_party.compressed_video.native.backend() names,
    printed at the start: 'native' C++ kernel, or 'numpy' with COMPRESSED_VIDEO_NATIVE=0);
  * mv+summary    : open_compressed(rgb=False, residual='summary');
  * mvx           : motion-vector-extractor 2.0.0 (frame + MVs, its own FFmpeg) run in a separate
                    venv's python (--mvx_python; skipped with a message if absent);
and per P-frame: our MV + residual extraction (rgb+mv+summary mode's time per frame) against OpenCV
DIS optical flow (medium preset) and Farneback (default parameters) on grey versions of the same
decoded frame pairs (--flow_pairs pairs). Also the peak RSS over the whole clip in the mv+summary
mode (run in a fresh subprocess, so the number is the reader's and not the benchmark's).

The clip (unless --video is given) is a moving texture: a textured background panning 2.5 px/frame
right and 0.5 px/frame down (half-pel vectors), plus textured rectangles moving at their own
speeds, so blocks match and vectors are meaningful. --synthetic uses
taplab_tf.data.synthetic.iter_clip instead (much slower to render: ~4 s/frame at 1024x2048 here).
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("height", 1024, "Frame height.")
flags.DEFINE_integer("width", 2048, "Frame width.")
flags.DEFINE_integer("frames", 600, "Clip length.")
flags.DEFINE_integer("gop", 12, "GOP length.")
flags.DEFINE_integer("flow_pairs", 10, "Frame pairs for the optical-flow comparison.")
flags.DEFINE_integer("repeats", 2, "Timed rounds over all modes (the best per mode is reported).")
flags.DEFINE_string("video", None, "Benchmark this video instead of a generated clip.")
flags.DEFINE_bool("synthetic", False, "Generate the clip with taplab_tf.data.synthetic.")
flags.DEFINE_string("mvx_python", "/tmp/mvx-venv/bin/python",
                    "Python of a venv with motion-vector-extractor 2.0.0 installed.")
flags.DEFINE_string("workdir", None, "Where to write the clip (default: a temp dir).")
flags.DEFINE_string("modes", "", "Comma-separated subset of modes to run (default all).")
flags.DEFINE_string("json_out", None, "Also write the results as JSON here.")


def make_clip(path, height, width, num_frames, gop, synthetic=False):
    if synthetic:
        from taplab_tf.data.synthetic import encode_clip
        return encode_clip(path, height, width, num_frames, seed=0, gop=gop, qscale=3)
    from taplab_tf.data.synthetic.moving_texture import moving_texture_frames
    from third_party.compressed_video import encode_video
    return encode_video(moving_texture_frames(height, width, num_frames), path, gop=gop, qscale=3)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process (decoder too)
    return r.ru_utime + r.ru_stime


def _time_reader(path, **kw):
    from third_party.compressed_video import open_compressed
    c0 = _cpu()
    t0 = time.perf_counter()
    n = 0
    with open_compressed(path, **kw) as v:
        for f in v:
            if kw.get("residual") and f.pict_type == "P":
                f.residual_block_counts(4.0)  # what RGC asks for, once per frame
            n += 1
    return n, time.perf_counter() - t0, _cpu() - c0


def _time_pyav(path, export_mvs):
    import av
    from third_party.compressed_video.reader import _side_data
    c0 = _cpu()
    t0 = time.perf_counter()
    n = 0
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"  # same threading as the reader
        if export_mvs:
            s.codec_context.options = {"flags2": "+export_mvs"}
        for f in c.decode(s):
            if export_mvs:
                # not f.side_data: in PyAV 18 it leaks every frame (see reader._side_data)
                sd = _side_data(f).get("MOTION_VECTORS")
                if sd is not None:
                    sd.to_ndarray()
            n += 1
    return n, time.perf_counter() - t0, _cpu() - c0


_MVX_SCRIPT = r"""
import sys, time
from mvextractor.videocap import VideoCap
cap = VideoCap()
t0 = time.perf_counter()
if not cap.open(sys.argv[1]):
    raise SystemExit("cannot open")
n = 0
while True:
    r = cap.read()  # 2.0.0: (ret, frame BGR, mvs, frame_type); 1.x added a timestamp
    if not r[0]:
        break
    n += 1
cap.release()
print(n, time.perf_counter() - t0)
"""


def _time_mvx(path, python):
    if not python or not os.path.exists(python):
        return None, f"skipped: {python} not found (pip install motion-vector-extractor==2.0.0 " \
                     f"into a separate venv)"
    try:
        r = subprocess.run([python, "-c", _MVX_SCRIPT, path], capture_output=True, text=True,
                           timeout=900)
    except subprocess.TimeoutExpired:
        return None, "skipped: timed out"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"skipped: motion-vector-extractor not importable ({last})"
    n, dt = r.stdout.split()
    return (int(n), float(dt)), None


def _flow_times(path, pairs):
    """Seconds per pair for DIS-medium and Farneback on grey decoded frame pairs."""
    import cv2
    from third_party.compressed_video import open_compressed
    greys = []
    with open_compressed(path, residual=None) as v:
        for f in v:
            if f.index >= 1:
                greys.append(cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY))
            if len(greys) > pairs:
                break
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    out = {}
    for name, fn in [("dis-medium", lambda a, b: dis.calc(a, b, None)),
                     ("farneback", lambda a, b: cv2.calcOpticalFlowFarneback(
                         a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0))]:
        fn(greys[0], greys[1])  # warm-up
        c0 = _cpu()
        t0 = time.perf_counter()
        for a, b in zip(greys[:-1], greys[1:]):
            fn(a, b)
        out[name] = (time.perf_counter() - t0) / (len(greys) - 1)
        out[name + "_cpu"] = (_cpu() - c0) / (len(greys) - 1)
    return out


def _peak_rss(path, mode_kw):
    """Peak RSS (MB) of a fresh process reading the whole clip, and of one that only imports."""
    # VmHWM (peak RSS of this process image; ru_maxrss would carry the parent's peak across exec)
    code = ("import sys\n"
            "def hwm():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            return int(line.split()[1])\n"
            "from third_party.compressed_video import open_compressed\n"
            "base = hwm()\n"
            "kw = %r\n"
            "rss = []\n"
            "with open_compressed(sys.argv[1], **kw) as v:\n"
            "    for f in v:\n"
            "        if f.residual_sum is not None and f.pict_type == 'P':\n"
            "            f.residual_block_counts(4.0)\n"
            "        if f.index in (50, 300, 599):\n"
            "            rss.append(hwm())\n"
            "print(base, hwm(), *rss)\n") % (mode_kw,)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=root), timeout=900)
    if r.returncode != 0:
        return None
    vals = [int(x) / 1024 for x in r.stdout.split()]
    return vals


def main(argv):
    from experiments.common import reject_extra_args, run_or_exit
    reject_extra_args(argv)
    run_or_exit(_main)


def _main():
    import cv2

    from taplab_tf import timing
    from third_party.compressed_video import native, open_compressed
    work = FLAGS.workdir or tempfile.mkdtemp(prefix="bench_reader_")
    path = FLAGS.video
    if path is None:
        path = os.path.join(work, f"bench_{FLAGS.height}x{FLAGS.width}_{FLAGS.frames}"
                                  f"{'_syn' if FLAGS.synthetic else ''}.avi")
        if not os.path.exists(path):
            t0 = time.perf_counter()
            make_clip(path, FLAGS.height, FLAGS.width, FLAGS.frames, FLAGS.gop, FLAGS.synthetic)
            print(f"wrote {path} in {time.perf_counter() - t0:.1f} s", flush=True)
    with open_compressed(path, residual=None) as v:
        print(repr(v), f"{os.path.getsize(path) / 1e6:.1f} MB", flush=True)
        n_total = v.num_frames
        n_i = v.num_gops
    n_p = n_total - n_i
    print(f"cv2 threads: {cv2.getNumThreads()}, cpus: {os.cpu_count()}, load average at start: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    backend = native.backend()
    why = native.unavailable_reason()
    print(f"residual backend: {backend}" + (f" ({why})" if why else ""), flush=True)

    wanted = set(FLAGS.modes.split(",")) if FLAGS.modes else None
    modes = {
        "pyav-decode": lambda: _time_pyav(path, False),
        "pyav-mvs": lambda: _time_pyav(path, True),
        "mv": lambda: _time_reader(path, rgb=False, residual=None),
        "rgb+mv": lambda: _time_reader(path, rgb=True, residual=None),
        "rgb+mv+res": lambda: _time_reader(path, rgb=True, residual="full"),
        "rgb+mv+summary": lambda: _time_reader(path, rgb=True, residual="summary"),
        "mv+summary": lambda: _time_reader(path, rgb=False, residual="summary"),
    }
    modes = {name: fn for name, fn in modes.items() if not wanted or name in wanted}
    results = {}

    def keep_best(rnd, name, got):
        n, dt, cpu = got
        if name not in results or dt < results[name]["seconds"]:
            results[name] = dict(frames=n, seconds=dt, fps=n / dt, ms_per_frame=1000 * dt / n)
        # CPU time is the steadier figure when other processes share the cores
        r = results[name]
        r["cpu_ms_per_frame"] = min(r.get("cpu_ms_per_frame", 1e18), 1000 * cpu / n)
        print(f"  [{rnd + 1}/{FLAGS.repeats}] {name:15s} {n / dt:8.1f} fps  "
              f"({1000 * dt / n:.2f} ms/frame wall, {1000 * cpu / n:.2f} ms CPU)", flush=True)

    # Round-robin over the modes (taplab_tf.timing), FLAGS.repeats rounds, best round kept: on a
    # shared machine this spreads other processes' load evenly over the modes.
    if modes:
        timing.rounds(modes, FLAGS.repeats, on_call=keep_best)
    if not wanted or "mvx" in wanted:
        mvx, why = _time_mvx(path, FLAGS.mvx_python)
        if mvx:
            n, dt = mvx
            results["mvx"] = dict(frames=n, seconds=dt, fps=n / dt, ms_per_frame=1000 * dt / n)
            print(f"  {'mvx':15s} {n / dt:8.1f} fps  ({1000 * dt / n:.2f} ms/frame)", flush=True)
        else:
            print(f"  mvx: {why}", flush=True)

    flow = {}
    if FLAGS.flow_pairs > 0 and (not wanted or "flow" in wanted):
        flow = _flow_times(path, FLAGS.flow_pairs)
    rss = None
    if not wanted or "rss" in wanted:
        rss = _peak_rss(path, dict(rgb=True, residual="summary"))

    base = results.get("pyav-decode", {}).get("fps")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(f"{FLAGS.height}x{FLAGS.width}, {n_total} frames ({n_p} P), GOP {FLAGS.gop}; "
          f"residual backend {backend}; ratios are fps / pyav-decode fps")
    cbase = results.get("pyav-decode", {}).get("cpu_ms_per_frame")
    print(f"{'mode':16s} {'fps':>8s} {'ms/frame':>9s} {'vs floor':>9s} {'CPU ms/fr':>10s} "
          f"{'CPU vs floor':>12s}")
    for name, r in results.items():
        ratio = f"{r['fps'] / base:8.2f}x" if base else ""
        cpu = r.get("cpu_ms_per_frame")
        cpu_s = f"{cpu:10.2f}" if cpu is not None else f"{'-':>10s}"
        cratio = f"{cpu / cbase:11.2f}x" if cpu is not None and cbase else f"{'-':>12s}"
        print(f"{name:16s} {r['fps']:8.1f} {r['ms_per_frame']:9.2f} {ratio:>9s} {cpu_s} {cratio}")
    if "rgb+mv" in results and "mvx" in results:
        print(f"rgb+mv / motion-vector-extractor: "
              f"{results['rgb+mv']['fps'] / results['mvx']['fps']:.2f}x")
    ours_key = "mv+summary" if "mv+summary" in results else "rgb+mv+summary"
    if flow and ours_key in results:
        print("optical flow on the same decoded frame pairs (grey, 1 call per pair, wall ms; "
              "OpenCV threads as configured):")
        ours = results[ours_key]["ms_per_frame"] / 1000
        ours_full = results.get("rgb+mv+res", {}).get("ms_per_frame")
        ours_cpu = results[ours_key].get("cpu_ms_per_frame")
        for name in ("dis-medium", "farneback"):
            sec, cpu = flow[name], flow[name + "_cpu"]
            line = (f"{name:11s} wall {1000 * sec:7.1f} ms/pair, CPU {1000 * cpu:7.1f} ms/pair; "
                    f"ours ({ours_key}) wall {1000 * ours:.2f} ms/frame -> {sec / ours:.1f}x "
                    f"cheaper, CPU {ours_cpu:.2f} ms -> {1000 * cpu / ours_cpu:.1f}x")
            if ours_full:
                line += f"; rgb+mv+res wall {ours_full:.2f} ms -> {1000 * sec / ours_full:.1f}x"
            print(line)
    if rss:
        print(f"peak RSS (rgb+mv+summary, fresh process): after imports {rss[0]:.0f} MB, "
              f"end {rss[1]:.0f} MB; at frames 50/300/599: "
              f"{' / '.join(f'{x:.0f}' for x in rss[2:])} MB")
    if FLAGS.json_out:
        from experiments import common
        from taplab_tf import io_utils
        io_utils.write_json(FLAGS.json_out, dict(
            results=results, flow=flow, rss_mb=rss, video=path, residual_backend=backend,
            run_config=common.run_record("benchmark_reader")), indent=1, default=str)


if __name__ == "__main__":
    app.run(main)
