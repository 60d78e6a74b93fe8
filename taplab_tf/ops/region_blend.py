"""region_blend: RGC's blend (Eq. 6) on one region of the logits (TapLab>RegionBlend).

    region_blend(logits, crop_logits, top, left, alpha)
      == logits with [top:top+rh, left:left+rw] replaced by r + alpha * (crop_logits - r)

r being that region of logits, in logits cells; at alpha = 1 the region is crop_logits exactly
(Eq. 6 reads (1 - alpha) r + alpha crop). The compiled kernel writes each output row once
(in place where TF can forward the logits' buffer) and equals the TF version bit for bit; the TF
version (the fallback, backend='tf') computes only the region and copies the rest with two
concats, about 2.5x the map's bytes. Usable in a tf.function (not under XLA with the compiled
backend).
"""
import tensorflow as tf

from taplab_tf.ops import _loader


def region_blend_tf(logits, crop_logits, top, left, alpha):
    """The pure-TF blend: the region computed, the rest copied around it."""
    h, w = tf.shape(crop_logits)[1], tf.shape(crop_logits)[2]
    rows = logits[:, top:top + h]
    region = rows[:, :, left:left + w]
    # Eq. 6 at alpha = 1 is the crop itself, exactly (r + (crop - r) would round)
    region = tf.where(tf.equal(alpha, 1.0), crop_logits, region + alpha * (crop_logits - region))
    rows = tf.concat([rows[:, :, :left], region, rows[:, :, left + w:]], axis=2)
    return tf.concat([logits[:, :top], rows, logits[:, top + h:]], axis=1)


def region_blend(logits, crop_logits, top, left, alpha, backend=None):
    """float32 [N, h, w, C]: logits with Eq. 6 applied on the region of crop_logits
    [N, rh, rw, C] whose first cell is (top, left). top, left: int32 scalars; alpha: float32."""
    logits = tf.convert_to_tensor(logits, tf.float32)
    crop_logits = tf.convert_to_tensor(crop_logits, tf.float32)
    top = tf.convert_to_tensor(top, tf.int32)
    left = tf.convert_to_tensor(left, tf.int32)
    alpha = tf.convert_to_tensor(alpha, tf.float32)
    if _loader.resolve(backend) == _loader.CPP:
        return _loader.library().tap_lab_region_blend(logits, crop_logits, top, left, alpha)
    return region_blend_tf(logits, crop_logits, top, left, alpha)
