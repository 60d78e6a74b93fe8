"""mv_fill: the 'fill' refinement of a block motion field, compiled (TapLab>MvFill).

    mv_fill(motion_vectors, intra, moving_px=0.5, passes=2, majority=0.5) -> (refined, still_intra)

Blocks with no vector (intra), and zero vectors whose moving 3x3 neighbours outnumber
`majority` x their neighbours with a vector, take the component-wise median of their moving
neighbours; repeated `passes` times (a pass that fills nothing ends it). The rule and its numpy
reference live in taplab_tf.pipeline.motion_field (Refinement, method 'fill'); the kernel
(cc/kernels/mv_fill_kernels.cc) gives the same field bit for bit, in a small fraction of the
numpy passes' time, and releases the GIL while it runs.

The fallback is that numpy reference (there is no pure-TF one: a masked median over the
neighbours is not a TF primitive); backend='tf' or TAPLAB_TF_OPS_BACKEND=tf selects it, and an
unbuildable library falls back to it with the ops package's one warning.
"""
import numpy as np

from taplab_tf.ops import _loader


def mv_fill(motion_vectors, intra, moving_px: float = 0.5, passes: int = 2,
            majority: float = 0.5, backend=None):
    """(refined float32 [gh, gw, 2], still_intra bool [gh, gw]) as numpy arrays.

    Args:
      motion_vectors: float32 [gh, gw, 2] block motion (dx, dy) = dst - src.
      intra: bool [gh, gw], True where a block has no vector.
      moving_px: a vector moves when its length exceeds this (pixels).
      passes: how many times the fill runs (at least 1).
      majority: a zero vector is filled where more than this share of its neighbours with a
        vector move.
      backend: None (env / auto), 'cpp' or 'tf' (the numpy reference).
    """
    mv = np.asarray(motion_vectors, np.float32)
    intra = np.asarray(intra, bool)
    if mv.ndim != 3 or mv.shape[-1] != 2 or intra.shape != mv.shape[:2]:
        raise ValueError(f"mv_fill: motion_vectors {mv.shape} must be [gh, gw, 2] and intra "
                         f"{intra.shape} [gh, gw]")
    if _loader.resolve(backend) == _loader.CPP:
        refined, still = _loader.library(required=True).tap_lab_mv_fill(
            motion_vectors=mv, intra=intra, moving_px=np.float32(moving_px),
            majority=np.float64(majority), passes=int(passes))
        return refined.numpy(), still.numpy()
    from taplab_tf.pipeline import motion_field  # the reference (no import cycle at load)
    return motion_field.fill_reference(mv, intra, moving_px, passes, majority)
