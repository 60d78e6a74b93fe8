"""phi for inference: the model with its weights folded into a constant graph.

    forward = frozen_forward(model)      # raises FreezeError where the model cannot be frozen
    logits = forward(images)             # float32 [1, H, W, 3] in [0, 255], any H, W

Folding the weights into constants (convert_variables_to_constants_v2, what a TF 1.x deployment
did with a frozen GraphDef) lets TF's graph optimiser and oneDNN prepare the weights once instead
of on every call. TF's optimiser then fuses each Conv2D with its inference BatchNorm and
activation, but not a DepthwiseConv2dNative: its BatchNorm stays a multiply and an add, two more
passes over the largest activations of MobileNet (BL2). `fold_depthwise_batchnorm` folds those
into the depthwise filter and a bias, which TF then fuses with the activation too.

Measured on this project's 2-core CPU (`python -m experiments.model_info`, which times the model
on its variables and this function): see README, "Per-frame networks". The outputs agree with the
model's to float rounding. The forward function serves the weights the model had when it was
frozen.
"""
from __future__ import annotations

from typing import Callable, Tuple

import numpy as np
import tensorflow as tf


class FreezeError(RuntimeError):
    """The model could not be folded into a constant graph; the message says why."""


def _one_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def fold_depthwise_batchnorm(graph_def) -> Tuple[object, int]:
    """A copy of a frozen GraphDef where every inference FusedBatchNormV3 that follows a float32
    NHWC DepthwiseConv2dNative with a constant filter (used by that conv alone) and whose batch
    statistics outputs are unused becomes a BiasAdd, its scale folded into the filter:
      y = (conv(x, f) - mean) * g / sqrt(var + eps) + beta = conv(x, f * k) + (beta - mean * k),
      k = g / sqrt(var + eps), per output channel (in * multiplier, the filter's last two dims).
    Returns (graph_def, number of BatchNorms folded). Other nodes are copied unchanged."""
    from tensorflow.core.framework import attr_value_pb2, graph_pb2, node_def_pb2
    from tensorflow.python.framework import tensor_util

    out = graph_pb2.GraphDef()
    out.CopyFrom(graph_def)
    nodes = {n.name: n for n in out.node}
    consumers = {}
    for n in out.node:
        for i in n.input:
            consumers.setdefault(i.lstrip("^").split(":")[0], []).append(i)

    def const_source(name):
        n = nodes.get(name.lstrip("^").split(":")[0])
        while n is not None and n.op == "Identity" and len(n.input) == 1:
            n = nodes.get(n.input[0].split(":")[0])
        return n if n is not None and n.op == "Const" else None

    def value(name):
        return tensor_util.MakeNdarray(const_source(name).attr["value"].tensor)

    def const_node(name, array):
        n = node_def_pb2.NodeDef(name=name, op="Const")
        n.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(type=tf.float32.as_datatype_enum))
        n.attr["value"].CopyFrom(attr_value_pb2.AttrValue(
            tensor=tensor_util.make_tensor_proto(array.astype(np.float32))))
        return n

    float32 = tf.float32.as_datatype_enum
    added, folded = [], 0
    for bn in out.node:
        if bn.op != "FusedBatchNormV3" or bn.attr["is_training"].b:
            continue
        conv = nodes.get(bn.input[0].split(":")[0])
        if (conv is None or conv.op != "DepthwiseConv2dNative" or bn.input[0] not in
                (conv.name, conv.name + ":0") or conv.attr["T"].type != float32
                or conv.attr["data_format"].s not in (b"", b"NHWC")
                or bn.attr["data_format"].s not in (b"", b"NHWC")):
            continue
        if any(ref.split(":")[-1] not in (bn.name, "0") for ref in consumers.get(bn.name, [])):
            continue  # a batch statistic output is read
        # The conv must feed this BatchNorm alone (its filter changes); the filter itself may be
        # shared, as the conv gets a new constant.
        if len(consumers.get(conv.name, [])) != 1 or any(
                const_source(i) is None for i in [conv.input[1], *bn.input[1:5]]):
            continue
        scale, offset, mean, var = (value(i).astype(np.float64) for i in bn.input[1:5])
        k = scale / np.sqrt(var + bn.attr["epsilon"].f)
        f = value(conv.input[1]).astype(np.float64)
        h, w, cin, mult = f.shape
        added.append(const_node(conv.name + "/folded_filter", f * k.reshape(cin, mult)))
        added.append(const_node(bn.name + "/folded_bias", offset - mean * k))
        conv.input[1] = conv.name + "/folded_filter"
        name = bn.name
        inputs = [bn.input[0], name + "/folded_bias"] + [i for i in bn.input if i.startswith("^")]
        bn.Clear()  # the same name, now a BiasAdd: its consumers read output 0 as before
        bn.name, bn.op = name, "BiasAdd"
        bn.input.extend(inputs)
        bn.attr["T"].CopyFrom(attr_value_pb2.AttrValue(type=float32))
        bn.attr["data_format"].CopyFrom(attr_value_pb2.AttrValue(s=b"NHWC"))
        folded += 1
    out.node.extend(added)
    return out, folded


def frozen_forward(model: tf.keras.Model, channels: int = 3,
                   fold_batchnorm: bool = True) -> Callable[[tf.Tensor], tf.Tensor]:
    """model(x, training=False) as a frozen graph over [1, None, None, channels]; with
    fold_batchnorm, depthwise convolutions' BatchNorms folded in (fold_depthwise_batchnorm)."""
    from tensorflow.python.framework import convert_to_constants
    try:
        concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(
            tf.TensorSpec([1, None, None, channels], tf.float32))
        frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
    except Exception as e:  # noqa: BLE001 - named in one line for the caller
        raise FreezeError(_one_line(e)) from None
    run = frozen
    if fold_batchnorm:
        graph_def, folded = fold_depthwise_batchnorm(frozen.graph.as_graph_def())
        if folded:
            inputs = [t.name for t in frozen.inputs]
            outputs = [t.name for t in frozen.outputs]
            try:
                wrapped = tf.compat.v1.wrap_function(
                    lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
                run = wrapped.prune([wrapped.graph.get_tensor_by_name(n) for n in inputs],
                                    [wrapped.graph.get_tensor_by_name(n) for n in outputs])
            except Exception as e:  # noqa: BLE001
                raise FreezeError(f"folding BatchNorm into depthwise convolutions: "
                                  f"{_one_line(e)}") from None

    def forward(x):
        out = run(x)
        return out[0] if isinstance(out, (list, tuple)) else out
    return forward
