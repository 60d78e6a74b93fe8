"""What a network costs: FLOPs at a static input size and the CPU time of a forward pass.

    flops = count_flops(model, 1024, 2048)        # multiply and add counted apart: 2 x MACs
    t = time_forward(model, 1024, 2048, repeats=3)
    t["variables"], t["frozen"]                    # median seconds of one forward pass

experiments.model_info prints both for BL1/BL2/BL3 and saved models; the measured figures are in
README.md with the machine and the command.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import tensorflow as tf

from taplab_tf import timing


def count_flops(model: tf.keras.Model, height: int, width: int) -> int:
    """Floating-point operations of one forward pass of batch 1 at height x width, from the
    tf.compat.v1 profiler on the frozen concrete function (a multiply and an add count as two,
    so FLOPs = 2 x MACs for convolutions)."""
    from tensorflow.python.framework.convert_to_constants import \
        convert_variables_to_constants_v2
    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec([1, height, width, 3], tf.float32))
    graph = convert_variables_to_constants_v2(concrete).graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    prof = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(),
                                         cmd="op", options=opts)
    return int(prof.total_float_ops)


def time_forward(model: tf.keras.Model, height: int, width: int,
                 repeats: int) -> Dict[str, float]:
    """Median seconds of one forward pass (batch 1, height x width, output fetched) of the model
    on its variables ('variables') and of the frozen graph the engine runs ('frozen',
    taplab_tf.models.frozen_forward), after one warm-up each, the two timed round-robin
    (taplab_tf.timing) for `repeats` rounds."""
    from taplab_tf.models.inference import frozen_forward
    live = tf.function(lambda x: model(x, training=False))
    frozen = frozen_forward(model)
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, height, width, 3)),
                    tf.float32)
    got = timing.round_robin({"variables": lambda: live(x).numpy(),
                              "frozen": lambda: frozen(x).numpy()}, repeats, warmup=1)
    return {name: t.median for name, t in got.items()}
