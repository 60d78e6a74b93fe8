"""Training of phi: TrainConfig, train(), Trainer, the masked cross-entropy (Eq. 5)."""
from taplab_tf.train.losses import (confusion, masked_cross_entropy,  # noqa: F401
                                    masked_cross_entropy_sum, miou_from_confusion)
from taplab_tf.train.trainer import (STRATEGIES, TrainConfig, Trainer, evaluate,  # noqa: F401
                                     make_strategy, recalibrate_batchnorm, train)
