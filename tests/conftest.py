"""Shared test helpers: fixtures here, plain helper functions in tests/helpers/.

Test modules never import each other; what two of them share lives in tests.helpers
(frames, stream, video, training, warp_reference) and is imported from there, or is a fixture
below. pytest imports this file before any test module, with the checkout on sys.path (tests/ is
a package), so `from tests.helpers... import ...` works from every test and from the subprocesses
that put the checkout on PYTHONPATH.
"""
import pytest

from tests.helpers import video as video_helpers


@pytest.fixture
def one_clip_tree(tmp_path):
    """A Cityscapes-layout tree ('val', city 'town') holding one 24-frame panning clip with
    labels on every frame (tests.helpers.video.write_tree); returns its root as a str."""
    root = tmp_path / "tree"
    video_helpers.write_tree(str(root), n_clips=1)
    return str(root)


@pytest.fixture
def parse():
    """parse(*flags) -> the TapLabConfig the shared flags describe (experiments.flags), the
    flags reset before and after."""
    from absl import flags

    from experiments import flags as flags_lib
    flags_lib.define_taplab_flags()

    def _parse(*args):
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["prog", *args])
        return flags_lib.config_from_flags()

    yield _parse
    flags.FLAGS.unparse_flags()
