"""ops.region_blend (TapLab>RegionBlend): RGC's blend of Eq. 6 on one region, against its TF
version, which the engine used before."""
import numpy as np
import pytest
import tensorflow as tf

from taplab_tf import ops


@pytest.mark.parametrize("shape,crop,top,left", [
    ((1, 16, 32, 19), (8, 8), 4, 12),     # inside
    ((1, 16, 32, 19), (8, 8), 0, 0),      # a corner
    ((1, 16, 32, 19), (8, 8), 8, 24),     # the opposite corner, flush with both edges
    ((1, 16, 32, 11), (16, 32), 0, 0),    # the whole map
    ((2, 9, 7, 3), (3, 5), 6, 2),         # a batch, odd sizes
    ((1, 12, 20, 5), (0, 4), 3, 3),       # an empty region
])
@pytest.mark.parametrize("alpha", [1.0, 0.7, 0.0])
def test_kernel_equals_the_tf_blend_bit_for_bit(shape, crop, top, left, alpha):
    rng = np.random.default_rng(sum(shape) + top)
    logits = rng.normal(0, 5, shape).astype(np.float32)
    crop_logits = rng.normal(0, 5, (shape[0],) + crop + (shape[3],)).astype(np.float32)
    want = ops.region_blend_tf(logits, crop_logits, top, left, alpha).numpy()
    got = ops.region_blend(logits, crop_logits, top, left, alpha, backend="cpp").numpy()
    np.testing.assert_array_equal(got, want)
    # and what Eq. 6 says, outside and inside the region
    ref = logits.copy()
    r = ref[:, top:top + crop[0], left:left + crop[1]]
    # (at alpha = 1 the crop itself: Eq. 6's (1 - alpha) r + alpha crop, not r + (crop - r))
    ref[:, top:top + crop[0], left:left + crop[1]] = (
        crop_logits if alpha == 1.0 else r + np.float32(alpha) * (crop_logits - r))
    np.testing.assert_array_equal(got, ref)
    assert got.shape == logits.shape


def test_kernel_in_a_traced_step_leaves_its_input_alone():
    """In a tf.function whose input the caller still holds, the kernel must not write over it."""
    logits = tf.random.normal([1, 8, 8, 4], seed=1)
    before = logits.numpy().copy()
    step = tf.function(lambda x, c: ops.region_blend(x * 1.0, c, 2, 2, 1.0, backend="cpp") +
                       0.0 * ops.region_blend(x, c, 0, 0, 0.5, backend="cpp"))
    step(logits, tf.ones([1, 4, 4, 4]))
    np.testing.assert_array_equal(logits.numpy(), before)


@pytest.mark.parametrize("top,left,crop", [(-1, 0, (4, 4)), (0, 30, (4, 4)), (13, 0, (4, 4))])
def test_a_region_outside_the_map_is_refused(top, left, crop):
    logits = np.zeros((1, 16, 32, 3), np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not inside"):
        ops.region_blend(logits, np.zeros((1,) + crop + (3,), np.float32), top, left, 1.0,
                         backend="cpp")


def test_mismatched_channels_are_refused():
    with pytest.raises(tf.errors.InvalidArgumentError, match="channels"):
        ops.region_blend(np.zeros((1, 8, 8, 3), np.float32), np.zeros((1, 4, 4, 2), np.float32),
                         0, 0, 1.0, backend="cpp")
