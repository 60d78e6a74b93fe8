"""phi for inference: the model with its weights folded into a constant graph.

    forward = frozen_forward(model)      # raises FreezeError where the model cannot be frozen
    logits = forward(images)             # float32 [1, H, W, 3] in [0, 255], any H, W

Folding the weights into constants (convert_variables_to_constants_v2, what a TF 1.x deployment
did with a frozen GraphDef) lets TF's graph optimiser and oneDNN prepare the weights once instead
of on every call. Measured on this project's 2-core CPU (`python -m experiments.model_info`, which
times both): BL2 9% faster at 1024x2048 and 21% on a 512x512 crop, BL1 6% and 15%, BL3 under
3%. The outputs agree with the model's to float rounding. The forward function
serves the weights the model had when it was frozen.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf


class FreezeError(RuntimeError):
    """The model could not be folded into a constant graph; the message says why."""


def frozen_forward(model: tf.keras.Model, channels: int = 3) -> Callable[[tf.Tensor], tf.Tensor]:
    """model(x, training=False) as a frozen ConcreteFunction over [1, None, None, channels]."""
    from tensorflow.python.framework import convert_to_constants
    try:
        concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(
            tf.TensorSpec([1, None, None, channels], tf.float32))
        frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
    except Exception as e:  # noqa: BLE001 - named in one line for the caller
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FreezeError(msg) from None

    def forward(x):
        out = frozen(x)
        return out[0] if isinstance(out, (list, tuple)) else out
    return forward
