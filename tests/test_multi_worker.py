"""Multi-worker training: two worker processes on localhost (MultiWorkerMirroredStrategy, a
TF_CONFIG each, CPU only) run train() for a few steps on a tiny CamVid-layout tree and end where
one process with the same global batch on two replicas (MirroredStrategy on two logical CPUs)
ends; only the chief writes; a bad TF_CONFIG is one line naming the problem."""
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import cv2
import numpy as np
import pytest

from taplab_tf.train import distribute
from tests.helpers.training import ROOT, tiny_config

STEPS = 3
# Wall-clock limit for the three processes together (each imports TensorFlow and traces BL2).
# Past it, or as soon as one process fails, all of them are killed: a worker whose peer is gone
# would otherwise wait in its collectives for ever.
TIMEOUT_S = 600
# Same per-replica batches, same float32 kernels: only the order of the two-term gradient sums
# could differ, and a + b == b + a. A sharding or loss-scaling error moves the weights by ~lr
# (1e-3) and the loss by far more than this.
RTOL, ATOL = 1e-5, 1e-6

RUN = textwrap.dedent("""
    import json, os, sys
    mode, data_dir, logdir, out = sys.argv[1:5]
    import tensorflow as tf
    if mode == 'mirrored':  # the reference: one process, two replicas
        cpu = tf.config.list_physical_devices('CPU')[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from taplab_tf.train import train, distribute
    from tests.helpers.training import tiny_config
    cfg = tiny_config(logdir, strategy=mode, data_dir=data_dir, steps=%(steps)d, batch_size=4,
                      crop=(48, 48), scale_range=(0.75, 1.25), seed=1, checkpoint_every=2,
                      image_every=%(steps)d, bn_recalibration_batches=1)
    r = train(cfg)
    record = {k: r[k] for k in ('step', 'loss', 'val_miou', 'export_dir')}
    record['replicas'] = r['model'].distribute_strategy.num_replicas_in_sync
    if mode == 'mirrored':
        # The start-state check sees replicas that differ (a variable whose copies differ).
        s = r['model'].distribute_strategy
        with s.scope():
            v = tf.Variable(0.0, synchronization=tf.VariableSynchronization.ON_READ,
                            aggregation=tf.VariableAggregation.SUM)
        s.run(tf.function(lambda: v.assign(tf.cast(
            tf.distribute.get_replica_context().replica_id_in_sync_group, tf.float32))))
        try:
            distribute.check_workers_agree(s, 0, [v])
        except ValueError as e:
            record['disagree'] = str(e)
    with open(out, 'w') as f:
        json.dump(record, f)
""") % {"steps": STEPS}


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _write_camvid(root, n_train=8, n_val=2, size=(40, 56)):
    """A CamVid (SegNet layout) tree of random images and labels in 0-3 with void (11)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        os.makedirs(os.path.join(root, split))
        os.makedirs(os.path.join(root, split + "annot"))
        for i in range(n):
            image = rng.integers(0, 256, size + (3,), dtype=np.uint8)
            label = rng.choice(np.array([0, 1, 2, 3, 11], np.uint8), size)
            label[: size[0] // 2, : size[1] // 2] = i % 4  # some structure to learn
            assert cv2.imwrite(os.path.join(root, split, f"f{i:02d}.png"), image)
            assert cv2.imwrite(os.path.join(root, split + "annot", f"f{i:02d}.png"), label)
    return str(root)


def _run_together(jobs, timeout):
    """Starts every (name, argv, env, log) at once; returns when all exit 0, else kills them all
    and fails naming the first failed or late one with the end of its log."""
    procs = []
    try:
        for name, argv, env, log in jobs:
            with open(log, "w") as f:
                procs.append((name, subprocess.Popen(argv, cwd=ROOT, env=env, stdout=f,
                                                     stderr=subprocess.STDOUT), log))
        deadline = time.monotonic() + timeout
        while True:
            codes = [p.poll() for _, p, _ in procs]
            failed = [(n, c, log) for (n, _, log), c in zip(procs, codes) if c not in (None, 0)]
            if failed or all(c == 0 for c in codes) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for _, p, _ in procs:
            if p.poll() is None:
                p.kill()
        for _, p, _ in procs:
            p.wait()
    if failed or any(c is None for c in codes):
        name, code, log = failed[0] if failed else next(
            (n, "still running", log) for (n, _, log), c in zip(procs, codes) if c is None)
        with open(log) as f:
            tail = f.read()[-3000:]
        pytest.fail(f"{name}: {code} (limit {timeout} s); its log ends:\n{tail}")


def _checkpoint(prefix):
    import tensorflow as tf
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if not k.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")}


def test_two_workers_match_one_process_with_the_same_global_batch(tmp_path):
    data = _write_camvid(tmp_path / "camvid")
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    base = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
    base.pop("TF_CONFIG", None)
    jobs = []
    for i in range(2):
        scratch = tmp_path / f"tmp{i}"  # where the worker's temporary files go
        scratch.mkdir()
        env = dict(base, TMPDIR=str(scratch), TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": i}}))
        jobs.append((f"worker {i}", [sys.executable, "-c", RUN, "multi_worker", data,
                                     str(tmp_path / "mw"), str(tmp_path / f"worker{i}.json")],
                     env, str(tmp_path / f"worker{i}.log")))
    jobs.append(("reference (mirrored, one process)",
                 [sys.executable, "-c", RUN, "mirrored", data, str(tmp_path / "ref"),
                  str(tmp_path / "ref.json")], base, str(tmp_path / "ref.log")))
    t0 = time.monotonic()
    _run_together(jobs, TIMEOUT_S)
    print(f"3 processes: {time.monotonic() - t0:.1f} s")
    chief, other, ref = (json.loads((tmp_path / f).read_text())
                         for f in ("worker0.json", "worker1.json", "ref.json"))

    assert chief["replicas"] == other["replicas"] == ref["replicas"] == 2
    assert chief["step"] == other["step"] == ref["step"] == STEPS
    # The loss is all-reduced: both workers report the global one, the reference's.
    assert chief["loss"] == other["loss"]
    np.testing.assert_allclose(chief["loss"], ref["loss"], rtol=RTOL)
    assert chief["val_miou"] == other["val_miou"]
    np.testing.assert_allclose(chief["val_miou"], ref["val_miou"], rtol=RTOL, atol=ATOL)

    # Weights and Adam's moments after 2 and after STEPS steps (the chief's checkpoints).
    for step in (2, STEPS):
        mw = _checkpoint(str(tmp_path / "mw" / "checkpoints" / f"ckpt-{step}"))
        one = _checkpoint(str(tmp_path / "ref" / "checkpoints" / f"ckpt-{step}"))
        assert sorted(mw) == sorted(one) and len(mw) > 50
        worst = max(float(np.max(np.abs(mw[k] - one[k]))) for k in mw)
        print(f"step {step}: max |multi_worker - one process| over {len(mw)} tensors: {worst:.3g}")
        for k in mw:
            np.testing.assert_allclose(mw[k], one[k], rtol=RTOL, atol=ATOL, err_msg=k)
    # ... and the export after BatchNorm recalibration.
    from taplab_tf import models
    m1, meta = models.load_model(chief["export_dir"], model="bl2", num_classes=4)
    m2, _ = models.load_model(ref["export_dir"], model="bl2", num_classes=4)
    assert meta["steps"] == STEPS
    for a, b in zip(m1.weights, m2.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=RTOL, atol=ATOL, err_msg=a.name)

    # Only the chief wrote: its logdir has what a one-process run has; worker 1 kept nothing.
    assert chief["export_dir"] == str(tmp_path / "mw" / "model") and other["export_dir"] == ""
    assert sorted(os.listdir(tmp_path / "mw" / "checkpoints")) == sorted(
        os.listdir(tmp_path / "ref" / "checkpoints"))
    events = [f for f in os.listdir(tmp_path / "mw") if f.startswith("events.out")]
    assert len(events) == 1, events
    assert os.listdir(tmp_path / "tmp1") == []
    # The start-state check refuses replicas that do not start from the same weights.
    assert "multi_worker: the workers start at step 0 with other weights" in ref["disagree"]


@pytest.mark.parametrize("value, problem", [
    ("{cluster", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"task": {"type": "worker", "index": 0}}', "'cluster' is missing"),
    ('{"cluster": {"ps": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker"}}',
     "cluster job 'ps' is not supported"),
    ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker"}}', "non-empty list"),
    ('{"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker"}}',
     "cluster['worker'][1] = 'b' is not a host:port"),
    ('{"cluster": {"worker": ["a:70000"]}, "task": {"type": "worker"}}', "not a host:port"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker"}}', "listed twice"),
    ('{"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief"}}', "at most one chief"),
    ('{"cluster": {"worker": ["a:1"]}}', "'task' is missing"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief"}}',
     "task type 'chief' is not a job"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     "task index 2 is out of range"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}',
     "must be an integer"),
])
def test_bad_tf_config_is_one_line_naming_the_problem(value, problem):
    with pytest.raises(ValueError) as e:
        distribute.parse_tf_config(value)
    msg = str(e.value)
    assert msg.startswith("TF_CONFIG: ") and problem in msg and "\n" not in msg, msg


def test_tf_config_roles():
    assert distribute.parse_tf_config(None) is None and distribute.parse_tf_config(" ") is None
    two = {"worker": ["h1:2222", "h2:2222"]}
    w0, w1 = (distribute.parse_tf_config(json.dumps(
        {"cluster": two, "task": {"type": "worker", "index": i}})) for i in (0, 1))
    assert w0.is_chief and not w1.is_chief and w0.num_workers == w1.num_workers == 2
    with_chief = {"chief": ["[::1]:1"], "worker": ["h1:2222"]}
    c, w = (distribute.parse_tf_config(json.dumps({"cluster": with_chief, "task": t}))
            for t in ({"type": "chief", "index": 0}, {"type": "worker", "index": 0}))
    assert c.is_chief and not w.is_chief and c.num_workers == 2


def test_train_refuses_a_bad_tf_config_before_reading_anything(tmp_path, monkeypatch):
    from taplab_tf.train import train
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, '
                                    '"task": {"type": "worker", "index": 1}}')
    cfg = tiny_config(tmp_path / "run", strategy="multi_worker", data_dir=str(tmp_path / "no"))
    with pytest.raises(ValueError, match=r"^TF_CONFIG: task index 1 is out of range"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_cli_bad_tf_config_is_one_line(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="",
               TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, '
                         '"task": {"type": "worker", "index": 2}}')
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--strategy=multi_worker",
         f"--data_dir={tmp_path}", f"--logdir={tmp_path / 'run'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: TF_CONFIG: task index 2 is out of range: cluster['worker'] has 2 address(es)"), \
        proc.stderr[-2000:]
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_multi_worker_data_order_is_seeded_even_with_seed_0(tmp_path):
    # Every worker builds the stream and keeps its part of each global batch: two builds must
    # agree (order and augmentation), also for --seed=0, which leaves one process unseeded.
    from taplab_tf.train.trainer import make_datasets
    data = _write_camvid(tmp_path / "camvid", n_train=6, n_val=1)

    def first_batches(strategy):
        cfg = tiny_config(tmp_path / "run", strategy=strategy, data_dir=data, batch_size=2,
                          crop=(32, 32), seed=0)
        train, _ = make_datasets(cfg)
        return [(x.numpy(), y.numpy()) for x, y in train.take(3)]

    a, b = first_batches("multi_worker"), first_batches("multi_worker")
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
