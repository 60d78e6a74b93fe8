// TapLab>UpsampleArgmax, method 'cells' (the default): argmax_c(resize_bilinear(logits, (H, W)))
// with TF's half-pixel-centre arithmetic, computed per source cell with an exact shortcut.
// TF-free (plain C++17 and GCC vector extensions), so it can be compiled and tested on its own;
// upsample_argmax_kernels.cc wraps it in the OpKernel and runs bands of rows on TF's CPU pool.
//
// Output pixel (y, x) interpolates the four logits vectors at source rows (y0, y1) = ys[y] and
// columns (x0, x1) = xs[x] with the weights (1-a)(1-b), a(1-b), (1-a)b, ab, where a, b in [0, 1)
// are TF's x and y lerps (a convex combination). All output pixels sharing (y0, y1, x0, x1) form
// one "cell" (about s x s pixels for an x s upsampling).
//
// Shortcut (exact): if channel k is the maximum of all four source vectors with a margin
// m_i = v_i[k] - max_{j != k} v_i[j] > 0, then in exact arithmetic every mix has
// mix[k] - mix[j] = sum_i w_i (v_i[k] - v_i[j]) >= min_i m_i > 0, so its argmax is k. The
// kernel (like TF) computes the mix in float32 with two lerps, l + (r - l) * t, of three rounded
// operations each; each computed channel value is within 10.1 * M * u + 3 * 2^-150 of the exact
// one (u = 2^-24 the unit roundoff, M the largest |logit| of the four vectors; the second lerp
// adds its own rounding to the first's error, which a convex mix does not amplify). So if
//     min_i m_i > M * 2^-18 + 2^-126        (kMarginRelative, kMarginAbsolute: > 3x that bound)
// the computed value of channel k exceeds every other channel's strictly, and the argmax is k
// whatever the rounding and whatever the tie rule: the whole cell is filled with k without
// interpolating. Everything else (different argmaxes, ties or near-ties in a source vector,
// |logit| > 2^100 where intermediate values could overflow, NaN, Inf) takes the full path. C = 1
// has no other channel (margin +Inf): every finite cell is channel 0.
//
// Full path: the same arithmetic as TF's ResizeBilinear (resize_bilinear_op.cc) operation for
// operation, so bit-identical (the library is built with -ffp-contract=off):
//   in = (out + 0.5) * (in_size / out_size) - 0.5; lower = max(floor(in), 0);
//   upper = min(ceil(in), in_size - 1); lerp = in - floor(in)
//   top = tl + (tr - tl) * x_lerp; bottom = bl + (br - bl) * x_lerp; v = top + (bottom - top) * y_lerp
// in tiles of 8 output columns: a tile's x-interpolated source rows ([C][8], computed when first
// needed and kept while the source row is in use, with one vector permute per channel instead of
// a gather), then a running argmax over channels for 4 output rows at once (strict >, so ties go
// to the first channel, like tf.argmax; a NaN never beats the running maximum). Interior cells
// that take the full path, where they are few in their row group, are computed one by one from
// their four source vectors instead (ArgmaxCell: the same operations per pixel), which reads 4
// vectors a cell rather than the tiles' 8 columns of each of two rows.
//
// Classification: with an exact power-of-two stride (the engine's case) the interior cells of a
// row group are classified 8 at a time: the shortcut first (ClassifyShortcut), then the cells it
// leaves to the full path copy where they can, from the key labels (ClassifyCopies, the scalar
// loop's test for other sizes) or the previous frame's (ClassifyPrevCopies).
#ifndef TAPLAB_TF_OPS_CC_KERNELS_UPSAMPLE_ARGMAX_H_
#define TAPLAB_TF_OPS_CC_KERNELS_UPSAMPLE_ARGMAX_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "cpu_dispatch.h"

namespace taplab {
namespace upsample_argmax {

// Bounds of the shortcut (see above): margin > M * kMarginRelative + kMarginAbsolute, M <= kMaxAbs.
constexpr float kMarginRelative = 1.0f / (1 << 18);
constexpr float kMarginAbsolute = 1.1754943508222875e-38f;  // 2^-126
constexpr float kMaxAbs = 1.2676506002282294e30f;           // 2^100

struct Interpolation {
  int64_t lower;
  int64_t upper;
  float lerp;
};

// TF's HalfPixelScaler + compute_interpolation_weights, for one axis.
inline std::vector<Interpolation> InterpolationWeights(int64_t out_size, int64_t in_size) {
  std::vector<Interpolation> weights(out_size);
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int64_t i = 0; i < out_size; ++i) {
    const float in = (static_cast<float>(i) + 0.5f) * scale - 0.5f;
    const float in_f = std::floor(in);
    weights[i].lower = std::max(static_cast<int64_t>(in_f), static_cast<int64_t>(0));
    weights[i].upper = std::min(static_cast<int64_t>(std::ceil(in)), in_size - 1);
    weights[i].lerp = in - in_f;
  }
  return weights;
}

// The helpers below are always inlined: an out-of-line copy built for the baseline target would
// take and return its 32-byte vectors differently from an AVX2 caller (GCC's -Wpsabi note).
#pragma GCC diagnostic ignored "-Wpsabi"
#define TAPLAB_INLINE inline __attribute__((always_inline))

typedef float V8F __attribute__((vector_size(32)));
typedef int32_t V8I __attribute__((vector_size(32)));

TAPLAB_INLINE V8F Load8(const float* p) {
  V8F v;
  std::memcpy(&v, p, 32);
  return v;
}
TAPLAB_INLINE V8I Load8(const int32_t* p) {
  V8I v;
  std::memcpy(&v, p, 32);
  return v;
}
TAPLAB_INLINE void Store8(float* p, const V8F& v) { std::memcpy(p, &v, 32); }
TAPLAB_INLINE void Store8(int32_t* p, const V8I& v) { std::memcpy(p, &v, 32); }
TAPLAB_INLINE V8F Splat(float f) { return V8F{f, f, f, f, f, f, f, f}; }
TAPLAB_INLINE V8I Splat(int32_t i) { return V8I{i, i, i, i, i, i, i, i}; }

// Stores the first n (<= 8) lanes of v as OutT.
TAPLAB_INLINE void StoreLabels(const V8I& v, int64_t n, int32_t* out) {
  if (n == 8) {
    std::memcpy(out, &v, 32);
  } else {
    for (int64_t l = 0; l < n; ++l) out[l] = v[l];
  }
}
TAPLAB_INLINE void StoreLabels(const V8I& v, int64_t n, uint8_t* out) {
  typedef uint8_t V8U8 __attribute__((vector_size(8)));
  const V8U8 b = __builtin_convertvector(v, V8U8);
  if (n == 8) {
    std::memcpy(out, &b, 8);
  } else {
    for (int64_t l = 0; l < n; ++l) out[l] = b[l];
  }
}

// t[c * w_pad + l] = p[l][c] for the 8 lanes l and C channels: 8 source pixels' logits vectors
// (C floats each) transposed into a row, by loads and an in-register 8 x 8 transposition per 8
// channels (the last block's loads masked to its channels). On AMD Zen 5 this takes about a
// third of the time of one 8-lane gather per channel (the statistics of 256 x 512 x 19 logits
// on one thread: 3.2 -> 1.0 ms).
#if TAPLAB_X86
__attribute__((target("avx2"))) static void Transpose8Avx2(const float* const* p, int64_t C,
                                                            float* t, int64_t w_pad) {
  for (int64_t c0 = 0; c0 < C; c0 += 8) {
    const int64_t n = std::min<int64_t>(8, C - c0);
    __m256 r[8];
    if (n == 8) {
      for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(p[l] + c0);
    } else {
      alignas(32) int32_t m[8];
      for (int l = 0; l < 8; ++l) m[l] = l < n ? -1 : 0;
      const __m256i mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
      for (int l = 0; l < 8; ++l) r[l] = _mm256_maskload_ps(p[l] + c0, mask);
    }
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    __m256 o[8];
    o[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    o[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    o[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    o[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    o[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    o[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    o[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    o[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
    for (int64_t c = 0; c < n; ++c) _mm256_storeu_ps(t + (c0 + c) * w_pad, o[c]);
  }
}
#endif

// One source row, ready for the cells that use it: transposed to [C][w_pad] and, per source pixel,
// its argmax (-1: never shortcut: NaN, Inf or |logit| > kMaxAbs), margin and largest |logit|.
// Vectorised over 8 source pixels at a time.
TAPLAB_AVX2_CLONES static void PrepareRow(const float* row, int64_t w, int64_t C, int64_t w_pad,
                                          float* t, int32_t* arg, float* margin, float* mag) {
  int64_t x0 = 0;  // the transposition: 8 pixels a step where AVX2 is there
#if TAPLAB_X86
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  if (has_avx2) {
    for (; x0 + 8 <= w; x0 += 8) {
      const float* p[8];
      for (int l = 0; l < 8; ++l) p[l] = row + (x0 + l) * C;
      Transpose8Avx2(p, C, t + x0, w_pad);
    }
  }
#endif
  for (int64_t c = 0; c < C; ++c) {
    float* tc = t + c * w_pad;
    const float* rc = row + c;
    for (int64_t x = x0; x < w; ++x) tc[x] = rc[x * C];
  }
  const V8I sign = Splat(static_cast<int32_t>(0x7fffffff));
  const V8F big = Splat(kMaxAbs);
  for (int64_t x = 0; x < w; x += 8) {  // w_pad >= w rounded up to 8; padded lanes are unused
    V8F best = Load8(t + x);
    V8F second = Splat(-INFINITY);
    V8I best_c = Splat(0);
    V8F largest = (V8F)((V8I)best & sign);
    V8I ok = largest <= big;  // false for NaN
    for (int64_t c = 1; c < C; ++c) {
      const V8F v = Load8(t + c * w_pad + x);
      const V8I g = v > best;
      second = g ? best : (v > second ? v : second);  // a tie with best makes second == best
      best = g ? v : best;
      best_c = g ? Splat(static_cast<int32_t>(c)) : best_c;
      const V8F a = (V8F)((V8I)v & sign);
      largest = a > largest ? a : largest;
      ok &= a <= big;
    }
    const V8F m = best - second;  // +Inf when C == 1
    const int64_t n = std::min<int64_t>(8, w - x);
    for (int64_t l = 0; l < n; ++l) {
      arg[x + l] = ok[l] ? best_c[l] : -1;
      margin[x + l] = m[l];
      mag[x + l] = largest[l];
    }
  }
}

// x-interpolates a source row (transposed, [C][w_pad]) for one tile of 8 output columns into
// out [C][8]. local_lower / local_upper: the tile's source columns minus `base`, all < 8 when
// `permute` (then one 8-float load and two permutes per channel), else read lane by lane.
TAPLAB_AVX2_CLONES static void InterpolateTile(const float* t, int64_t w_pad, int64_t C, int64_t base,
                                               const int32_t* local_lower,
                                               const int32_t* local_upper, const float* lerp,
                                               bool permute, float* out) {
  const V8F xl = Load8(lerp);
  if (permute) {
    const V8I il = Load8(local_lower), iu = Load8(local_upper);
    for (int64_t c = 0; c < C; ++c) {
      const V8F r = Load8(t + c * w_pad + base);
      const V8F l = __builtin_shuffle(r, il);
      const V8F u = __builtin_shuffle(r, iu);
      Store8(out + c * 8, l + (u - l) * xl);
    }
  } else {
    for (int64_t c = 0; c < C; ++c) {
      const float* src = t + c * w_pad + base;
      for (int l = 0; l < 8; ++l) {
        const float lo = src[local_lower[l]], up = src[local_upper[l]];
        out[c * 8 + l] = lo + (up - lo) * xl[l];
      }
    }
  }
}

// An indexed source's index value: source << kSourceShift | position (see Source below).
constexpr int kSourceShift = 20;
constexpr int32_t kPositionMask = (1 << kSourceShift) - 1;

// Cell classes of the vectorised pass over a row group's interior cells (CellUpsampler, the
// exact-stride plan): a label >= 0 (the shortcut), or one of these.
constexpr int32_t kFull = -1;     // interpolated in full
constexpr int32_t kCopy = -2;     // copied from the key labels
constexpr int32_t kPrevCopy = -4;  // copied from the previous frame's labels (Source)
// A row group's full cells take the per-cell path where they are at most 1 in this many of its
// interior cells (CellUpsampler::Rows).
constexpr int64_t kCellPathShare = 4;

// The interior cells of a row group between index rows i0 and i1 = i0 + w (map rows y0, y0 + 1)
// that the shortcut left to the full path: cell c + 1 (source columns c, c + 1), for c in
// [0, w - 1), with value[c] == kFull becomes kCopy where its four index entries are the pixels
// (q, r), (q, r + 1), (q + 1, r), (q + 1, r + 1) of source 0 with q <= q_max and r <= r_max
// (r_max <= w - 2: the bounds of the key labels, see FindCopyRuns); shift[c] = p00 - c (equal in
// a run of cells copied with one shift). value and shift hold w + 7 entries. Returns the number
// of kCopy cells. 8 cells per step; q = p00 / w from a float product, corrected by one step
// either way (p00 < 2^24 is exact in float). (A copy costs more than the shortcut's fill, so
// only the full path's cells copy.)
TAPLAB_AVX2_CLONES static int64_t ClassifyCopies(const int32_t* i0, const int32_t* i1, int64_t w,
                                                 int64_t q_max, int64_t r_max, int32_t* value,
                                                 int32_t* shift) {
  const int64_t cells = w - 1;
  const int32_t wi = static_cast<int32_t>(w);
  const V8I W1 = Splat(wi), W2 = Splat(wi + 1), one = Splat(1), zero = Splat(0);
  const V8I high = Splat(static_cast<int32_t>(~kPositionMask));
  const V8I qm = Splat(static_cast<int32_t>(std::max<int64_t>(-1, std::min<int64_t>(q_max, 1 << 30))));
  const V8I rm = Splat(static_cast<int32_t>(std::max<int64_t>(-1, r_max)));
  const V8I copy = Splat(kCopy), full = Splat(kFull);
  const V8F inv_w = Splat(1.0f / static_cast<float>(w));
  V8I lanes = {0, 1, 2, 3, 4, 5, 6, 7};
  V8I count = zero;
  int64_t c = 0;
  for (; c + 9 <= w; c += 8) {  // reads index columns [c, c + 9) of both rows
    const V8I p00 = Load8(i0 + c), p01 = Load8(i0 + c + 1);
    const V8I p10 = Load8(i1 + c), p11 = Load8(i1 + c + 1);
    const V8I adjacent = (p01 == p00 + one) & (p10 == p00 + W1) & (p11 == p00 + W2) &
                         (((p00 | p01 | p10 | p11) & high) == zero);
    V8I q = __builtin_convertvector(__builtin_convertvector(p00, V8F) * inv_w, V8I);
    V8I r = p00 - q * W1;
    const V8I below = r < zero, above = r >= W1;  // -1 where true
    q += below - above;
    r += (below & W1) - (above & W1);
    const V8I v = Load8(value + c);
    const V8I ok = adjacent & (q <= qm) & (r <= rm) & (v == full);
    Store8(value + c, ok ? copy : v);
    Store8(shift + c, p00 - (lanes + Splat(static_cast<int32_t>(c))));
    count -= ok;
  }
  int64_t copied = 0;
  for (int l = 0; l < 8; ++l) copied += count[l];
  for (; c < cells; ++c) {
    const int64_t p00 = i0[c];
    const bool ok = value[c] == kFull && i0[c + 1] == p00 + 1 && i1[c] == p00 + w &&
                    i1[c + 1] == p00 + w + 1 &&
                    !((i0[c] | i0[c + 1] | i1[c] | i1[c + 1]) & ~kPositionMask) &&
                    p00 / w <= q_max && p00 % w <= r_max;
    if (ok) value[c] = kCopy;
    shift[c] = static_cast<int32_t>(p00 - c);
    copied += ok;
  }
  return copied;
}

// Source's previous frame: block motion from it, in map cells per block (the warp's nearest
// offsets: this frame's map pixel (y, x) holds the previous map's (y + dy, x + dx) of its block).
struct PrevFrame {
  const int32_t* index = nullptr;  // [N, h, w]: the previous frame's map
  const void* labels = nullptr;    // [N, labels_h, labels_w] OutT: its labels (cropped)
  int64_t labels_h = 0, labels_w = 0;
  const int32_t* block_y = nullptr;  // [h]: block row of each map row
  const int32_t* block_x = nullptr;  // [w]: block column of each map column
  const int32_t* shift = nullptr;    // [N, grid_h, grid_w, 2]: (dy, dx) of each block
  int64_t grid_h = 0, grid_w = 0;
};

// The interior cells still kFull of a row group (map rows y0, y0 + 1 of item n; i0, i1 this
// frame's index rows): kPrevCopy where the block motion of the cell's top-left pixel maps its
// four index values onto four equal values of the previous map at (py, px) .. (py + 1, px + 1),
// with py <= py_max and px <= px_max (the previous labels' bounds), dy/dx[c] the offsets. Equal
// values read equal logits vectors, and interior cells interpolate them with equal weights, so
// the previous frame's labels there are this cell's. Returns the number of such cells.
static int64_t ClassifyPrevCopies(const PrevFrame& prev, int64_t n, int64_t h, int64_t w,
                                  int64_t y0, const int32_t* i0, const int32_t* i1,
                                  int64_t py_max, int64_t px_max, int32_t* value, int32_t* dy,
                                  int32_t* dx) {
  int64_t copied = 0;
  const int32_t* shift_row =
      prev.shift + (n * prev.grid_h + prev.block_y[y0]) * prev.grid_w * 2;
  const int32_t* pm = prev.index + n * h * w;
  for (int64_t c = 0; c + 1 < w; ++c) {
    if (value[c] != kFull) continue;
    const int32_t* sh = shift_row + 2 * prev.block_x[c];
    const int64_t py = y0 + sh[0], px = c + sh[1];
    if (py < 0 || py + 1 >= h || px < 0 || px + 1 >= w || py > py_max || px > px_max) continue;
    const int32_t* q0 = pm + py * w + px;
    if (i0[c] == q0[0] && i0[c + 1] == q0[1] && i1[c] == q0[w] && i1[c + 1] == q0[w + 1]) {
      value[c] = kPrevCopy;
      dy[c] = sh[0];
      dx[c] = sh[1];
      ++copied;
    }
  }
  return copied;
}

// The indices c in [0, n) with value[c] < 0, in order, into out; returns their number. Skips 8
// cells a step where none is negative (most of a row group's cells take the shortcut).
static int64_t NegativeCells(const int32_t* value, int64_t n, int32_t* out) {
  int64_t count = 0, c = 0;
  for (; c + 8 <= n; c += 8) {
    uint64_t q[4];
    std::memcpy(q, value + c, 32);
    if (((q[0] | q[1] | q[2] | q[3]) & 0x8000000080000000ull) == 0) continue;
    for (int64_t l = c; l < c + 8; ++l) {
      if (value[l] < 0) out[count++] = static_cast<int32_t>(l);
    }
  }
  for (; c < n; ++c) {
    if (value[c] < 0) out[count++] = static_cast<int32_t>(c);
  }
  return count;
}

// The shortcut for the interior cells (as ClassifyCopies): value[c] becomes the label k where
// the four source pixels (c, c + 1 of rows a and b) share the argmax k >= 0 with a margin over
// M * kMarginRelative + kMarginAbsolute (the module comment), else kFull. The statistics arrays
// hold at least w + 8 entries (a Slot's); value w + 7.
TAPLAB_AVX2_CLONES static void ClassifyShortcut(const int32_t* a_arg, const float* a_margin,
                                                const float* a_mag, const int32_t* b_arg,
                                                const float* b_margin, const float* b_mag,
                                                int64_t w, int32_t* value) {
  const V8I zero = Splat(0), full = Splat(kFull);
  const V8F rel = Splat(kMarginRelative), abs_ = Splat(kMarginAbsolute);
  auto min = [](const V8F& x, const V8F& y) { return y < x ? y : x; };  // std::min's
  auto max = [](const V8F& x, const V8F& y) { return x < y ? y : x; };  // std::max's
  for (int64_t c = 0; c < w - 1; c += 8) {  // the last step's extra lanes are never read
    const V8I k = Load8(a_arg + c);
    const V8I same = (Load8(a_arg + c + 1) == k) & (Load8(b_arg + c) == k) &
                     (Load8(b_arg + c + 1) == k) & (k >= zero);
    const V8F m = min(min(Load8(a_margin + c), Load8(a_margin + c + 1)),
                      min(Load8(b_margin + c), Load8(b_margin + c + 1)));
    const V8F big = max(max(Load8(a_mag + c), Load8(a_mag + c + 1)),
                        max(Load8(b_mag + c), Load8(b_mag + c + 1)));
    const V8I safe = same & (m > big * rel + abs_);
    Store8(value + c, safe ? k : full);
  }
}


namespace generic {
#define TAPLAB_MAX8(a, b) ((a) > (b) ? (a) : (b))
#include "upsample_argmax_tile.h"  // NOLINT(build/include): included twice on purpose
#undef TAPLAB_MAX8
}  // namespace generic
#if TAPLAB_X86
#pragma GCC push_options
#pragma GCC target("avx2")
namespace avx2 {
#define TAPLAB_MAX8(a, b) ((V8F)_mm256_max_ps((__m256)(a), (__m256)(b)))
#include "upsample_argmax_tile.h"  // NOLINT(build/include)
#undef TAPLAB_MAX8
}  // namespace avx2
#pragma GCC pop_options
#endif

// Running argmax over channels of top + (bottom - top) * y_lerp, tile of 8 columns, `rows` rows.
template <typename OutT>
void ArgmaxTile(const float* top, const float* bottom, int64_t C, const float* y_lerps,
                int64_t rows, OutT* out, int64_t stride, int64_t n) {
#if TAPLAB_X86
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  if (has_avx2) return avx2::ArgmaxTile(top, bottom, C, y_lerps, rows, out, stride, n);
#endif
  generic::ArgmaxTile(top, bottom, C, y_lerps, rows, out, stride, n);
}

#if TAPLAB_X86 && !defined(TAPLAB_NO_AVX512)
// ArgmaxCell for 16 lanes (a 4 x 4 cell) in one AVX-512 vector: the same operations lane by lane
// (strict > over channels with an ordered compare, so a NaN never wins), fewer instructions
// than two AVX2 vectors.
__attribute__((target("avx512f"))) static void ArgmaxCell16Avx512(
    const float* tl, const float* tr, const float* bl, const float* br, int64_t C,
    const float* xl, const float* yl, int32_t* labels) {
  const __m512 x = _mm512_loadu_ps(xl), y = _mm512_loadu_ps(yl);
  __m512 best = _mm512_setzero_ps();
  __m512i arg = _mm512_setzero_si512();
  for (int64_t c = 0; c < C; ++c) {
    // top = tl + (tr - tl) * x_lerp, bottom likewise, v = top + (bottom - top) * y_lerp
    const __m512 l0 = _mm512_set1_ps(tl[c]), l1 = _mm512_set1_ps(bl[c]);
    const __m512 top =
        _mm512_add_ps(l0, _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(tr[c]), l0), x));
    const __m512 bottom =
        _mm512_add_ps(l1, _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(br[c]), l1), x));
    const __m512 v = _mm512_add_ps(top, _mm512_mul_ps(_mm512_sub_ps(bottom, top), y));
    if (c == 0) {
      best = v;
      continue;
    }
    const __mmask16 wins = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, wins, v);
    arg = _mm512_mask_mov_epi32(arg, wins, _mm512_set1_epi32(static_cast<int32_t>(c)));
  }
  _mm512_storeu_si512(labels, arg);
}
#endif

// ArgmaxCell (upsample_argmax_tile.h), AVX-512 or AVX2 where the CPU has it.
inline void ArgmaxCell(const float* tl, const float* tr, const float* bl, const float* br,
                       int64_t C, const float* xl, const float* yl, int64_t lanes,
                       bool x_repeats, int32_t* labels) {
#if TAPLAB_X86 && !defined(TAPLAB_NO_AVX512)
  // (hot, on AMD Zen 5: 4500 cells 0.39 -> 0.19 ms against AVX2; from memory 1.33 -> 1.11 ms)
  static const bool has_avx512 = __builtin_cpu_supports("avx512f");
  if (has_avx512 && lanes == 16) return ArgmaxCell16Avx512(tl, tr, bl, br, C, xl, yl, labels);
#endif
#if TAPLAB_X86
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  if (has_avx2) return avx2::ArgmaxCell(tl, tr, bl, br, C, xl, yl, lanes, x_repeats, labels);
#endif
  generic::ArgmaxCell(tl, tr, bl, br, C, xl, yl, lanes, x_repeats, labels);
}

// Where the source logits' rows come from. Plain (index == nullptr): `logits` [N, h, w, C]
// itself. Indexed: the map whose pixel p of batch item n is pool[i].logits[n, q] for index[n, p] =
// i << kSourceShift | q, q a flat position within the item (a map held as a gather of others,
// e.g. FFW's chained nearest warps of a keyframe's logits composed into one index map, with
// RGC's crops as more sources), with each source's per-pixel statistics given (arg, margin, mag:
// what PrepareRow computes, e.g. by ArgmaxStats), so that a source row's statistics are gathered
// instead of computed, and its values are read only where a cell takes the full path. pool[0] is
// the map's own shape, the one the key labels belong to; the others may have any height and
// width.
//
// Key labels (indexed sources, optional): the labels of pool[0] itself, [N, key_h, key_w] of the
// output type (the keyframe's output, cropped to key_h <= H, key_w <= W). Where the index maps a
// cell's four source pixels onto four adjacent pixels of pool[0] in the same arrangement, every
// output pixel of the cell interpolates the same four vectors with the same weights as the
// pixel s * (dy, dx) away in the keyframe's output, provided the weights repeat every s output
// pixels: s = H / h = W / w exactly, a power of two (then (y + 0.5) / s - 0.5 is computed without
// rounding), and both cells are interior (lower + 1 == upper, not clamped at a border). Such
// cells copy their labels from key_labels, in runs of cells with the same shift, without reading
// any logits; the others take the shortcut or the full path as usual.
constexpr int kMaxSources = 16;

struct PoolSource {
  const float* logits = nullptr;  // [N, cells, C]
  const int32_t* arg = nullptr;   // [N, cells] statistics of logits
  const float* margin = nullptr;
  const float* mag = nullptr;
  int64_t cells = 0;              // per batch item
};

// Plain sources, optional: where the kernel also writes each source row's statistics
// (ArgmaxStats' outputs, [N, h, w]) as it prepares the row for its own use, so that a caller
// that needs both (a keyframe's labels, then FFW's indexed output from it) reads the logits
// once. claimed[N * h]: the first band to prepare a row writes it (rows two bands share are
// prepared by both).
struct StatsOut {
  int32_t* arg = nullptr;
  float* margin = nullptr;
  float* mag = nullptr;
  std::atomic<uint8_t>* claimed = nullptr;
};

struct Source {
  const StatsOut* stats_out = nullptr;  // plain: also write the statistics (StatsOut)
  const float* logits = nullptr;     // plain: [N, h, w, C]
  const int32_t* index = nullptr;    // indexed: [N, h, w], source << kSourceShift | position
  PoolSource pool[kMaxSources];      // indexed: the sources the index reads
  const void* key_labels = nullptr;  // [N, key_h, key_w] OutT, or null
  int64_t key_h = 0, key_w = 0;
  // indexed, exact stride: the previous frame of a chain of warps (PrevFrame; index null: none).
  // Cells whose four values the frame's motion carried over from it copy its labels.
  PrevFrame prev;
};

// Per-pixel statistics of `rows` rows of [.., w, C] logits (PrepareRow's arg, margin, mag),
// written to arg/margin/mag [rows, w]; t is scratch of C * w_pad floats.
TAPLAB_INLINE void ArgmaxStatsRows(const float* logits, int64_t rows, int64_t w, int64_t C,
                                   int64_t w_pad, float* t, int32_t* arg, float* margin,
                                   float* mag) {
  for (int64_t r = 0; r < rows; ++r) {
    PrepareRow(logits + r * w * C, w, C, w_pad, t, arg + r * w, margin + r * w, mag + r * w);
  }
}

// The per-call plan (interpolation tables, tiles, cells); Rows() computes output rows
// [begin, end) of the N * H rows and may run concurrently on disjoint ranges.
template <typename OutT>
class CellUpsampler {
 public:
  CellUpsampler(int64_t N, int64_t h, int64_t w, int64_t C, int64_t H, int64_t W)
      : N_(N), h_(h), w_(w), C_(C), H_(H), W_(W), W8_((W + 7) / 8 * 8), tiles_(W8_ / 8),
        w_pad_((w + 7) / 8 * 8 + 8) {
    if (H % h == 0 && W % w == 0 && H / h == W / w && H / h >= 2 &&
        ((H / h) & (H / h - 1)) == 0 && H < (1 << 22) && W < (1 << 22)) {
      stride_ = H / h;
      shift_exact_ = true;
    }
    ys_ = InterpolationWeights(H, h);
    y_lerp_.resize(H);
    for (int64_t y = 0; y < H; ++y) y_lerp_[y] = ys_[y].lerp;
    const std::vector<Interpolation> xs = InterpolationWeights(W, w);
    x_lerp_.resize(W8_);
    local_lower_.resize(W8_);
    local_upper_.resize(W8_);
    base_.resize(tiles_);
    span_.resize(tiles_);
    permute_.resize(tiles_);
    for (int64_t t = 0; t < tiles_; ++t) {
      base_[t] = xs[std::min(8 * t, W - 1)].lower;
      bool fits = true;
      for (int64_t x = 8 * t; x < 8 * t + 8; ++x) {
        const Interpolation& i = xs[std::min(x, W - 1)];  // padding repeats the last column
        x_lerp_[x] = i.lerp;
        local_lower_[x] = static_cast<int32_t>(i.lower - base_[t]);
        local_upper_[x] = static_cast<int32_t>(i.upper - base_[t]);
        fits = fits && local_upper_[x] < 8 && local_lower_[x] < 8;
      }
      permute_[t] = fits;
      int32_t span = 0;  // source columns [base, base + span) the tile reads
      for (int64_t x = 8 * t; x < 8 * t + 8; ++x) {
        span = std::max(span, std::max(local_lower_[x], local_upper_[x]) + 1);
      }
      span_[t] = span;
    }
    for (int64_t x = 0; x < W;) {  // runs of columns with the same source pair
      int64_t end = x + 1;
      while (end < W && xs[end].lower == xs[x].lower && xs[end].upper == xs[x].upper) ++end;
      cells_.push_back({x, end, xs[x].lower, xs[x].upper});
      x = end;
    }
    if (shift_exact_ && w >= 2 && static_cast<int64_t>(cells_.size()) == w + 1) {
      const int64_t s = stride_;
      interior_ = cells_[0].begin == 0 && cells_[0].end == s / 2 && cells_[0].lower == 0 &&
                  cells_[0].upper == 0 && cells_[w].lower == w - 1 && cells_[w].upper == w - 1;
      for (int64_t ci = 1; interior_ && ci < w; ++ci) {
        interior_ = cells_[ci].begin == s / 2 + (ci - 1) * s && cells_[ci].end == cells_[ci].begin + s &&
                    cells_[ci].lower == ci - 1 && cells_[ci].upper == ci;
      }
    }
  }

  int64_t rows() const { return N_ * H_; }

  // The first output row at or after r (0 <= r <= rows()) that starts a group of rows with the
  // same two source rows, Rows' unit of work: bands of rows split there neither classify a group
  // twice nor cut its cells in two (which would send their halves to the per-cell path's
  // narrower variant). On 2 threads at 1024x2048 the bands split 15 of 256 groups before.
  int64_t GroupStart(int64_t r) const {
    for (; r < rows() && r % H_ != 0; ++r) {
      const int64_t y = r % H_;
      if (ys_[y].lower != ys_[y - 1].lower || ys_[y].upper != ys_[y - 1].upper) break;
    }
    return r;
  }

  void Rows(const float* in, OutT* out, int64_t begin, int64_t end) const {
    Source src;
    src.logits = in;
    Rows(src, out, begin, end);
  }

  int64_t padded_width() const { return w_pad_; }

  void Rows(const Source& in, OutT* out, int64_t begin, int64_t end) const {
    const int64_t C = C_, W = W_;
    Slot slots[2] = {Slot(*this), Slot(*this)};
    std::unique_ptr<OutT[]> fill(new OutT[W8_]);
    std::unique_ptr<bool[]> full(new bool[tiles_]);
    std::vector<CopyRun> copy_runs, prev_runs;
    std::unique_ptr<bool[]> copy(new bool[cells_.size()]);
    // the interior path's cell classes (value[ci], ci = 0 .. w) and copy shifts
    std::unique_ptr<int32_t[]> values(new int32_t[w_pad_]()), shifts(new int32_t[w_pad_]());
    std::unique_ptr<int32_t[]> prev_dy(new int32_t[w_pad_]()), prev_dx(new int32_t[w_pad_]());
    // the per-cell path (indexed sources): its cells, its pixels' lerps and labels
    std::vector<int64_t> cell_path;
    std::unique_ptr<int32_t[]> negative(new int32_t[w_pad_]);
    const int64_t cell_lanes = (stride_ * stride_ + 7) / 8 * 8;
    std::unique_ptr<float[]> cell_xl(new float[cell_lanes]()), cell_yl(new float[cell_lanes]());
    std::unique_ptr<int32_t[]> cell_labels(new int32_t[cell_lanes]);
    auto find = [&](int64_t key) -> Slot* {
      for (Slot& s : slots) {
        if (s.key == key) return &s;
      }
      return nullptr;
    };
    auto other = [&](const Slot* s) { return s == &slots[0] ? &slots[1] : &slots[0]; };
    for (int64_t r = begin; r < end;) {
      const int64_t n = r / H_, y = r % H_;
      // Output rows r .. r_end - 1 (same image) interpolate between the same two source rows.
      int64_t r_end = r + 1;
      while (r_end < end && r_end % H_ != 0 && ys_[r_end % H_].lower == ys_[y].lower &&
             ys_[r_end % H_].upper == ys_[y].upper) {
        ++r_end;
      }
      const int64_t rows = r_end - r;
      const int64_t key_a = n * h_ + ys_[y].lower, key_b = n * h_ + ys_[y].upper;
      OutT* dst = out + r * W;
      const bool interior_rows = ys_[y].upper == ys_[y].lower + 1;
      // Cells whose labels are the key labels' shifted (see Source), in runs of one shift.
      copy_runs.clear();
      prev_runs.clear();
      cell_path.clear();
      size_t copied = 0;
      int32_t* value = values.get();
      // exact stride: the interior cells are classified below, 8 at a time, once the rows'
      // statistics are prepared; otherwise the key labels' copies are found here, cell by cell
      const bool vectorised = interior_ && interior_rows;
      if (!vectorised && in.key_labels != nullptr && shift_exact_ && interior_rows) {
        copied = FindCopyRuns(in, n, y, rows, &copy_runs, copy.get());
      }
      auto write_runs = [&](const std::vector<CopyRun>& runs, const void* labels,
                            int64_t labels_h, int64_t labels_w) {
        for (const CopyRun& run : runs) {
          const OutT* from = static_cast<const OutT*>(labels) +
                             (n * labels_h + y + run.dy) * labels_w + run.dx;
          for (int64_t k = 0; k < rows; ++k) {
            std::memcpy(dst + k * W + run.begin, from + k * labels_w + run.begin,
                        (run.end - run.begin) * sizeof(OutT));
          }
        }
      };
      auto write_copies = [&] {
        write_runs(copy_runs, in.key_labels, in.key_h, in.key_w);
        write_runs(prev_runs, in.prev.labels, in.prev.labels_h, in.prev.labels_w);
      };
      if (copied == cells_.size()) {  // nothing else to compute for these rows
        write_copies();
        r = r_end;
        continue;
      }
      Slot* a = find(key_a);
      Slot* b = find(key_b);
      if (a == nullptr) {
        a = b != nullptr ? other(b) : &slots[0];
        a->Prepare(in, key_a);
      }
      if (b == nullptr) {
        b = key_b == key_a ? a : other(a);
        if (b != a) b->Prepare(in, key_b);
      }
      // Labels of the cells where all four source vectors agree with a safe margin; the tiles
      // that hold any other cell's pixels take the full path.
      bool any_full = false;
      std::fill(full.get(), full.get() + tiles_, false);
      if (vectorised) {
        // cells 1 .. w - 1, 8 at a time: the shortcut, then the cells it leaves to the full
        // path copy where they can, from the key labels (ClassifyCopies: FindCopyRuns' test)
        // or the previous frame's (ClassifyPrevCopies)
        ClassifyShortcut(a->arg.get(), a->margin.get(), a->mag.get(), b->arg.get(),
                         b->margin.get(), b->mag.get(), w_, value + 1);
        const int64_t s = stride_, y0 = ys_[y].lower;
        const int32_t* i0 = in.index == nullptr ? nullptr : in.index + (n * h_ + y0) * w_;
        if (in.key_labels != nullptr) {
          // FindCopyRuns' bounds: y + dy + rows <= key_h with dy = (q - y0) s, and
          // cell.end + dx = s / 2 + (r + 1) s <= key_w with r <= w - 2
          const int64_t q_max = FloorDiv(in.key_h - rows - y + y0 * s, s);
          const int64_t r_max = std::min(w_ - 2, FloorDiv(in.key_w - s / 2, s) - 1);
          copied = ClassifyCopies(i0, i0 + w_, w_, q_max, r_max, value + 1, shifts.get() + 1);
        }
        if (in.prev.index != nullptr && in.prev.labels != nullptr) {
          // the previous labels' bounds, as the key labels'
          const int64_t py_max = FloorDiv(in.prev.labels_h - rows - y + y0 * s, s);
          const int64_t px_max = FloorDiv(in.prev.labels_w - s / 2, s) - 1;
          ClassifyPrevCopies(in.prev, n, h_, w_, y0, i0, i0 + w_, py_max, px_max, value + 1,
                             prev_dy.get() + 1, prev_dx.get() + 1);
        }
        value[0] = ShortcutLabel(*a, *b, 0, 0);  // the border cells (clamped)
        value[w_] = ShortcutLabel(*a, *b, w_ - 1, w_ - 1);
        OutT* f = fill.get();
        const Cell& first = cells_[0];
        const Cell& last = cells_[w_];
        std::fill(f + first.begin, f + first.end, static_cast<OutT>(std::max(value[0], 0)));
        std::fill(f + last.begin, f + last.end, static_cast<OutT>(std::max(value[w_], 0)));
        switch (stride_) {  // the interior cells, stride_ pixels each from column stride_ / 2
          case 2: FillInterior<2>(value, f); break;
          case 4: FillInterior<4>(value, f); break;
          case 8: FillInterior<8>(value, f); break;
          case 16: FillInterior<16>(value, f); break;
          default:
            for (int64_t ci = 1; ci < w_; ++ci) {
              std::fill(f + cells_[ci].begin, f + cells_[ci].end,
                        static_cast<OutT>(std::max(value[ci], 0)));
            }
        }
        // One pass over the cells the shortcut did not fill: the full path's (by tiles, or
        // cell by cell, below) and the copies' runs (one shift or block offset a run).
        const int64_t negatives = NegativeCells(value, w_ + 1, negative.get());
        // The interior cells left to the full path read their four vectors directly where they
        // are few (ArgmaxCell: 4 vectors a cell instead of the tiles' 8 columns of each row,
        // which an indexed map gathers from logits the cache rarely holds); where they are many,
        // the tiles share their work.
        int64_t full_cells = 0;
        for (int64_t k = 0; k < negatives; ++k) full_cells += value[negative[k]] == kFull;
        const bool per_cell = full_cells * kCellPathShare <= w_;
        const int32_t* shift = shifts.get();
        const int32_t* dy = prev_dy.get();
        const int32_t* dx = prev_dx.get();
        int64_t last_copy = -2, last_prev = -2;  // the last cell of the current runs
        for (int64_t k = 0; k < negatives; ++k) {
          const int64_t ci = negative[k];
          const int32_t v = value[ci];
          const Cell& cell = cells_[ci];
          if (v == kFull) {
            if (per_cell && ci > 0 && ci < w_) {
              cell_path.push_back(ci);
            } else {
              any_full = true;
              for (int64_t t = cell.begin / 8; t <= (cell.end - 1) / 8; ++t) full[t] = true;
            }
          } else if (v == kCopy) {  // key labels: one shift (p00 - lower) a run
            if (last_copy == ci - 1 && shift[ci] == shift[last_copy]) {
              copy_runs.back().end = cell.end;
            } else {
              const int64_t p00 = shift[ci] + cell.lower;
              const int64_t q = p00 / w_, col = p00 - q * w_;
              copy_runs.push_back({cell.begin, cell.end, (q - y0) * s, (col - cell.lower) * s});
            }
            last_copy = ci;
          } else if (v == kPrevCopy) {  // the previous frame's labels: one block offset a run
            if (last_prev == ci - 1 && dy[ci] == dy[last_prev] && dx[ci] == dx[last_prev]) {
              prev_runs.back().end = cell.end;
            } else {
              prev_runs.push_back({cell.begin, cell.end, int64_t{dy[ci]} * s,
                                   int64_t{dx[ci]} * s});
            }
            last_prev = ci;
          }
        }
      } else {
        for (size_t ci = 0; ci < cells_.size(); ++ci) {
          const Cell& cell = cells_[ci];
          if (!copy_runs.empty() && copy[ci]) continue;  // written from the key labels below
          const int32_t value = ShortcutLabel(*a, *b, cell.lower, cell.upper);
          const OutT fill_value = static_cast<OutT>(value < 0 ? 0 : value);
          for (int64_t x = cell.begin; x < cell.end; ++x) fill[x] = fill_value;
          if (value < 0) {
            any_full = true;
            for (int64_t t = cell.begin / 8; t <= (cell.end - 1) / 8; ++t) full[t] = true;
          }
        }
      }
      for (int64_t k = 0; k < rows; ++k) std::memcpy(dst + k * W, fill.get(), W * sizeof(OutT));
      write_copies();
      if (!cell_path.empty()) {
        WriteCells(in, n, ys_[y].lower, y, rows, cell_path, cell_xl.get(), cell_yl.get(),
                   cell_labels.get(), dst);
      }
      if (!any_full) {
        r = r_end;
        continue;
      }
      for (int64_t t = 0; t < tiles_; ++t) {
        if (!full[t]) continue;
        const float* top = a->Tile(t);
        const float* bottom = b->Tile(t);
        ArgmaxTile(top, bottom, C, y_lerp_.data() + y, rows, dst + 8 * t, W,
                   std::min<int64_t>(8, W - 8 * t));
      }
      r = r_end;
    }
  }

 private:
  struct Cell {
    int64_t begin, end;   // output columns
    int64_t lower, upper;  // source columns
  };

  struct CopyRun {
    int64_t begin, end;  // output columns
    int64_t dy, dx;      // the key labels' pixel is (y + dy, x + dx)
  };

  // The fill row of the interior cells 1 .. w - 1 (S pixels each from column S / 2): each cell's
  // label, 0 for the cells copied or interpolated after.
  template <int S>
  void FillInterior(const int32_t* value, OutT* f) const {
    OutT* p = f + S / 2;
    int64_t ci = 1;
    if constexpr (S == 4 && sizeof(OutT) == 1) {  // 8 cells a step: each label's byte 4 times
      const V8I zero = Splat(0), byte = Splat(0xFF), spread = Splat(0x01010101);
      for (; ci + 8 <= w_; ci += 8, p += 32) {
        const V8I v = Load8(value + ci);
        Store8(reinterpret_cast<int32_t*>(p), ((v < zero ? zero : v) & byte) * spread);
      }
    }
    for (; ci < w_; ++ci, p += S) {
      const OutT v = static_cast<OutT>(value[ci] < 0 ? 0 : value[ci]);
      for (int k = 0; k < S; ++k) p[k] = v;
    }
  }

  // The per-cell path: the interior cells `cells` (ArgmaxCell) of output rows [y, y + rows) of
  // item n, source rows y0, y0 + 1 (of the indexed map or the plain logits), into dst (row y).
  // The cells are stride_ pixels wide with the lerps of cell 1 (exact power-of-two stride: they
  // repeat every stride_ pixels, see Source).
  void WriteCells(const Source& in, int64_t n, int64_t y0, int64_t y, int64_t rows,
                  const std::vector<int64_t>& cells, float* xl, float* yl, int32_t* labels,
                  OutT* dst) const {
    const int64_t s = stride_, lanes = rows * s, W = W_, C = C_;
    for (int64_t k = 0; k < rows; ++k) {
      for (int64_t j = 0; j < s; ++j) {
        xl[k * s + j] = x_lerp_[cells_[1].begin + j];
        yl[k * s + j] = y_lerp_[y + k];
      }
    }
    // the source vector of map pixel (row r of the two, column c): through the index, or the
    // plain logits' own
    const int32_t* i0 = in.index == nullptr ? nullptr : in.index + (n * h_ + y0) * w_;
    const float* plain = in.logits + (n * h_ + y0) * w_ * C;
    auto vec = [&](int r, int64_t c) -> const float* {
      if (i0 == nullptr) return plain + (r * w_ + c) * C;
      const int32_t v = i0[r * w_ + c];
      const PoolSource& p = in.pool[v >> kSourceShift];
      return p.logits + (n * p.cells + (v & kPositionMask)) * C;
    };
    auto prefetch = [&](int r, int64_t c) {
      const float* p = vec(r, c);
      __builtin_prefetch(p);
      __builtin_prefetch(p + C - 1);
    };
    for (size_t j = 0; j < cells.size(); ++j) {
      const int64_t ci = cells[j];
      if (j + 2 < cells.size()) {  // the cache rarely holds them: ask ahead
        const int64_t cn = cells[j + 2];
        prefetch(0, cn - 1);
        prefetch(0, cn);
        prefetch(1, cn - 1);
        prefetch(1, cn);
      }
      ArgmaxCell(vec(0, ci - 1), vec(0, ci), vec(1, ci - 1), vec(1, ci), C, xl, yl, lanes,
                 8 % s == 0, labels);
      OutT* out = dst + cells_[ci].begin;
      for (int64_t k = 0; k < rows; ++k) {
        for (int64_t j = 0; j < s; ++j) out[k * W + j] = static_cast<OutT>(labels[k * s + j]);
      }
    }
  }

  static int64_t FloorDiv(int64_t a, int64_t b) {  // b > 0
    return a >= 0 ? a / b : -((-a + b - 1) / b);
  }

  // The cells of output rows [y, y + rows) of item n (source rows lower, lower + 1) that copy
  // their labels from the key labels (Source), as runs of one shift; copy[ci] marks them.
  size_t FindCopyRuns(const Source& in, int64_t n, int64_t y, int64_t rows,
                      std::vector<CopyRun>* runs, bool* copy) const {
    size_t copied = 0;
    const int64_t w = w_;
    const int64_t y0 = ys_[y].lower;
    const int32_t* i0 = in.index + (n * h_ + y0) * w;
    const int32_t* i1 = i0 + w;
    // The shift of the previous copied cell: a cell whose p00 moved with its source column
    // shares it (no division).
    int64_t last_p = -1, last_lower = 0, last_col = 0, dy = 0, dx = 0;
    bool rows_ok = false;
    for (size_t ci = 0; ci < cells_.size(); ++ci) {
      const Cell& cell = cells_[ci];
      copy[ci] = false;
      if (cell.upper != cell.lower + 1) continue;
      const int64_t p00 = i0[cell.lower];
      if (i0[cell.upper] != p00 + 1 || i1[cell.lower] != p00 + w || i1[cell.upper] != p00 + w + 1 ||
          ((i0[cell.lower] | i0[cell.upper] | i1[cell.lower] | i1[cell.upper]) >> kSourceShift)) {
        continue;  // not four adjacent pixels of source 0 (whose labels the key labels are)
      }
      int64_t col;
      if (last_p >= 0 && p00 - last_p == cell.lower - last_lower &&
          last_col + (cell.lower - last_lower) < w) {
        col = last_col + (cell.lower - last_lower);  // same row of the source, same shift
      } else {
        const int64_t row = p00 / w;
        col = p00 - row * w;
        dy = (row - y0) * stride_;
        dx = (col - cell.lower) * stride_;
        rows_ok = y + dy >= 0 && y + dy + rows <= in.key_h;
      }
      last_p = p00;
      last_lower = cell.lower;
      last_col = col;
      if (col == w - 1 || !rows_ok || cell.begin + dx < 0 || cell.end + dx > in.key_w) continue;
      copy[ci] = true;
      ++copied;
      if (!runs->empty() && runs->back().end == cell.begin && runs->back().dy == dy &&
          runs->back().dx == dx) {
        runs->back().end = cell.end;
      } else {
        runs->push_back({cell.begin, cell.end, dy, dx});
      }
    }
    return copied;
  }

  // A source row in use: transposed, its per-pixel statistics and its x-interpolated tiles
  // (computed on first use).
  struct Slot {
    explicit Slot(const CellUpsampler& p)
        : plan(p),
          chunk_ready(new bool[p.w_pad_ / 8]),  // (the members' order)
          t(new float[p.C_ * p.w_pad_]()),
          arg(new int32_t[p.w_pad_]()),  // zeroed: the vector passes read lanes past w
          margin(new float[p.w_pad_]()),
          mag(new float[p.w_pad_]()),
          tiles(new float[p.tiles_ * p.C_ * 8]),
          ready(new bool[p.tiles_]) {}

    void Prepare(const Source& in, int64_t k) {
      key = k;
      source = &in;
      std::fill(ready.get(), ready.get() + plan.tiles_, false);
      const int64_t w = plan.w_;
      if (in.index == nullptr) {
        PrepareRow(in.logits + k * w * plan.C_, w, plan.C_, plan.w_pad_, t.get(), arg.get(),
                   margin.get(), mag.get());
        transposed = true;
        const StatsOut* so = in.stats_out;
        if (so != nullptr && !so->claimed[k].exchange(1, std::memory_order_relaxed)) {
          std::memcpy(so->arg + k * w, arg.get(), w * sizeof(int32_t));
          std::memcpy(so->margin + k * w, margin.get(), w * sizeof(float));
          std::memcpy(so->mag + k * w, mag.get(), w * sizeof(float));
        }
        return;
      }
      // Indexed: the statistics are gathered; the values wait until a tile needs them.
      const int32_t* idx = in.index + k * w;
      const int64_t n = k / plan.h_;
      for (int64_t x = 0; x < w; ++x) {
        const PoolSource& src = in.pool[idx[x] >> kSourceShift];
        const int64_t p = n * src.cells + (idx[x] & kPositionMask);
        arg[x] = src.arg[p];
        margin[x] = src.margin[p];
        mag[x] = src.mag[p];
      }
      transposed = false;
      gathering = false;
    }

    // Indexed sources: gathers the values of source columns [x0, x1) into the transposed row
    // ([C][w_pad]), in chunks of 8 columns, each once per row.
    void Gather(int64_t x0, int64_t x1) {
      const int64_t w = plan.w_, C = plan.C_;
      const int32_t* idx = source->index + key * w;
      const int64_t n = key / plan.h_;
      float* tt = t.get();
#if TAPLAB_X86
      static const bool has_avx2 = __builtin_cpu_supports("avx2");
#endif
      for (int64_t chunk = x0 / 8; chunk * 8 < std::min(x1, w); ++chunk) {
        if (chunk_ready[chunk]) continue;
        chunk_ready[chunk] = true;
#if TAPLAB_X86
        if (has_avx2 && chunk * 8 + 8 <= w) {  // 8 columns: loads and a transposition
          const int32_t* ix = idx + chunk * 8;
          const float* p[8];
          for (int l = 0; l < 8; ++l) {
            const PoolSource& src = source->pool[ix[l] >> kSourceShift];
            p[l] = src.logits + (n * src.cells + (ix[l] & kPositionMask)) * C;
          }
          Transpose8Avx2(p, C, tt + chunk * 8, plan.w_pad_);
          continue;
        }
#endif
        for (int64_t x = chunk * 8; x < std::min(chunk * 8 + 8, w); ++x) {
          const PoolSource& src = source->pool[idx[x] >> kSourceShift];
          const float* v = src.logits + (n * src.cells + (idx[x] & kPositionMask)) * C;
          for (int64_t c = 0; c < C; ++c) tt[c * plan.w_pad_ + x] = v[c];
        }
      }
    }

    const float* Tile(int64_t i) {
      float* dst = tiles.get() + i * plan.C_ * 8;
      if (!ready[i]) {
        if (!transposed) {
          if (!gathering) {
            std::fill(chunk_ready.get(), chunk_ready.get() + plan.w_pad_ / 8, false);
            gathering = true;
          }
          Gather(plan.base_[i], plan.base_[i] + plan.span_[i]);
        }
        InterpolateTile(t.get(), plan.w_pad_, plan.C_, plan.base_[i],
                        plan.local_lower_.data() + 8 * i, plan.local_upper_.data() + 8 * i,
                        plan.x_lerp_.data() + 8 * i, plan.permute_[i], dst);
        ready[i] = true;
      }
      return dst;
    }

    const CellUpsampler& plan;
    int64_t key = -1;
    const Source* source = nullptr;
    bool transposed = false;  // all of t holds the row (plain sources)
    bool gathering = false;   // chunk_ready is valid for this row (indexed sources)
    std::unique_ptr<bool[]> chunk_ready;
    std::unique_ptr<float[]> t;
    std::unique_ptr<int32_t[]> arg;
    std::unique_ptr<float[]> margin, mag;
    std::unique_ptr<float[]> tiles;
    std::unique_ptr<bool[]> ready;
  };

  // The label of the cell between source columns lower, upper of rows a, b where all four
  // source vectors share the argmax k with a safe margin (the module comment), else kFull.
  static int32_t ShortcutLabel(const Slot& a, const Slot& b, int64_t lower, int64_t upper) {
    const int32_t k = a.arg[lower];
    if (k >= 0 && a.arg[upper] == k && b.arg[lower] == k && b.arg[upper] == k) {
      const float m = std::min(std::min(a.margin[lower], a.margin[upper]),
                               std::min(b.margin[lower], b.margin[upper]));
      const float big = std::max(std::max(a.mag[lower], a.mag[upper]),
                                 std::max(b.mag[lower], b.mag[upper]));
      if (m > big * kMarginRelative + kMarginAbsolute) return k;
    }
    return kFull;
  }

  int64_t N_, h_, w_, C_, H_, W_, W8_, tiles_, w_pad_;
  int64_t stride_ = 0;        // H / h when the upsampling is by an exact power of two, else 0
  bool shift_exact_ = false;  // key labels may be copied (see Source)
  // shift_exact_ with w >= 2: the cells are [0, s/2) (columns 0, 0), then one of s pixels per
  // source column pair (c, c + 1), then [W - s/2, W) (w - 1, w - 1); interior row groups take
  // the vectorised classification (ClassifyShortcut, ClassifyCopies, ClassifyPrevCopies)
  bool interior_ = false;
  std::vector<Interpolation> ys_;
  std::vector<float> y_lerp_;
  std::vector<float> x_lerp_;
  std::vector<int32_t> local_lower_, local_upper_;
  std::vector<int64_t> base_;
  std::vector<int32_t> span_;
  std::vector<bool> permute_;
  std::vector<Cell> cells_;
};

}  // namespace upsample_argmax
}  // namespace taplab

#endif  // TAPLAB_TF_OPS_CC_KERNELS_UPSAMPLE_ARGMAX_H_
