"""Segmentation networks phi: BL1 (ICNet-style), BL2 (MobileNetV2 + FPN), BL3 (PSPNet).

    model = build_model('bl2', num_classes=19, width_multiplier=0.35)
    logits = model(images)            # [N, ceil(H/s), ceil(W/s), C], s = output_stride('bl2') = 4
    save_model(model, 'ckpt_dir', dataset='synthetic', steps=3000, val_miou=0.9)
    model, meta = load_model('ckpt_dir')
    forward = frozen_forward(model)   # inference with the weights folded into constants

Output strides: bl1 8, bl2 4, bl3 8 (32 with dilated=False). See networks.py for the
architectures and for how pyramid pooling makes BL1/BL3 crop outputs differ from full-frame ones.
"""
from taplab_tf.models.builder import (MODEL_NAMES, build_model, input_multiple,  # noqa: F401
                                      model_kwargs, output_stride)
from taplab_tf.models.checkpoint import load_model, read_metadata, save_model  # noqa: F401
from taplab_tf.models.inference import FreezeError, frozen_forward  # noqa: F401

__all__ = ["MODEL_NAMES", "build_model", "output_stride", "input_multiple", "model_kwargs",
           "save_model", "load_model", "read_metadata", "frozen_forward", "FreezeError"]
