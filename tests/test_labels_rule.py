"""One rule from logits to labels (ops.logits_to_labels): training validation, evaluate_image's
evaluation, the engine's output and the SavedModel's labels agree at any size, also where the
size is not a multiple of the output stride."""
import numpy as np
import tensorflow as tf

from taplab_tf import config as C
from taplab_tf import models, ops
from taplab_tf.pipeline import engine as E
from taplab_tf.pipeline import evaluate_images
from taplab_tf.train import losses, trainer

H, W, NC = 70, 90, 5  # neither a multiple of BL2's stride 4


def data(n=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (n, H, W, 3)).astype(np.float32)
    labels = rng.integers(0, NC, (n, H, W)).astype(np.uint8)
    labels[:, :5] = 255  # some ignored pixels
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(1)


def test_validation_miou_equals_evaluation_miou_off_the_stride_grid():
    model = models.build_model("bl2", NC, width_multiplier=0.35)
    ds = data()
    val = trainer.evaluate(model, ds, NC)
    cm, n, _ = evaluate_images.evaluate_dataset(model, model.output_stride, ds, NC,
                                                progress=None)
    assert n == 3
    assert abs(val - cm.miou()) < 1e-12
    # the rule this replaced (resize straight to the label size) gives other labels here
    images, labels = next(iter(ds))
    logits = model(images, training=False)
    rule = ops.logits_to_labels(logits, H, W, model.output_stride).numpy()
    stretched = tf.argmax(tf.image.resize(logits, (H, W)), -1).numpy()
    assert (rule != stretched).any()
    cm_rule = losses.confusion(labels, logits, NC, output_stride=model.output_stride).numpy()
    assert cm_rule.sum() == int((labels.numpy() != 255).sum())


def test_validation_at_an_input_scale_equals_evaluate_image_at_it():
    """TrainConfig.eval_input_scale: the trainer scores phi on the resized images exactly as
    evaluate_image --input_scale does (one resize, evaluate_images.resize_for_phi), and that is
    not the score at scale 1."""
    model = models.build_model("bl2", NC, width_multiplier=0.35)
    ds = data(seed=3)
    for scale in (4 / 3, 0.5):
        val = trainer.evaluate(model, ds, NC, input_scale=scale)
        cm, _, _ = evaluate_images.evaluate_dataset(model, model.output_stride, ds, NC,
                                                    progress=None, input_scale=scale)
        assert abs(val - cm.miou()) < 1e-12
    assert trainer.evaluate(model, ds, NC, input_scale=4 / 3) != trainer.evaluate(model, ds, NC)
    images = next(iter(ds))[0]
    big = evaluate_images.resize_for_phi(images, 4, 3)
    assert tuple(big.shape[1:3]) == C.phi_input_size(H, W, 4, 3) == (94, 120)
    assert evaluate_images.resize_for_phi(images, 4, 4) is images


def test_engine_output_follows_the_same_rule():
    model = models.build_model("bl2", NC, width_multiplier=0.35)
    image = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)

    class Frame:
        index, pict_type, gop_position, motion_vectors, residual_sum = 0, "I", 0, None, 0.0
        height, width = H, W

    Frame.image = image
    engine = E.TapLabEngine(model, C.TapLabConfig(modules="none"), freeze=False)
    (r,) = list(engine.segment([Frame()]))
    logits = model(tf.cast(image, tf.float32)[None], training=False)
    expected = ops.logits_to_labels(logits, H, W, model.output_stride).numpy()[0]
    np.testing.assert_array_equal(r.labels, expected)


def test_importing_an_op_submodule_keeps_the_package_functions():
    """`from taplab_tf.ops.upsample_argmax import ...` used to bind the submodule over the
    function taplab_tf.ops.upsample_argmax (and likewise mv_warp), in a fresh interpreter."""
    import subprocess
    import sys
    code = ("import types\n"
            "from taplab_tf.ops.upsample_argmax import logits_to_labels\n"
            "from taplab_tf.ops.mv_warp import mv_warp_tf\n"
            "from taplab_tf import ops\n"
            "assert not isinstance(ops.upsample_argmax, types.ModuleType)\n"
            "assert not isinstance(ops.mv_warp, types.ModuleType)\n"
            "print('functions')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and "functions" in p.stdout, p.stderr[-2000:]
