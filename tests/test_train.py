"""Training: masked loss, a step changes weights, resume after interruption, export, and
MirroredStrategy on two logical CPUs matching the single-device step (in a subprocess)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from taplab_tf import models
from taplab_tf.train import Trainer, masked_cross_entropy, masked_cross_entropy_sum, train
from tests.helpers.training import ROOT, TINY, constant_data, tiny_config

def test_loss_ignores_label_255():
    logits = tf.random.normal((2, 4, 4, 3), seed=0)
    labels = np.full((2, 8, 8), 255, np.uint8)
    loss = masked_cross_entropy(labels, logits)
    assert float(loss) == 0.0
    with tf.GradientTape() as tape:
        tape.watch(logits)
        total, count = masked_cross_entropy_sum(labels, logits)
    assert float(count) == 0 and np.all(tape.gradient(total, logits).numpy() == 0)
    # Ignored pixels do not change the mean over labelled ones.
    labels[:, :4] = 1
    mixed = float(masked_cross_entropy(labels, logits))
    up = tf.image.resize(logits, (8, 8))
    ref = tf.nn.sparse_softmax_cross_entropy_with_logits(np.ones((2, 4, 8), np.int32), up[:, :4])
    np.testing.assert_allclose(mixed, float(tf.reduce_mean(ref)), rtol=1e-5)


def test_weights_change_after_a_step(tmp_path):
    tf.keras.utils.set_random_seed(0)
    trainer = Trainer(tiny_config(tmp_path))
    before = [v.numpy().copy() for v in trainer.model.trainable_variables]
    loss, cm = trainer.train_steps(iter(constant_data()), 1)
    assert np.isfinite(loss) and cm.sum() == 2 * 60 * 64 and trainer.step == 1
    after = trainer.model.trainable_variables
    changed = [not np.array_equal(a, b.numpy()) for a, b in zip(before, after)]
    assert all(changed), sum(changed)


def test_warm_start_loads_saved_weights_and_rejects_other_networks(tmp_path):
    tf.keras.utils.set_random_seed(0)
    source = models.build_model("bl2", 4, **TINY)
    models.save_model(source, str(tmp_path / "saved"), dataset="camvid")
    trainer = Trainer(tiny_config(tmp_path / "run", init_from=str(tmp_path / "saved")))
    assert trainer.restore() == 0  # fresh optimizer and schedule
    for a, b in zip(source.weights, trainer.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    other = Trainer(tiny_config(tmp_path / "run5", num_classes=5, init_from=str(tmp_path / "saved")))
    with pytest.raises(ValueError, match="init_from: .* does not fit.*--init_skip_mismatch"):
        other.restore()
    # pretraining on another dataset: everything but the classifier comes from the saved model
    tf.keras.utils.set_random_seed(1)
    pre = Trainer(tiny_config(tmp_path / "run5b", num_classes=5, init_skip_mismatch=True,
                              init_from=str(tmp_path / "saved")))
    fresh = [v.numpy().copy() for v in pre.model.weights]
    assert pre.restore() == 0
    loaded = [a.shape == b.shape for a, b in zip(source.weights, pre.model.weights)]
    assert 0 < loaded.count(False) <= 2 and loaded.count(True) > 10  # the head's kernel and bias
    for a, b, f, same in zip(source.weights, pre.model.weights, fresh, loaded):
        np.testing.assert_array_equal(b.numpy(), a.numpy() if same else f)
    wider = Trainer(tiny_config(tmp_path / "run6", init_skip_mismatch=True,
                                model_kwargs={**TINY, "decoder_channels": 16},
                                init_from=str(tmp_path / "saved")))
    with pytest.raises(ValueError, match="does not fit"):  # another network is never loaded
        wider.restore()


def test_bad_config_is_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="strategy: 'tpu'"):
        tiny_config(tmp_path, strategy="tpu").validate()
    with pytest.raises(ValueError, match="crop"):
        tiny_config(tmp_path, crop=(64,)).validate()
    with pytest.raises(ValueError, match="dataset: unknown"):
        tiny_config(tmp_path, dataset="kitti").validate()


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    data = constant_data()
    # Run 1 is 'killed' after 3 of 4 steps; the last checkpoint is at step 2.
    r1 = train(tiny_config(tmp_path / "a", stop_after=3), data, data)
    assert r1["stopped"] and r1["step"] == 3 and r1["export_dir"] == ""
    r2 = train(tiny_config(tmp_path / "a"), data, data)
    assert r2["start_step"] == 2 and r2["step"] == 4 and not r2["stopped"]
    r3 = train(tiny_config(tmp_path / "b"), data, data)
    assert r3["start_step"] == 0 and r3["step"] == 4
    for a, b in zip(r2["model"].weights, r3["model"].weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.name)
    # The export loads back into an identical model, with the run's metadata.
    model, meta = models.load_model(r2["export_dir"], model="bl2", num_classes=4)
    assert meta["steps"] == 4 and meta["command"] == "pytest" and meta["dataset"] == "camvid"
    x = np.random.default_rng(1).uniform(0, 255, (1, 40, 52, 3)).astype(np.float32)
    np.testing.assert_array_equal(model(x).numpy(), r2["model"](x, training=False).numpy())
    # TensorBoard events were written (scalars, images, graph).
    assert any(f.startswith("events.out") for f in os.listdir(tmp_path / "b"))


MIRRORED = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tests.helpers.training import constant_data, tiny_config
    from taplab_tf.train import Trainer, recalibrate_batchnorm
    out = []
    for strategy in ('default', 'mirrored'):
        tf.keras.utils.set_random_seed(0)
        t = Trainer(tiny_config('/tmp/unused', strategy=strategy, batch_size=4))
        assert t.strategy.num_replicas_in_sync == (2 if strategy == 'mirrored' else 1)
        data = constant_data(batch=4, identical=True)
        it = iter(t.strategy.experimental_distribute_dataset(data))
        # BN recalibration from the identical initial weights (after a step, Adam's
        # ~lr * sign(g) moves on noise-level gradients make deep statistics drift apart).
        recalibrate_batchnorm(t.model, it, 2, t.strategy)
        stats = [v.numpy() for v in t.model.non_trainable_variables if 'moving_mean' in v.name]
        loss, cm = t.train_steps(it, 1)
        out.append((loss, cm, [v.numpy() for v in t.optimizer.variables[1:]], stats))
    (l1, c1, s1, b1), (l2, c2, s2, b2) = out
    assert len(b1) == len(b2) > 0
    # Recalibrated BN statistics agree too (same normalised tolerance as the moments below).
    # Means of convs that follow a BN are ~1e-5 (zero in theory): scale floored at 1e-2.
    # (Variances differ by design: Bessel's n / (n - 1) uses the per-replica pixel count.)
    assert max(np.abs(a - b).max() / max(np.abs(a).max(), 1e-2) for a, b in zip(b1, b2)) < 2e-2
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    assert (c1 == c2).all()
    # Adam's moments after one step are (1 - b1) g and (1 - b2) g^2: the aggregated gradients.
    # (Weights themselves move by ~ +-lr * sign(g) on step 1, too coarse a check.)
    assert len(s1) == len(s2) > 0
    # Tolerance: float32 reductions run in another order per replica (oneDNN picks other
    # blockings for batch 2 vs 4); a loss-scaling error would be a factor of 2 (m) or 4 (v).
    # Betas of BN layers followed by another BN (linear bottlenecks) have zero gradient in
    # theory (~1e-9 in practice): they are noise and left out.
    errs = [np.abs(a - b).max() / np.abs(a).max() for a, b in zip(s1, s2)
            if np.abs(a).max() > 1e-6]
    print('max normalised moment error', max(errs))
    assert max(errs) < 2e-2, max(errs)
    m1 = sum(np.abs(a).sum() for a in s1); m2 = sum(np.abs(b).sum() for b in s2)
    np.testing.assert_allclose(m1, m2, rtol=1e-3)
    print('MIRRORED_OK', l1, l2)
""")


def test_mirrored_two_cpus_matches_single_device():
    # Identical examples in the batch: per-replica BatchNorm statistics then equal the global
    # ones, so the only difference left would be in loss scaling / gradient aggregation.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", MIRRORED], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "MIRRORED_OK" in proc.stdout, proc.stderr[-3000:]
    print(proc.stdout)


def test_cli_bad_flag_combination_is_one_line(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--model=bl2", "--depths=1,1,1,1",
         f"--data_dir={tmp_path}", f"--logdir={tmp_path / 'run'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == \
        "error: --depths applies to bl1 and bl3 (ResNet), not bl2"


def test_moving_average_of_weights_is_exported_and_survives_resume(tmp_path):
    import json
    # The shadow follows min(decay, (1 + t) / (10 + t)) * shadow + (1 - that) * weights.
    tf.keras.utils.set_random_seed(0)
    trainer = Trainer(tiny_config(tmp_path / "s", ema_decay=0.5))
    shadow = [v.numpy().copy() for v in trainer.model.trainable_variables]
    it = iter(constant_data())
    for t in range(1, 4):
        trainer.train_steps(it, 1)
        d = min(0.5, (1.0 + t) / (10.0 + t))
        shadow = [d * s + (1 - d) * v.numpy() for s, v in zip(shadow, trainer.model.trainable_variables)]
    for s, e in zip(shadow, trainer.ema):
        np.testing.assert_allclose(e.numpy(), s, rtol=1e-5, atol=1e-6, err_msg=e.name)
    assert any(not np.allclose(e.numpy(), v.numpy())
               for e, v in zip(trainer.ema, trainer.model.trainable_variables))
    # An interrupted run resumes its average from the checkpoint: the export equals an
    # uninterrupted run's, and it holds the averaged weights, not the last ones.
    data = constant_data()
    r1 = train(tiny_config(tmp_path / "a", ema_decay=0.5, stop_after=3), data, data)
    assert r1["stopped"]
    r2 = train(tiny_config(tmp_path / "a", ema_decay=0.5), data, data)
    r3 = train(tiny_config(tmp_path / "b", ema_decay=0.5), data, data)
    assert r2["start_step"] == 2 and r3["start_step"] == 0
    for a, b in zip(r2["model"].weights, r3["model"].weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.name)
    plain = train(tiny_config(tmp_path / "c"), data, data)  # same seed, no average
    assert any(not np.allclose(a.numpy(), b.numpy(), atol=1e-6) for a, b in
               zip(plain["model"].trainable_variables, r3["model"].trainable_variables))
    metrics = json.load(open(tmp_path / "b" / "model" / "metrics.json"))
    assert metrics["ema_decay"] == 0.5
    assert set(metrics["splits"]) == set(metrics["splits_without_ema"]) == {"val"}
    assert "splits_without_ema" not in json.load(open(tmp_path / "c" / "model" / "metrics.json"))
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="ema_decay: must be in"):
            tiny_config(tmp_path, ema_decay=bad).validate()


def test_eval_input_scale_scores_phi_on_resized_frames_and_is_kept_in_model_json(tmp_path):
    """eval_input_scale: the final val figure is phi's on frames resized by it (trainer.evaluate
    at that scale), metrics.json and model.json keep it as applied (snapped to an integer
    stride on the frame), and segment's automatic scale reads it back."""
    import json

    from taplab_tf.data import labels as labels_lib
    from taplab_tf.models import load_model
    from taplab_tf.train import trainer as trainer_lib
    data = constant_data()
    r = train(tiny_config(tmp_path / "a", eval_input_scale=1.3), data, data)
    metrics = json.load(open(tmp_path / "a" / "model" / "metrics.json"))
    meta = json.load(open(tmp_path / "a" / "model" / "model.json"))
    assert metrics["eval_input_scale"] == meta["input_scale"] == 4 / 3  # stride 4 -> 3 px
    model = load_model(str(tmp_path / "a" / "model"))
    model = model[0] if isinstance(model, tuple) else model
    again = trainer_lib.evaluate(model, data, 4, max_batches=1, input_scale=4 / 3)
    assert abs(metrics["splits"]["val"]["miou"] - again) < 1e-6
    assert abs(r["val_miou"] - again) < 1e-6
    assert labels_lib.phi_frame_height(meta) == 480  # camvid's 360 at 4/3
    for bad in (0.0, -1.0, 5.0, float("nan")):
        with pytest.raises(ValueError, match="eval_input_scale: must be a number"):
            tiny_config(tmp_path, eval_input_scale=bad).validate()
