"""The reader benchmark's clip (taplab_tf.data.synthetic.moving_texture): shape, determinism,
and a background that moves by its stated velocity in every frame, as the codec sees it."""
import numpy as np
import pytest

from taplab_tf.data.synthetic.moving_texture import BACKGROUND_VELOCITY, moving_texture_frames
from third_party.compressed_video import encode_video, open_compressed


def test_frames_are_a_deterministic_function_of_the_arguments():
    a = list(moving_texture_frames(64, 96, 3, seed=1))
    assert len(a) == 3 and all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for f in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, moving_texture_frames(64, 96, 3, seed=1)))
    assert not np.array_equal(a[0], next(moving_texture_frames(64, 96, 3, seed=2)))
    assert not np.array_equal(a[0], a[1])


def test_the_background_moves_by_its_velocity_in_every_frame(tmp_path):
    """Every P-frame's most common vector is the background's (2.5, 0.5) px (half-pel), not an
    alternation of whole and half pixels around it."""
    path = str(tmp_path / "m.avi")
    encode_video(moving_texture_frames(128, 256, 7), path, gop=7, qscale=3)
    seen = []
    with open_compressed(path, residual=None) as video:
        for f in video:
            if f.pict_type == "P":
                mv = f.motion_vectors[~f.intra_blocks]
                values, counts = np.unique(mv, axis=0, return_counts=True)
                seen.append(tuple(float(v) for v in values[counts.argmax()]))
    assert seen == [BACKGROUND_VELOCITY] * 6


@pytest.mark.parametrize("kwargs, name", [(dict(height=4), "height"), (dict(width=3), "width"),
                                          (dict(num_frames=0), "num_frames"),
                                          (dict(height=64.0), "height")])
def test_bad_sizes_name_the_argument(kwargs, name):
    args = dict(height=64, width=96, num_frames=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        moving_texture_frames(**args)
