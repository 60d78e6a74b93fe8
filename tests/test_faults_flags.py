"""Fault suite (issue 13): non-finite values are rejected at flag parsing with one line naming the
flag, instead of an OverflowError later or a trigger that never fires."""
import pytest
from absl import flags


FLAGS = flags.FLAGS


@pytest.mark.parametrize("flag", ["thr_rgc", "thr_rgfs", "alpha"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_values_are_rejected_naming_the_flag(parse, flag, value):
    with pytest.raises(flags.IllegalFlagValueError, match=f"--{flag}"):
        parse(f"--{flag}={value}")


def test_finite_values_still_pass(parse):
    cfg = parse("--thr_rgc=0", "--thr_rgfs=1e12", "--alpha=1")
    assert cfg.thr_rgfs == 1e12 and cfg.alpha == 1.0


@pytest.mark.parametrize("size", [1, 2, 3])
def test_frame_smaller_than_the_models_minimum_says_so(size):
    from taplab_tf import config as C
    cfg = C.TapLabConfig().scaled_to(size, size)
    with pytest.raises(C.ConfigError, match=f"frame: {size}x{size} is smaller than the model's "
                                            r"minimum of 4x4 pixels"):
        cfg.check_frame(size, size, min_size=4)
    C.TapLabConfig().scaled_to(8, 8).check_frame(8, 8, min_size=4)
