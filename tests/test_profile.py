"""taplab_tf.models.profile: FLOPs of a network at a static size and its forward-pass times."""
import tensorflow as tf

from taplab_tf.models import profile


def _conv(bias):
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((None, None, 3))
    return tf.keras.Model(inp, tf.keras.layers.Conv2D(4, 1, use_bias=bias)(inp))


def test_flops_count_a_multiply_and_an_add_apart():
    # a 1x1 convolution 3 -> 4 channels: 3 MACs per output element, 2 FLOPs per MAC
    assert profile.count_flops(_conv(False), 8, 8) == 2 * 3 * (8 * 8 * 4)
    assert profile.count_flops(_conv(False), 16, 8) == 2 * 3 * (16 * 8 * 4)
    # the bias adds one more per output element
    assert profile.count_flops(_conv(True), 8, 8) == 2 * 3 * (8 * 8 * 4) + 8 * 8 * 4


def test_forward_times_the_variables_and_the_frozen_graph():
    t = profile.time_forward(_conv(True), 16, 16, repeats=2)
    assert sorted(t) == ["frozen", "variables"]
    assert all(isinstance(v, float) and 0 < v < 10 for v in t.values())
