"""The decisions of TapLab's modules, on plain numpy summaries of the residual.

RGC (Sec. 3.3, Eq. 3): among the overlapping regions of `region_shape` on a grid of
`region_stride`, pick the one holding the most pixels with |Res| > thr_rgc.
RGFS (Sec. 3.4, Eq. 4): send a P-frame to phi where sum |Res| > thr_rgfs.

The reader gives per-16x16-block counts of pixels above thr_rgc (residual_block_counts), so a
region's score is a sum of block counts. Regions whose edges do not fall on the 16-pixel grid (the
last row/column of the grid is flush with the frame edge) count the straddled blocks in proportion
to the overlap; on the grid, the score is exact.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from taplab_tf import config as config_lib

Region = Tuple[int, int, int, int]  # (y, x, height, width) in frame pixels


def _overlap_weights(start: int, size: int, num_blocks: int, block: int) -> np.ndarray:
    """Fraction of each block [b*block, (b+1)*block) that lies inside [start, start+size)."""
    edges = np.arange(num_blocks + 1, dtype=np.float64) * block
    lo = np.clip(edges[:-1], start, start + size)
    hi = np.clip(edges[1:], start, start + size)
    return (hi - lo) / block


class RegionScorer:
    """Scores every RGC region of a frame from block counts; built once per frame size."""

    def __init__(self, height: int, width: int, region_shape: Sequence[int], region_stride: int,
                 block_size: int = 16, align: int = 1):
        self.height, self.width = height, width
        self.region_shape = tuple(int(v) for v in region_shape)
        self.block_size = block_size
        self.grid_shape = (-(-height // block_size), -(-width // block_size))
        self.regions: List[Region] = [
            (y, x) + self.region_shape
            for y, x in config_lib.region_grid(height, width, self.region_shape, region_stride,
                                               align)]
        rh, rw = self.region_shape
        gh, gw = self.grid_shape
        # Row and column overlap weights of each region: score = wy @ counts @ wx.T
        self._wy = np.stack([_overlap_weights(y, rh, gh, block_size) for y, _, _, _ in self.regions])
        self._wx = np.stack([_overlap_weights(x, rw, gw, block_size) for _, x, _, _ in self.regions])

    def scores(self, block_counts: np.ndarray) -> np.ndarray:
        """Eq. 3: the number of pixels with |Res| > thr_rgc in each region."""
        counts = np.asarray(block_counts, dtype=np.float64)
        if counts.shape != self.grid_shape:
            raise ValueError(f"block_counts: expected a {self.grid_shape} block grid for a "
                             f"{self.height}x{self.width} frame, got {counts.shape}")
        return np.einsum("rh,hw,rw->r", self._wy, counts, self._wx)

    def select(self, block_counts: np.ndarray,
               accumulated: Optional[np.ndarray] = None) -> Tuple[int, np.ndarray]:
        """The index of the region with the highest score (first on ties) and all scores.

        With `accumulated` (the accumulate-across-GOP variant of the original code), the scores
        of this frame are added to it in place and the chosen region's entry is reset to zero.
        """
        scores = self.scores(block_counts)
        if accumulated is not None:
            accumulated += scores
            best = int(np.argmax(accumulated))
            accumulated[best] = 0.0
            return best, scores
        return int(np.argmax(scores)), scores


def rgfs_fires(residual_sum: float, threshold: float) -> bool:
    """Eq. 4: a P-frame whose residual sum exceeds the threshold goes to phi."""
    return float(residual_sum) > float(threshold)
