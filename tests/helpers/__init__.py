"""Helpers shared by several test modules (imported by tests/conftest.py and by the tests:
`from tests.helpers.video import tiny_model`). Test modules never import each other.

  frames    textures and pans for the reader and encoder tests
  stream    a fake compressed stream and a tiny phi for the engine's unit tests
  video     a panning video, a tiny phi for it, a Cityscapes-layout tree of such clips
  training  tiny TrainConfig and a constant data stream
"""
