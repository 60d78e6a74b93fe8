"""Multi-worker training (tf.distribute.MultiWorkerMirroredStrategy): the TF_CONFIG checks,
who is the chief, and the checks that keep the workers in step.

Every worker runs the same program with its own TF_CONFIG, e.g. on the first of two machines

    {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}

and `"index": 1` on the second. The chief is the task of type 'chief', or worker 0 when the
cluster has no 'chief' job. Variables live on every worker and all of them take part in every
collective (gradient all-reduce, reads of BatchNorm's moving statistics, checkpoint saves), so
each worker runs the same steps, evaluations, saves and export; only the chief's outputs are
kept, the others write to a temporary folder they delete (as TF's multi-worker guide advises).

parse_tf_config needs no TensorFlow: a bad TF_CONFIG fails with one line before TF starts.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Optional

JOBS = ("chief", "worker")  # the jobs MultiWorkerMirroredStrategy trains with
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """This process's place in the cluster."""

    task_type: str
    task_index: int
    num_workers: int          # chief + workers
    is_chief: bool


def parse_tf_config(text: Optional[str]) -> Optional[WorkerInfo]:
    """WorkerInfo of a TF_CONFIG value; None when it is unset or empty (one worker).

    ValueError with one line starting 'TF_CONFIG:' that names the problem: not JSON, no
    'cluster' or 'task', a job other than chief/worker, an address that is not host:port, an
    address listed twice, a task type not in the cluster, an index out of range."""
    if text is None or not text.strip():
        return None
    try:
        config = json.loads(text)
    except ValueError as e:
        raise ValueError(f"TF_CONFIG: not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG: must be a JSON object with 'cluster' and 'task', got "
                         f"{type(config).__name__}")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError("TF_CONFIG: 'cluster' is missing or empty; it maps 'worker' (and "
                         "optionally 'chief') to lists of host:port addresses")
    seen = {}
    for job, addresses in cluster.items():
        if job not in JOBS:
            raise ValueError(f"TF_CONFIG: cluster job {job!r} is not supported by "
                             f"--strategy=multi_worker (only {' and '.join(JOBS)})")
        if not isinstance(addresses, list) or not addresses:
            raise ValueError(f"TF_CONFIG: cluster[{job!r}] must be a non-empty list of "
                             f"host:port addresses, got {addresses!r}")
        if job == "chief" and len(addresses) > 1:
            raise ValueError(f"TF_CONFIG: cluster['chief'] has {len(addresses)} addresses; "
                             f"there is at most one chief")
        for i, address in enumerate(addresses):
            m = _ADDRESS.match(address) if isinstance(address, str) else None
            if m is None or not 0 < int(m.group(2)) < 65536:
                raise ValueError(f"TF_CONFIG: cluster[{job!r}][{i}] = {address!r} is not a "
                                 f"host:port address (port 1-65535)")
            if address in seen:
                raise ValueError(f"TF_CONFIG: address {address} is listed twice ({seen[address]} "
                                 f"and {job}[{i}])")
            seen[address] = f"{job}[{i}]"
    task = config.get("task")
    if not isinstance(task, dict):
        raise ValueError("TF_CONFIG: 'task' is missing; it says which cluster entry this process "
                         "is, e.g. {\"type\": \"worker\", \"index\": 0}")
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in cluster:
        raise ValueError(f"TF_CONFIG: task type {task_type!r} is not a job of the cluster "
                         f"({', '.join(sorted(cluster))})")
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError(f"TF_CONFIG: task index must be an integer, got {index!r}")
    if not 0 <= index < len(cluster[task_type]):
        raise ValueError(f"TF_CONFIG: task index {index} is out of range: cluster[{task_type!r}] "
                         f"has {len(cluster[task_type])} address(es)")
    is_chief = task_type == "chief" or ("chief" not in cluster and index == 0)
    return WorkerInfo(task_type, index, sum(len(cluster[j]) for j in cluster), is_chief)


def check_tf_config() -> Optional[WorkerInfo]:
    """parse_tf_config of the TF_CONFIG environment variable."""
    return parse_tf_config(os.environ.get("TF_CONFIG"))


def make_multi_worker_strategy():
    """MultiWorkerMirroredStrategy from a checked TF_CONFIG (ValueError, one line, otherwise).

    It must be created before TensorFlow runs any op in this process (TF configures the
    collectives at start-up); the first collective waits until every worker has started."""
    check_tf_config()
    import tensorflow as tf
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as e:
        if "program startup" in str(e) or "initialized" in str(e):
            raise ValueError("strategy: multi_worker must be created before TensorFlow runs "
                             "anything in this process (make_strategy first, then the data)") \
                from None
        raise ValueError(f"strategy: multi_worker could not start ({_first_line(e)})") from None
    except (ValueError, tf.errors.OpError) as e:
        raise ValueError(f"strategy: multi_worker could not start this worker "
                         f"({_first_line(e)}); check TF_CONFIG") from None


def worker_info(strategy) -> WorkerInfo:
    """This process's WorkerInfo under `strategy` (one chief worker for single-process ones)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return WorkerInfo("chief", 0, 1, True)
    spec = resolver.cluster_spec().as_dict()
    workers = sum(len(spec.get(job, ())) for job in JOBS) or 1
    task_type = resolver.task_type or "chief"
    index = int(resolver.task_id or 0)
    return WorkerInfo(task_type, index, workers, bool(strategy.extended.should_checkpoint))


def check_workers_agree(strategy, step: int, variables) -> None:
    """All workers start from the same step and weights, else ValueError naming the steps.

    Each worker resumes from the checkpoints it finds in the chief's logdir (or warm-starts
    from init_from): on machines that do not share that folder they would train from other
    states, and the all-reduced gradients would silently mix them."""
    import numpy as np
    import tensorflow as tf

    def row():
        total = tf.add_n([tf.reduce_sum(tf.cast(v, tf.float64)) for v in variables])
        mine = tf.stack([tf.constant(float(step), tf.float64), total])[None]
        return tf.distribute.get_replica_context().all_gather(mine, axis=0)

    rows = strategy.experimental_local_results(tf.function(lambda: strategy.run(row))())[0]
    rows = np.asarray(rows)
    if not (rows == rows[:1]).all():
        steps = sorted({int(s) for s in rows[:, 0]})
        what = f"from steps {steps}" if len(steps) > 1 else f"at step {steps[0]} with other weights"
        raise ValueError(f"multi_worker: the workers start {what}; every worker must read the "
                         f"chief's --logdir (and --init_from): put them on storage all machines "
                         f"share, or pass --restart")


def _first_line(e) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__
