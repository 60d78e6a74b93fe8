"""A fake compressed stream (FakeFrame, clip) and a tiny phi for the engine's unit tests."""
import dataclasses
from typing import Optional

import numpy as np
import tensorflow as tf

H, W, STRIDE, NC = 64, 128, 4, 5


@dataclasses.dataclass
class FakeFrame:
    """Stands in for third_party.compressed_video's CompressedFrame (same attributes)."""
    index: int
    pict_type: str
    gop_position: int
    image: np.ndarray
    motion_vectors: Optional[np.ndarray] = None
    residual_sum: float = 0.0
    counts: Optional[np.ndarray] = None

    def residual_block_counts(self, thr):
        h, w = self.image.shape[:2]  # any frame size (not only H x W)
        return self.counts if self.counts is not None else np.zeros((h // 16, w // 16), np.int32)


def tiny_model(seed=0):
    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((None, None, 3))
    x = tf.keras.layers.Rescaling(1 / 255.0)(inp)
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = tf.keras.layers.AveragePooling2D(STRIDE)(x)
    x = tf.keras.layers.Conv2D(NC, 1)(x)
    model = tf.keras.Model(inp, x)
    model.output_stride = STRIDE
    return model


def clip(n=13, gop=12, mv=None, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        pos = i % gop
        frames.append(FakeFrame(
            index=i, pict_type="I" if pos == 0 else "P", gop_position=pos,
            image=rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
            motion_vectors=None if pos == 0 else (
                np.zeros((H // 16, W // 16, 2), np.float32) if mv is None else mv)))
    return frames


def interrupt_output_after(monkeypatch, engine, n):
    """Makes the engine's output step raise KeyboardInterrupt from its (n + 1)-th frame on: the
    step of phi's frames (_output) and of FFW's frames held as an index map (_output_indexed)
    alike, as a Ctrl-C in the middle of a run would land."""
    calls = {"n": 0}

    def failing(real):
        def step(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] > n:
                raise KeyboardInterrupt
            return real(*args, **kwargs)
        return step

    monkeypatch.setattr(engine, "_output", failing(engine._output))
    monkeypatch.setattr(engine, "_output_indexed", failing(engine._output_indexed))
