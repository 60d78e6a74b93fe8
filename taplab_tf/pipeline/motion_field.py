"""Motion-field refinement before FFW (issue: propagation closer to per-frame).

The paper's FFW (Eq. 1) warps with the stream's motion vectors as they are: F_t[p] =
F_{t-1}[p - Mv_t[p]]. The encoder, though, chooses vectors to minimise its bit cost, not to follow
the scene: intra-coded blocks carry no vector, flat or skipped blocks often carry a zero vector
inside a moving region, and a few vectors point at a look-alike patch far away. Refinement repairs
the block grid (one vector per 16x16 block; 64x128 blocks at 1024x2048) before the warp, with
options that cost well under 2 ms a frame on 2 CPU cores (work over the block grid, no pixel
work; 'fill' runs as a compiled op, taplab_tf.ops.mv_fill, with its numpy reference here):

  none        the paper's FFW: the vectors as decoded (the default; exact).
  fill        blocks with no vector (intra), and zero vectors in a moving neighbourhood (most of
              the 3x3 neighbours move by more than `moving_px`), take the median of their
              neighbours' vectors; repeated `fill_passes` times so that holes close from the edge.
  model       a smooth model of the camera's motion field (quadratic in x and y, fitted to the
              moving vectors with Tukey-weighted least squares): blocks with no vector, zero
              vectors where the model moves, and vectors farther than `outlier_px` from the
              model that fewer than two neighbours agree with take the model's vector. A car
              moving on its own agrees with its neighbours and is kept.
  median      outlier rejection: a vector farther than `outlier_px` from the median of its 3x3
              neighbourhood is replaced by that median.
  confidence  the residual as a confidence: blocks whose mean |Res| is in the top
              `confidence_quantile` of the frame (the encoder's prediction failed there, so the
              vector is unreliable) take the median of their lower-residual neighbours.

Methods compose in the order fill, model, median, confidence ("fill+median",
"fill+median+confidence"). They work on any block grid: 16x16 macroblocks, or 8x8 blocks
(TapLabConfig.mv_block_size=8, which reads the 8x8 vectors of 4MV macroblocks).
All work on float32 [gh, gw, 2] grids of (dx, dy) = dst - src (third_party.compressed_video.motion
.block_motion) and an intra mask [gh, gw].
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

METHODS = ("fill", "model", "median", "confidence")
# The 3x3 neighbourhood without the centre, as (row, col) offsets.
_NEIGHBOURS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))


def parse_refinement(spec: str) -> Tuple[str, ...]:
    """'none' or '' -> (); 'fill+median' -> ('fill', 'median') in the canonical order."""
    items = [s.strip().lower() for s in str(spec).replace(",", "+").split("+")]
    items = [s for s in items if s and s != "none"]
    unknown = sorted(set(items) - set(METHODS))
    if unknown:
        raise ValueError(f"mv_refinement: unknown method(s) {unknown}; choose 'none' or a '+' "
                         f"list of {list(METHODS)}")
    return tuple(m for m in METHODS if m in items)


@dataclasses.dataclass(frozen=True)
class Refinement:
    """Which refinements run, and their thresholds (in pixels of the frame the vectors are in)."""

    methods: Tuple[str, ...] = ()
    moving_px: float = 0.5            # a neighbour "moves" when |v| exceeds this
    fill_passes: int = 2
    fill_majority: float = 0.5        # fill: a zero vector is replaced where more than this share
                                      # of its neighbours with a vector move
    outlier_px: float = 4.0           # median: replace vectors this far from their median
    confidence_quantile: float = 0.1  # confidence: the top 10% residual blocks are unreliable

    @classmethod
    def from_spec(cls, spec: str, **kwargs) -> "Refinement":
        return cls(methods=parse_refinement(spec), **kwargs)

    @property
    def name(self) -> str:
        return "+".join(self.methods) or "none"


def _neighbour_stack(values: np.ndarray, valid: np.ndarray):
    """values [gh, gw, 2], valid [gh, gw] -> ([8, gh, gw, 2], [8, gh, gw]) of the 3x3 neighbours
    (without the centre); outside the grid counts as invalid."""
    gh, gw = valid.shape
    pv = np.zeros((gh + 2, gw + 2, 2), np.float32)
    pm = np.zeros((gh + 2, gw + 2), bool)
    pv[1:-1, 1:-1] = values
    pm[1:-1, 1:-1] = valid
    vs = np.stack([pv[1 + dr:1 + dr + gh, 1 + dc:1 + dc + gw] for dr, dc in _NEIGHBOURS])
    ms = np.stack([pm[1 + dr:1 + dr + gh, 1 + dc:1 + dc + gw] for dr, dc in _NEIGHBOURS])
    return vs, ms


def masked_median(vs: np.ndarray, ms: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Component-wise median over axis 0 of vs [K, gh, gw, 2] where ms [K, gh, gw] holds; returns
    (median [gh, gw, 2], count [gh, gw]); median is 0 where count is 0. The lower and upper middle
    values are averaged for an even count."""
    x = np.where(ms[..., None], vs, np.inf)
    x = np.sort(x, axis=0)
    count = ms.sum(axis=0)
    lo = np.maximum((count - 1) // 2, 0)
    hi = np.maximum(count // 2, 0)
    idx_lo = np.broadcast_to(lo[None, ..., None], (1,) + x.shape[1:])
    idx_hi = np.broadcast_to(hi[None, ..., None], (1,) + x.shape[1:])
    med = 0.5 * (np.take_along_axis(x, idx_lo, 0)[0] + np.take_along_axis(x, idx_hi, 0)[0])
    med = np.where(count[..., None] > 0, med, 0.0).astype(np.float32)
    return med, count


def _neighbour_count(mask: np.ndarray) -> np.ndarray:
    """int32 [gh, gw]: how many of each cell's 3x3 neighbours (without itself) hold in mask."""
    p = np.pad(mask.astype(np.int32), 1)
    rows = p[:-2] + p[1:-1] + p[2:]
    return rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:] - mask


def _neighbours_at(values: np.ndarray, valid: np.ndarray, r: np.ndarray, c: np.ndarray):
    """The 3x3 neighbours (without the centre) of cells (r, c) only: ([8, K, 2], [8, K])."""
    pv = np.pad(values, ((1, 1), (1, 1), (0, 0)))
    pm = np.pad(valid, 1)
    vs = np.stack([pv[r + 1 + dr, c + 1 + dc] for dr, dc in _NEIGHBOURS])
    ms = np.stack([pm[r + 1 + dr, c + 1 + dc] for dr, dc in _NEIGHBOURS])
    return vs, ms


def fill_reference(mv, intra, moving_px: float = 0.5, passes: int = 2,
                   majority: float = 0.5):
    """The 'fill' rule in numpy: the reference that the compiled kernel (taplab_tf.ops.mv_fill,
    what the engine runs) reproduces bit for bit, and its fallback. Returns (mv, intra)."""
    mv = np.array(mv, np.float32)
    valid = ~np.asarray(intra, bool)
    for _ in range(max(int(passes), 1)):
        moving = valid & (np.hypot(mv[..., 0], mv[..., 1]) > moving_px)
        n_moving = _neighbour_count(moving)
        n_valid = _neighbour_count(valid)
        zero = valid & ~moving
        # A hole (no vector) takes its moving neighbours' median where any neighbour moves; a
        # zero vector only where most of its neighbours with a vector move.
        take = (~valid & (n_moving > 0)) | (
            zero & (n_moving > 0) & (n_moving > majority * np.maximum(n_valid, 1)))
        if not take.any():
            break
        # The median only where a vector is taken (a few % of the cells).
        r, c = np.nonzero(take)
        med, _ = masked_median(*_neighbours_at(mv, moving, r, c))
        mv[r, c] = med
        valid = valid | take
    return mv, ~valid


def _fill(mv, intra, cfg: Refinement):
    from taplab_tf import ops  # the compiled kernel (or, where it cannot be built, the above)
    return ops.mv_fill(mv, intra, cfg.moving_px, cfg.fill_passes, cfg.fill_majority)


def fit_quadratic_motion(mv: np.ndarray, use: np.ndarray, iterations: int = 3) -> np.ndarray:
    """The quadratic motion field [gh, gw, 2] (dx and dy each a + b x + c y + d x^2 + e xy +
    f y^2 over the grid in [-1, 1]) fitted to the vectors where `use` holds, with Tukey weights
    at 3x the median residual (at least 1 px); zeros when fewer than 6 vectors are usable."""
    gh, gw = use.shape
    if int(use.sum()) < 6:
        return np.zeros((gh, gw, 2), np.float32)
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    x = (xx + 0.5) / gw * 2 - 1
    y = (yy + 0.5) / gh * 2 - 1
    basis = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], -1).reshape(-1, 6)
    v = mv.reshape(-1, 2).astype(np.float64)
    ok = use.ravel()
    a, b = basis[ok].astype(np.float64), v[ok]
    w = np.ones(len(a))
    for _ in range(max(int(iterations), 1)):
        # einsum, not BLAS: a 6x6 normal matrix is too small for OpenBLAS's threads, which
        # cost more than the sums on a busy machine.
        aw = a * w[:, None]
        coef = np.linalg.solve(np.einsum("ni,nj->ij", aw, a) + 1e-6 * np.eye(6),
                               np.einsum("ni,nk->ik", aw, b))
        r = np.hypot(*(np.einsum("ni,ik->nk", a, coef) - b).T)
        c = max(3.0 * float(np.median(r)), 1.0)
        w = np.clip(1.0 - (r / c) ** 2, 0.0, None) ** 2
    return np.einsum("ni,ik->nk", basis, coef).reshape(gh, gw, 2).astype(np.float32)


def _model(mv, intra, cfg: Refinement):
    speed = np.hypot(mv[..., 0], mv[..., 1])
    model = fit_quadratic_motion(mv, ~intra & (speed > 0))
    model_moves = np.hypot(model[..., 0], model[..., 1]) > cfg.moving_px
    # A vector is supported where at least two neighbours agree with it (an object's corner
    # block still has three); an isolated look-alike match has at most one.
    vs, ms = _neighbour_stack(mv, ~intra)
    agree = ms & (np.hypot(vs[..., 0] - mv[..., 0], vs[..., 1] - mv[..., 1]) <= cfg.outlier_px)
    unsupported = agree.sum(axis=0) < 2
    far_model = np.hypot(*(mv - model).transpose(2, 0, 1)) > cfg.outlier_px
    take = intra | ((speed == 0) & model_moves) | (~intra & far_model & unsupported)
    out = mv.copy()
    out[take] = model[take]
    return out, np.zeros_like(intra)


def _median(mv, intra, cfg: Refinement):
    vs, ms = _neighbour_stack(mv, ~intra)
    med, count = masked_median(vs, ms)
    far = (~intra) & (count >= 3) & (np.hypot(*(mv - med).transpose(2, 0, 1)) > cfg.outlier_px)
    out = mv.copy()
    out[far] = med[far]
    return out, intra


def _confidence(mv, intra, block_residual, cfg: Refinement):
    if block_residual is None:
        return mv, intra
    r = np.asarray(block_residual, np.float32)
    if r.shape != intra.shape:
        raise ValueError(f"block_residual: expected shape {intra.shape}, got {r.shape}")
    cut = np.quantile(r, 1.0 - cfg.confidence_quantile)
    unreliable = (r > cut) & ~intra
    if not unreliable.any():
        return mv, intra
    vs, ms = _neighbour_stack(mv, ~intra & ~unreliable)
    med, count = masked_median(vs, ms)
    take = unreliable & (count >= 3)
    out = mv.copy()
    out[take] = med[take]
    return out, intra


def refine(mv: np.ndarray, intra: np.ndarray, refinement: Refinement,
           block_residual: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(mv, intra) after the refinement's methods in order; the inputs are not modified. With no
    methods the inputs come back as they are (the paper's FFW, bit for bit)."""
    if not refinement.methods:
        return mv, intra
    mv = np.asarray(mv, np.float32)
    intra = np.asarray(intra, bool)
    if mv.shape != intra.shape + (2,):
        raise ValueError(f"mv {mv.shape} and intra {intra.shape} disagree")
    for method in refinement.methods:
        if method == "fill":
            mv, intra = _fill(mv, intra, refinement)
        elif method == "model":
            mv, intra = _model(mv, intra, refinement)
        elif method == "median":
            mv, intra = _median(mv, intra, refinement)
        else:
            mv, intra = _confidence(mv, intra, block_residual, refinement)
    return mv, intra


# -- analysis: error against a ground-truth flow, per kind of block -----------------------------

KINDS = ("textured", "flat", "intra", "skipped")


def block_flow(flow: np.ndarray, block: int = 16) -> np.ndarray:
    """Mean of a dense flow [H, W, 2] over each block -> [ceil(H/B), ceil(W/B), 2]."""
    h, w = flow.shape[:2]
    gh, gw = -(-h // block), -(-w // block)
    pad = np.zeros((gh * block, gw * block, 2), np.float32)
    cnt = np.zeros((gh * block, gw * block, 1), np.float32)
    pad[:h, :w] = flow
    cnt[:h, :w] = 1
    s = pad.reshape(gh, block, gw, block, 2).sum((1, 3))
    n = cnt.reshape(gh, block, gw, block, 1).sum((1, 3))
    return s / np.maximum(n, 1)


def block_texture(gray: np.ndarray, block: int = 16) -> np.ndarray:
    """Mean gradient magnitude of a grey image [H, W] per block."""
    g = np.asarray(gray, np.float32)
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, 1:-1] = 0.5 * (g[:, 2:] - g[:, :-2])
    gy[1:-1] = 0.5 * (g[2:] - g[:-2])
    mag = np.hypot(gx, gy)[..., None]
    return block_flow(np.concatenate([mag, mag], -1), block)[..., 0]


def block_kinds(intra: np.ndarray, mv: np.ndarray, block_residual: np.ndarray,
                texture: np.ndarray, flat_threshold: float) -> np.ndarray:
    """Per block, the index into KINDS: intra (no vector), skipped (zero vector and no residual),
    flat (texture below flat_threshold), else textured."""
    zero = np.hypot(mv[..., 0], mv[..., 1]) == 0
    kinds = np.where(texture < flat_threshold, 1, 0)
    kinds = np.where(zero & (np.asarray(block_residual) == 0), 3, kinds)
    return np.where(intra, 2, kinds).astype(np.int8)


def summarize_errors(err: np.ndarray, kinds: np.ndarray) -> dict:
    """{kind: {'blocks', 'share', 'mean_px', 'median_px', 'within_2px'}} of per-block errors
    (any shape, e.g. several frames concatenated) by their kinds, plus 'all'."""
    err, kinds = np.ravel(err), np.ravel(kinds)
    out = {}
    for i, name in enumerate(KINDS + ("all",)):
        sel = err if name == "all" else err[kinds == i]
        out[name] = {"blocks": int(sel.size),
                     "share": float(sel.size / max(err.size, 1)),
                     "mean_px": float(sel.mean()) if sel.size else None,
                     "median_px": float(np.median(sel)) if sel.size else None,
                     "within_2px": float((sel <= 2).mean()) if sel.size else None}
    return out


def error_by_kind(mv: np.ndarray, gt: np.ndarray, kinds: np.ndarray) -> dict:
    """summarize_errors of |mv - gt| per block."""
    return summarize_errors(np.hypot(*(np.asarray(mv, np.float32) - gt).transpose(2, 0, 1)),
                            kinds)
