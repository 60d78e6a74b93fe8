"""Training loop for phi: the paper's recipe (Sec. 4.1) under a tf.distribute strategy.

    cfg = TrainConfig(model='bl2', dataset='synthetic', data_dir='runs/synth', logdir='runs/bl2')
    result = train(cfg)            # or train(cfg, train_data=ds, val_data=ds) with own tf.data

Recipe defaults: softmax cross-entropy over labelled pixels (Eq. 5, label 255 ignored, logits
upsampled bilinearly to the label size), Adam, lr 2e-4 with poly decay (power 0.9) to 0 at
`steps`, global batch 8, L2 weight decay 1e-6 on conv kernels.

Distribution: one custom tf.function step run with strategy.run; the loss is the sum over a
replica's labelled pixels divided by the *global* labelled-pixel count (all-reduced), so gradients
(summed across replicas by the optimizer) equal the single-device ones. BatchNorm statistics are
per replica (no sync BN), as with MirroredStrategy in general.

Several workers (strategy multi_worker, one process per machine, each with its TF_CONFIG; see
taplab_tf.train.distribute): the global batch is split across the workers (data sharding: each
reads the same seeded stream and keeps its part, so a step sees the batch one worker would);
every worker resumes from the chief's <logdir>/checkpoints and runs every step, evaluation, save
and export, because those read variables through collectives; only the chief's outputs stay,
the other workers write to a temporary folder that is deleted at the end.

Logdir layout: train_config.json, checkpoints/ (tf.train.CheckpointManager: model, optimizer and
its step counter; a restarted run resumes from the latest one; the data iterator is not saved, the
stream restarts), TensorBoard events (scalars train/loss, train/lr, train/miou, train/images_per_s,
val/miou; images input / ground_truth / prediction in the dataset palette; the train-step graph),
and model/ (save_model: weights.h5 + model.json, what the evaluator and the engine load).
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import time
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from taplab_tf import config as config_lib
from taplab_tf import provenance
from taplab_tf.data import labels as labels_lib
from taplab_tf.models import build_model, save_model
from taplab_tf.train import distribute, losses
from taplab_tf.train.run_folder import (  # noqa: F401 -- the run folder's one home
    CONFIG_FILE, METRICS_FILE, PROGRESS_FILE, _checkpoint_steps, _drop_unrestored_warnings,
    _finite_or_none, _first_line, _read_progress, _write_config, _write_json, _write_progress,
    check_resume_fits, checkpoint_problem)

STRATEGIES = ("default", "mirrored", "multi_worker")


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; written to <logdir>/train_config.json."""

    model: str = "bl2"
    model_kwargs: dict = dataclasses.field(default_factory=dict)  # e.g. width_multiplier
    dataset: str = "synthetic"            # synthetic | cityscapes | camvid
    data_dir: str = ""
    num_classes: Optional[int] = None     # default: the dataset's class count
    logdir: str = "runs/train"
    steps: int = 60000                    # total optimizer steps (poly decay reaches 0 here)
    batch_size: int = 8                   # global batch, split across replicas
    crop: Sequence[int] = (512, 512)      # training crop (height, width)
    scale_range: Sequence[float] = (0.5, 2.0)  # random scaling before the crop
    photometric: float = 0.0              # colour jitter strength in [0, 1] (make_dataset)
    use_sequence_frames: bool = False     # cityscapes/synthetic: every labelled sequence frame
    learning_rate: float = 2e-4
    poly_power: float = 0.9
    weight_decay: float = 1e-6
    ema_decay: float = 0.0                # > 0: also keep an exponential moving average of the
                                          # weights; the export and final metrics use it
    strategy: str = "default"             # default | mirrored | multi_worker
    log_every: int = 20                   # progress line + scalars every N steps
    checkpoint_every: int = 200
    eval_every: int = 0                   # val mIoU every N steps (0: only at the end)
    image_every: int = 500                # image summaries every N steps
    val_batches: int = 0                  # periodic evaluation: first N val batches (0: all)
    final_val_batches: int = 0            # final evaluation (0: the whole val split)
    bn_recalibration_batches: int = 50    # re-estimate BN statistics before eval/export (0: off)
    export_dir: str = ""                  # default <logdir>/model
    seed: int = 0
    command: str = ""                     # recorded in the exported model.json
    init_from: str = ""                   # warm start: weights of a saved model (fine-tuning)
    init_skip_mismatch: bool = False      # init_from of another class count: all but the
                                          # classifier (pretraining on another dataset)
    stop_after: Optional[int] = None      # stop after this many steps of *this* run (tests)
    class_weighting: str = "none"         # none | median_frequency | sqrt_median_frequency
    test_split: str = ""                  # also evaluate this split at the end (e.g. "test")
    train_split: str = "train"            # the split trained on; "train+val": both (a final model)
    eval_input_scale: float = 1.0         # phi sees the dataset's frames resized by this in
                                          # every evaluation; model.json keeps it as the
                                          # model's input_scale (segment's automatic scale)
    restart: bool = False                 # train from step 0 even where checkpoints exist

    def validate(self) -> "TrainConfig":
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy: {self.strategy!r} is not one of {list(STRATEGIES)}")
        if self.steps < 1:
            raise ValueError(f"steps: must be >= 1, got {self.steps}")
        for name in ("log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "image_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("learning_rate", "poly_power", "weight_decay"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name}: must be a finite number, got {getattr(self, name)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {self.batch_size}")
        if len(self.crop) != 2 or min(self.crop) < 1:
            raise ValueError(f"crop: must be two positive integers (height, width), got "
                             f"{list(self.crop)}")
        if len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"scale_range: must be (min, max) with 0 < min <= max, got "
                             f"{list(self.scale_range)}")
        if not 0.0 <= self.photometric <= 1.0:
            raise ValueError(f"photometric: must be in [0, 1], got {self.photometric}")
        if self.use_sequence_frames and self.dataset == "camvid":
            raise ValueError("use_sequence_frames: applies to cityscapes/synthetic, not camvid")
        if not config_lib.valid_input_scale(self.eval_input_scale):
            raise ValueError(f"eval_input_scale: must be a number in (0, 4], got "
                             f"{self.eval_input_scale}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.ema_decay < 1.0:  # also rejects NaN
            raise ValueError(f"ema_decay: must be in [0, 1), got {self.ema_decay}")
        from taplab_tf.data.datasets import CLASS_WEIGHTINGS
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ValueError(f"class_weighting: unknown {self.class_weighting!r}; choose from "
                             f"{list(CLASS_WEIGHTINGS)}")
        if self.dataset not in labels_lib.DATASETS:
            raise ValueError(f"dataset: unknown {self.dataset!r}; choose from "
                             f"{sorted(labels_lib.DATASETS)}")
        return self

    @property
    def classes(self) -> int:
        return int(self.num_classes or labels_lib.num_classes(self.dataset))


def make_strategy(name: str) -> tf.distribute.Strategy:
    """default: the current (single-device) strategy; mirrored: all local devices;
    multi_worker: MultiWorkerMirroredStrategy (cluster from TF_CONFIG)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":  # checks TF_CONFIG first: one line naming what is wrong
        return distribute.make_multi_worker_strategy()
    raise ValueError(f"strategy: {name!r} is not one of {list(STRATEGIES)}")


def make_datasets(cfg: TrainConfig):
    """(train, val) tf.data from taplab_tf.data.datasets.make_dataset."""
    try:
        from taplab_tf.data.datasets import make_dataset
    except ImportError as e:
        raise ValueError(f"data: taplab_tf.data.datasets.make_dataset is unavailable ({e})") \
            from None
    if not cfg.data_dir or not os.path.isdir(cfg.data_dir):
        raise ValueError(f"data_dir: {cfg.data_dir!r} is not a directory")
    seq = dict(use_sequence_frames=True) if cfg.use_sequence_frames else {}
    # Labels of another size than their image, RGB labels and truncated PNGs: one line naming
    # the file now, not a TF traceback at the step that reads it (headers only: milliseconds).
    from taplab_tf.data.checks import check_pairs
    from taplab_tf.data.datasets import file_pairs
    for split in (cfg.train_split, "val"):
        check_pairs(file_pairs(cfg.dataset, cfg.data_dir, split, **seq),
                    f"{cfg.dataset} {split}")
    # Several workers each read the whole stream and keep their part of every global batch:
    # their order and augmentation must agree, so the stream is seeded (seed 0 included).
    shuffle_seed = cfg.seed if cfg.strategy == "multi_worker" else (cfg.seed or None)
    train = make_dataset(cfg.dataset, cfg.data_dir, cfg.train_split, training=True,
                         batch_size=cfg.batch_size, crop_size=tuple(cfg.crop),
                         scale_range=tuple(cfg.scale_range), shuffle_seed=shuffle_seed,
                         photometric=cfg.photometric, **seq)
    val = make_dataset(cfg.dataset, cfg.data_dir, "val", training=False, batch_size=1, **seq)
    return train, val


def _kernels(model):
    return [v for v in model.trainable_variables if "kernel" in v.name]


def _format_eta(seconds):
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def evaluate_confusion(model, dataset, num_classes, max_batches=0,
                       input_scale: float = 1.0) -> np.ndarray:
    """int64 [C, C] confusion of model on (image, label) batches, labels by the project's one
    rule (ops.logits_to_labels at the model's output stride), as evaluate_image computes them.
    input_scale: phi sees each image resized by it first (evaluate_images.resize_for_phi, as
    evaluate_image --input_scale and the engine do), its logits labelled at that stride."""
    from taplab_tf.pipeline.evaluate_images import resize_for_phi
    stride = getattr(model, "output_stride", None)
    frame_stride = stride
    if stride and input_scale != 1.0:
        frame_stride = config_lib.frame_stride(stride, input_scale)
    elif input_scale != 1.0:
        raise ValueError("evaluate_confusion: input_scale needs a model with an output_stride")

    @tf.function(reduce_retracing=True)
    def step(images, labels):
        if frame_stride != stride:
            images = resize_for_phi(images, stride, frame_stride)
        return losses.confusion(labels, model(images, training=False), num_classes,
                                output_stride=frame_stride)

    cm = np.zeros((num_classes, num_classes), np.int64)
    for i, (images, labels) in enumerate(dataset):
        if max_batches and i >= max_batches:
            break
        cm += step(images, labels).numpy()
    return cm


def _effective_scale(model, input_scale: float) -> float:
    """input_scale as evaluation applies it: output_stride / frame_stride (config.frame_stride
    snaps the stride on the image to an integer)."""
    stride = getattr(model, "output_stride", None)
    if not stride or input_scale == 1.0:
        return float(input_scale)
    return config_lib.applied_input_scale(stride, input_scale)


def evaluate(model, dataset, num_classes, max_batches=0, input_scale: float = 1.0) -> float:
    """mIoU of model on (image, label) batches (evaluate_confusion)."""
    return losses.miou_from_confusion(evaluate_confusion(model, dataset, num_classes,
                                                         max_batches, input_scale))


def split_metrics(cm, class_names) -> dict:
    """{'miou', 'pixel_accuracy', 'per_class_iou': {name: IoU or None}} of a confusion."""
    from taplab_tf.metrics import ConfusionMatrix
    m = ConfusionMatrix(len(cm))
    m.update_from_matrix(np.asarray(cm, np.int64))
    iou = m.iou()
    return {"miou": float(m.miou()), "pixel_accuracy": float(m.pixel_accuracy()),
            "per_class_iou": {str(n): (None if not math.isfinite(v) else round(float(v), 4))
                              for n, v in zip(class_names, iou)}}


def recalibrate_batchnorm(model, iterator, num_batches: int, strategy=None) -> None:
    """Re-estimates every BatchNorm's moving mean/variance as the plain average of the batch
    statistics over `num_batches` training-mode forward passes (no weight update).

    Short from-scratch runs at a high learning rate leave the exponential moving averages
    lagging behind the weights: measured on BL2/synthetic at step 550, inference-mode val mIoU
    0.13 before and 0.50 after recalibrating on 30 batches. Training itself uses batch
    statistics, so this changes only what inference sees.
    iterator: yields (images, labels) batches (a distributed iterator under `strategy`).
    """
    strategy = strategy or tf.distribute.get_strategy()
    bns = [l for l in model.submodules if isinstance(l, tf.keras.layers.BatchNormalization)]
    saved = [l.momentum for l in bns]
    try:
        for i in range(int(num_batches)):
            images, _ = next(iterator)
            for layer in bns:
                layer.momentum = i / (i + 1.0)  # 0 first (replace), then the running mean
            strategy.run(lambda x: model(x, training=True), args=(images,))
    finally:
        for layer, m in zip(bns, saved):
            layer.momentum = m


class Trainer:
    """Builds model, optimizer, checkpoints and the distributed step for one TrainConfig."""

    def __init__(self, cfg: TrainConfig, strategy: Optional[tf.distribute.Strategy] = None,
                 resume_dir: str = ""):
        """resume_dir: the checkpoints restore() reads (default <cfg.logdir>/checkpoints, where
        they are saved); a non-chief worker saves to its temporary logdir and resumes from the
        chief's."""
        self.cfg = cfg.validate()
        self.resume_dir = resume_dir or os.path.join(cfg.logdir, "checkpoints")
        self.strategy = strategy or make_strategy(cfg.strategy)
        replicas = self.strategy.num_replicas_in_sync
        if cfg.batch_size % replicas:
            raise ValueError(f"batch_size: {cfg.batch_size} is not divisible by the "
                             f"{replicas} replicas of the {cfg.strategy} strategy")
        self.num_classes = cfg.classes
        with self.strategy.scope():
            self.model = build_model(cfg.model, self.num_classes, **cfg.model_kwargs)
            self.schedule = tf.keras.optimizers.schedules.PolynomialDecay(
                cfg.learning_rate, decay_steps=cfg.steps, end_learning_rate=0.0,
                power=cfg.poly_power)
            self.optimizer = tf.keras.optimizers.Adam(self.schedule)
            self.optimizer.build(self.model.trainable_variables)
            # Polyak averaging of the weights (cfg.ema_decay > 0): one shadow per trainable
            # variable, saved in the checkpoints so that a resumed run keeps its average.
            self.ema = [tf.Variable(v, trainable=False, name="ema/" + v.name.split(":")[0])
                        for v in self.model.trainable_variables] if cfg.ema_decay else []
        parts = dict(model=self.model, optimizer=self.optimizer)
        if self.ema:  # only then: runs without it keep their checkpoint layout
            parts["ema"] = self.ema
        self.checkpoint = tf.train.Checkpoint(**parts)
        self._make_manager()
        self._train_step = None
        self.class_weights = None
        if cfg.class_weighting != "none":
            from taplab_tf.data.datasets import class_frequencies, class_weights
            freq = class_frequencies(cfg.dataset, cfg.data_dir, cfg.train_split)[:self.num_classes]
            self.class_weights = class_weights(freq, cfg.class_weighting).astype(np.float32)
            logging.info("class weights (%s): %s", cfg.class_weighting,
                         np.array2string(self.class_weights, precision=2))

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def restore(self) -> int:
        """Restores the newest intact checkpoint in <logdir>/checkpoints, if any; returns the
        step.

        Every ckpt-N on disk is a candidate, newest first, whatever the `checkpoint` state file
        says (it may be damaged); a damaged one (missing or truncated .index or .data) is named
        in one warning line and the next older one is tried. Checkpoints that are all damaged
        raise ValueError unless cfg.restart: training never starts over on top of them
        silently. After a fallback the state file lists the intact checkpoints again.
        """
        ckpt_dir = self.resume_dir
        own = os.path.abspath(ckpt_dir) == os.path.abspath(self.manager.directory)
        found = _checkpoint_steps(ckpt_dir)
        if self.cfg.restart:
            if found:
                logging.warning("restart: training from step 0 over the checkpoints in %s",
                                ckpt_dir)
        else:
            state_path = os.path.join(ckpt_dir, "checkpoint")
            state_ok = not own or not os.path.exists(state_path) or \
                tf.train.get_checkpoint_state(ckpt_dir) is not None
            if not state_ok and found:
                logging.warning("%s is damaged (not a checkpoint state); looking for the newest "
                                "intact checkpoint", state_path)
            damaged = []
            for step in sorted(found, reverse=True):
                prefix = found[step]
                problem = checkpoint_problem(prefix)
                if problem:
                    logging.warning("%s; trying an earlier checkpoint", problem)
                    damaged.append(problem)
                    continue
                self._restore_from(prefix)
                if own and (damaged or not state_ok or self.manager.latest_checkpoint != prefix):
                    intact = [found[s] for s in sorted(found) if s <= step
                              and (s == step or checkpoint_problem(found[s]) is None)]
                    tf.compat.v1.train.update_checkpoint_state(
                        ckpt_dir, prefix, all_model_checkpoint_paths=intact[-3:])
                    self._make_manager()
                logging.info("resumed from %s at step %d", prefix, self.step)
                return self.step
            if damaged:
                raise ValueError(f"no intact checkpoint in {ckpt_dir} ({damaged[0]}); pass "
                                 f"--restart to train from step 0 over them")
        if self.cfg.init_from:
            self.warm_start(self.cfg.init_from)
        return self.step

    def _make_manager(self):
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(self.cfg.logdir, "checkpoints"), max_to_keep=3,
            step_counter=self.optimizer.iterations)

    def _restore_from(self, prefix: str) -> None:
        status = None
        try:
            status = self.checkpoint.restore(prefix)
            status.assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            if status is not None:
                status.expect_partial()
            # A restore that raised returns no status to call expect_partial on, and TF would
            # print a page of 'unrestored value' warnings when the objects are deleted: this run
            # is refused with one line instead.
            tf.get_logger().addFilter(_drop_unrestored_warnings)
            raise ValueError(f"{prefix} does not fit this run's {self.cfg.model} network "
                             f"({_first_line(e)}); use another --logdir, or --restart") from None

    def warm_start(self, directory: str) -> None:
        """Loads the weights of a model saved by save_model (same network, same class count)
        into a fresh run: the optimizer and the learning-rate schedule start from step 0.
        A run that has its own checkpoints resumes from them instead (see restore)."""
        from taplab_tf.api import resolve_model_path
        from taplab_tf.models import load_model, read_metadata
        directory = resolve_model_path(directory)
        meta = read_metadata(directory)
        mine = {"model": self.cfg.model, "num_classes": self.num_classes,
                "kwargs": dict(self.cfg.model_kwargs)}
        theirs = {"model": meta["model"], "num_classes": int(meta["num_classes"]),
                  "kwargs": dict(meta.get("kwargs", {}))}
        other_classes = {**theirs, "num_classes": self.num_classes} == mine
        if mine != theirs and not (other_classes and self.cfg.init_skip_mismatch):
            hint = (" (another class count: --init_skip_mismatch keeps all but the classifier)"
                    if other_classes else "")
            raise ValueError(f"init_from: {directory} holds {theirs}, which does not fit this "
                             f"run's {mine}{hint}")
        # load_model resolves and verifies the weights file (present, sha256) with one-line errors.
        saved, _ = load_model(directory, model=self.cfg.model)
        if mine == theirs:
            self.model.set_weights(saved.get_weights())
            self._reset_average()
            logging.info("warm start from %s (%s)", directory, meta.get("command", ""))
            return
        # The same network for another class count: its variables come in the same order; the
        # ones whose shape depends on the classes (the classifier) keep their initialisation.
        skipped = []
        for mine_v, theirs_v in zip(self.model.weights, saved.weights):
            if mine_v.shape == theirs_v.shape:
                mine_v.assign(theirs_v)
            else:
                skipped.append(mine_v.name)
        self._reset_average()
        logging.info("warm start from %s (%s): %d of %d variables loaded; %s keep their "
                     "initialisation (%d -> %d classes)", directory, meta.get("command", ""),
                     len(self.model.weights) - len(skipped), len(self.model.weights),
                     ", ".join(skipped), theirs["num_classes"], self.num_classes)

    def _build_step(self):
        model, optimizer, strategy = self.model, self.optimizer, self.strategy
        num_classes, wd = self.num_classes, float(self.cfg.weight_decay)
        kernels = _kernels(model)
        replicas = float(strategy.num_replicas_in_sync)
        class_weights = self.class_weights
        stride = getattr(model, "output_stride", None)

        def step_fn(images, labels):
            with tf.GradientTape() as tape:
                logits = model(images, training=True)
                total, count = losses.masked_cross_entropy_sum(labels, logits,
                                                               class_weights=class_weights)
                global_count = tf.distribute.get_replica_context().all_reduce("sum", count)
                loss = tf.math.divide_no_nan(total, global_count)
                objective = loss
                if wd > 0 and kernels:
                    objective += wd * tf.add_n([tf.nn.l2_loss(k) for k in kernels]) / replicas
            grads = tape.gradient(objective, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss, losses.confusion(labels, logits, num_classes,
                                          output_stride=stride)

        ema, ema_decay = self.ema, float(self.cfg.ema_decay)
        iterations = optimizer.iterations

        @tf.function
        def train_step(iterator):
            images, labels = next(iterator)
            loss, cm = strategy.run(step_fn, args=(images, labels))
            if ema:
                # The average of the first steps would be dominated by the random start: the
                # decay ramps up as min(ema_decay, (1 + t) / (10 + t)) (tf.train's rule).
                t = tf.cast(iterations, tf.float32)
                d = tf.minimum(ema_decay, (1.0 + t) / (10.0 + t))
                for shadow, v in zip(ema, model.trainable_variables):
                    shadow.assign(d * shadow + (1.0 - d) * v)
            return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                    strategy.reduce(tf.distribute.ReduceOp.SUM, cm, axis=None))

        return train_step

    def _reset_average(self) -> None:
        for shadow, v in zip(self.ema, self.model.trainable_variables):
            shadow.assign(v)

    def swap_in_average(self) -> None:
        """Copies the moving average of the weights (cfg.ema_decay) into the model; BatchNorm
        statistics then no longer fit the weights and are re-estimated by the caller."""
        for v, shadow in zip(self.model.trainable_variables, self.ema):
            v.assign(shadow)

    def train_steps(self, iterator, n: int):
        """Runs n steps on a distributed iterator; returns (last loss, summed confusion)."""
        if self._train_step is None:
            self._train_step = self._build_step()
        cm = np.zeros((self.num_classes, self.num_classes), np.int64)
        loss = None
        for _ in range(n):
            try:
                loss, c = self._train_step(iterator)
            except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
                # a damaged file in the input pipeline: make_dataset's asserts name it
                raise ValueError(f"train: input data of step {self.step + 1}: "
                                 f"{_first_line(e.message)}") from None
            cm += c.numpy()
        return float(loss), cm

    def _image_summaries(self, images, labels, step):
        logits = self.model(images, training=False)
        preds = tf.argmax(losses.upsample_logits(logits, tf.shape(labels)[1:3]), -1)
        ds = self.cfg.dataset
        tf.summary.image("input", tf.cast(tf.clip_by_value(images, 0, 255), tf.uint8),
                         step=step, max_outputs=2)
        tf.summary.image("ground_truth", labels_lib.colorize(labels.numpy(), ds), step=step,
                         max_outputs=2)
        tf.summary.image("prediction", labels_lib.colorize(preds.numpy(), ds), step=step,
                         max_outputs=2)


def _final_evaluation(trainer: Trainer, cfg: TrainConfig, iterator, val_data, step: int,
                      which: str = "") -> dict:
    """Re-estimates BatchNorm statistics for the model's current weights, then returns the
    confusion of the val split (when given) and of cfg.test_split (when set), by split."""
    recalibrate_batchnorm(trainer.model, iterator, cfg.bn_recalibration_batches,
                          trainer.strategy)
    cms = {}
    if val_data is not None:
        cms["val"] = evaluate_confusion(trainer.model, val_data, trainer.num_classes,
                                        cfg.final_val_batches, cfg.eval_input_scale)
        logging.info("final val mIoU %.4f at step %d (%sweights)",
                     losses.miou_from_confusion(cms["val"]), step, which)
    if cfg.test_split:
        from taplab_tf.data.datasets import make_dataset
        test_data = make_dataset(cfg.dataset, cfg.data_dir, cfg.test_split, training=False,
                                 batch_size=1)
        cms[cfg.test_split] = evaluate_confusion(trainer.model, test_data, trainer.num_classes,
                                                 input_scale=cfg.eval_input_scale)
        logging.info("final %s mIoU %.4f at step %d (%sweights)", cfg.test_split,
                     losses.miou_from_confusion(cms[cfg.test_split]), step, which)
    return cms


def train(cfg: TrainConfig, train_data: Optional[tf.data.Dataset] = None,
          val_data: Optional[tf.data.Dataset] = None,
          strategy: Optional[tf.distribute.Strategy] = None) -> dict:
    """Trains (resuming from <logdir>/checkpoints if present), exports with save_model.

    train_data / val_data: (image float32 [N,H,W,3] in [0,255], label [N,H,W] trainIds) batches,
    train_data batched at the global batch size; by default make_dataset(cfg.dataset, ...).
    Before each evaluation and the export, BatchNorm statistics are re-estimated on
    cfg.bn_recalibration_batches training batches (recalibrate_batchnorm).
    Returns {'step', 'start_step', 'loss', 'train_miou', 'val_miou', 'export_dir', 'stopped'}.
    A logdir with checkpoints resumes only the same network (check_resume_fits) from its newest
    intact checkpoint (Trainer.restore); a run already trained to cfg.steps and exported returns
    at once and writes nothing ('finished_before': True).
    strategy: default make_strategy(cfg.strategy), made before any data (multi_worker must start
    before TensorFlow runs an op). With several workers every one of them calls train() with the
    same cfg; the chief's run is the one above, the others resume from the chief's checkpoints,
    write to a temporary folder they delete, and return export_dir ''.
    """
    cfg.validate()
    check_resume_fits(cfg)  # before anything is read, built or written
    strategy = strategy or make_strategy(cfg.strategy)
    info = distribute.worker_info(strategy)
    if train_data is None:
        train_data, default_val = make_datasets(cfg)
        val_data = default_val if val_data is None else val_data
    if info.num_workers > 1:
        # Each worker reads the (seeded) stream and keeps its replicas' part of every global
        # batch, whatever the source: the steps see the batches one worker would.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.DATA
        train_data = train_data.with_options(options)
    if info.is_chief:
        return _train(cfg, cfg, train_data, val_data, strategy, info)
    scratch = tempfile.mkdtemp(prefix=f"taplab_{info.task_type}{info.task_index}_")
    try:
        own = dataclasses.replace(cfg, logdir=scratch, export_dir=os.path.join(scratch, "model"))
        result = _train(cfg, own, train_data, val_data, strategy, info)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dict(result, export_dir="")


def _train(cfg: TrainConfig, out: TrainConfig, train_data, val_data, strategy,
           info: distribute.WorkerInfo) -> dict:
    """train() on this worker: reads cfg's checkpoints and export, writes to out's logdir and
    export_dir (cfg itself on the chief, a temporary folder on the other workers)."""
    tf.keras.utils.set_random_seed(cfg.seed)
    trainer = Trainer(out, strategy, resume_dir=os.path.join(cfg.logdir, "checkpoints"))
    start = trainer.restore()
    if info.num_workers > 1:
        distribute.check_workers_agree(strategy, start, trainer.model.trainable_variables)
    export_dir = cfg.export_dir or os.path.join(cfg.logdir, "model")
    if start >= cfg.steps and os.path.isfile(os.path.join(export_dir, METRICS_FILE)):
        # A finished run run again changes nothing (no new BatchNorm statistics, no export).
        logging.info("%s already trained to step %d (--steps=%d) and exported to %s: nothing "
                     "to do", cfg.logdir, start, cfg.steps, export_dir)
        from taplab_tf.models import read_metadata
        meta = read_metadata(export_dir)
        return {"step": start, "start_step": start, "loss": float("nan"),
                "train_miou": meta.get("train_miou"), "val_miou": meta.get("val_miou"),
                "export_dir": export_dir, "stopped": False, "model": trainer.model,
                "finished_before": True}
    export_dir = out.export_dir or os.path.join(out.logdir, "model")  # where this worker writes
    if info.is_chief:
        _write_config(cfg)
    preview = next(iter(val_data if val_data is not None else train_data))
    preview = (preview[0][:2], preview[1][:2])
    iterator = iter(trainer.strategy.experimental_distribute_dataset(train_data.repeat()))
    writer = tf.summary.create_file_writer(out.logdir)

    step, loss, train_miou, val_miou = start, float("nan"), float("nan"), None
    seconds_before = _read_progress(cfg.logdir, start)
    code = provenance.git_commit()  # the code this run started with
    end = cfg.steps if cfg.stop_after is None else min(cfg.steps, start + cfg.stop_after)
    cm_acc = np.zeros((trainer.num_classes,) * 2, np.int64)
    t_last, step_last, t0 = time.time(), step, time.time()
    stopped = False
    try:
        with writer.as_default():
            while step < end:
                # Run up to the next step at which any periodic action is due: each fires at
                # its own multiples, not only at multiples of log_every.
                n = end - step
                for every in (cfg.log_every, cfg.checkpoint_every, cfg.eval_every,
                              cfg.image_every):
                    if every:
                        n = min(n, every - step % every)
                if step == 0:  # trace the graph of the first step once
                    tf.summary.trace_on(graph=True, profiler=False)
                    loss, cm = trainer.train_steps(iterator, 1)
                    tf.summary.trace_export("train_step", step=0)
                    n -= 1
                    cm_acc += cm
                if n > 0:
                    loss, cm = trainer.train_steps(iterator, n)
                    cm_acc += cm
                step = trainer.step
                if not math.isfinite(loss):
                    raise FloatingPointError(f"train: loss is {loss} at step {step}")
                if step % cfg.log_every == 0 or step == end:
                    now = time.time()
                    ips = (step - step_last) * cfg.batch_size / max(now - t_last, 1e-9)
                    train_miou = losses.miou_from_confusion(cm_acc)
                    lr = float(trainer.schedule(step))
                    tf.summary.scalar("train/loss", loss, step=step)
                    tf.summary.scalar("train/lr", lr, step=step)
                    tf.summary.scalar("train/miou", train_miou, step=step)
                    tf.summary.scalar("train/images_per_s", ips, step=step)
                    eta = (cfg.steps - step) * cfg.batch_size / max(ips, 1e-9)
                    logging.info("step %d/%d loss %.4f lr %.2e train mIoU %.3f %.1f img/s "
                                 "ETA %s", step, cfg.steps, loss, lr, train_miou, ips,
                                 _format_eta(eta))
                    cm_acc[:] = 0
                    t_last, step_last = now, step
                if cfg.image_every and (step % cfg.image_every == 0 or step == cfg.steps):
                    trainer._image_summaries(*preview, step=step)
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    trainer.manager.save(checkpoint_number=step)
                    _write_progress(out.logdir, step, seconds_before + time.time() - t0)
                if (val_data is not None and cfg.eval_every and step % cfg.eval_every == 0
                        and step < cfg.steps):
                    recalibrate_batchnorm(trainer.model, iterator, cfg.bn_recalibration_batches,
                                          trainer.strategy)
                    val_miou = evaluate(trainer.model, val_data, trainer.num_classes,
                                        cfg.val_batches, cfg.eval_input_scale)
                    tf.summary.scalar("val/miou", val_miou, step=step)
                    logging.info("step %d val mIoU %.4f", step, val_miou)
            stopped = step < cfg.steps
            split_cms, raw_cms = {}, {}
            if not stopped:
                if trainer.ema:
                    # The weights as trained, for comparison (metrics.json), then their average,
                    # which is what is exported.
                    raw_cms = _final_evaluation(trainer, cfg, iterator, val_data, step, "raw ")
                    trainer.swap_in_average()
                split_cms = _final_evaluation(trainer, cfg, iterator, val_data, step,
                                              "averaged " if trainer.ema else "")
                if "val" in split_cms:
                    val_miou = losses.miou_from_confusion(split_cms["val"])
                    tf.summary.scalar("val/miou", val_miou, step=step)
                if cfg.test_split:
                    tf.summary.scalar(f"{cfg.test_split}/miou",
                                      losses.miou_from_confusion(split_cms[cfg.test_split]),
                                      step=step)
    except KeyboardInterrupt:
        if info.num_workers > 1:  # a save now would wait for the other workers' collectives
            logging.info("interrupted at step %d: a multi_worker run resumes from its last "
                         "periodic checkpoint", trainer.step)
            raise
        prefix = _checkpoint_steps(trainer.manager.directory).get(trainer.step)
        if prefix is None or checkpoint_problem(prefix):  # never rewrite a good checkpoint
            trainer.manager.save(checkpoint_number=trainer.step)
            _write_progress(out.logdir, trainer.step, seconds_before + time.time() - t0)
        logging.info("interrupted: checkpoint saved at step %d", trainer.step)
        raise
    finally:
        writer.flush()

    if stopped:
        export_dir = ""
    else:
        input_scale = _effective_scale(trainer.model, cfg.eval_input_scale)  # as evaluated
        save_model(trainer.model, export_dir, dataset=cfg.dataset, command=cfg.command,
                   steps=step, val_miou=_finite_or_none(val_miou),
                   train_miou=_finite_or_none(train_miou),
                   batch_size=cfg.batch_size, crop=list(cfg.crop),
                   learning_rate=cfg.learning_rate, train_seconds=round(time.time() - t0, 1),
                   input_scale=input_scale,
                   class_names=list(labels_lib.class_names(cfg.dataset))[:trainer.num_classes])
        names = list(labels_lib.class_names(cfg.dataset))[:trainer.num_classes]
        metrics = {
            "model": cfg.model, "model_kwargs": dict(cfg.model_kwargs), "dataset": cfg.dataset,
            "steps": step, "batch_size": cfg.batch_size, "crop": list(cfg.crop),
            "scale_range": list(cfg.scale_range), "photometric": cfg.photometric,
            "learning_rate": cfg.learning_rate, "weight_decay": cfg.weight_decay,
            "class_weighting": cfg.class_weighting, "train_split": cfg.train_split,
            "init_from": cfg.init_from, "init_skip_mismatch": cfg.init_skip_mismatch,
            "train_seconds": round(seconds_before + time.time() - t0, 1),
            "resumed_from_step": start, "command": cfg.command,
            "machine": provenance.machine_info(), "git": code,
            "ema_decay": cfg.ema_decay, "eval_input_scale": input_scale,
            "splits": {k: split_metrics(v, names) for k, v in split_cms.items()},
        }
        if raw_cms:  # "splits" are the exported (averaged) weights'
            metrics["splits_without_ema"] = {k: split_metrics(v, names)
                                             for k, v in raw_cms.items()}
        _write_json(os.path.join(export_dir, METRICS_FILE), metrics)
        logging.info("saved %s (%d steps, val mIoU %s)", export_dir, step, val_miou)
    return {"step": step, "start_step": start, "loss": loss, "train_miou": train_miou,
            "val_miou": val_miou, "export_dir": export_dir, "stopped": stopped,
            "model": trainer.model, "finished_before": False}
