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
// to the first channel, like tf.argmax; a NaN never beats the running maximum).
#ifndef TAPLAB_TF_OPS_CC_KERNELS_UPSAMPLE_ARGMAX_H_
#define TAPLAB_TF_OPS_CC_KERNELS_UPSAMPLE_ARGMAX_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
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

// One source row, ready for the cells that use it: transposed to [C][w_pad] and, per source pixel,
// its argmax (-1: never shortcut: NaN, Inf or |logit| > kMaxAbs), margin and largest |logit|.
// Vectorised over 8 source pixels at a time.
TAPLAB_AVX2_CLONES static void PrepareRow(const float* row, int64_t w, int64_t C, int64_t w_pad,
                                          float* t, int32_t* arg, float* margin, float* mag) {
  for (int64_t c = 0; c < C; ++c) {
    float* tc = t + c * w_pad;
    const float* rc = row + c;
    for (int64_t x = 0; x < w; ++x) tc[x] = rc[x * C];
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
constexpr int kSourceShift = 20;
constexpr int32_t kPositionMask = (1 << kSourceShift) - 1;
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
  }

  int64_t rows() const { return N_ * H_; }

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
    std::vector<CopyRun> copy_runs;
    std::unique_ptr<bool[]> copy(new bool[cells_.size()]);
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
      // Cells whose labels are the key labels' shifted (see Source), in runs of one shift.
      copy_runs.clear();
      size_t copied = 0;
      if (in.key_labels != nullptr && shift_exact_ && ys_[y].upper == ys_[y].lower + 1) {
        copied = FindCopyRuns(in, n, y, rows, &copy_runs, copy.get());
      }
      auto write_copies = [&] {
        for (const CopyRun& run : copy_runs) {
          const OutT* key = static_cast<const OutT*>(in.key_labels) +
                            (n * in.key_h + y + run.dy) * in.key_w + run.dx;
          for (int64_t k = 0; k < rows; ++k) {
            std::memcpy(dst + k * W + run.begin, key + k * in.key_w + run.begin,
                        (run.end - run.begin) * sizeof(OutT));
          }
        }
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
      for (size_t ci = 0; ci < cells_.size(); ++ci) {
        const Cell& cell = cells_[ci];
        if (!copy_runs.empty() && copy[ci]) continue;  // written from the key labels below
        const int32_t k = a->arg[cell.lower];
        int32_t value = -1;
        if (k >= 0 && a->arg[cell.upper] == k && b->arg[cell.lower] == k &&
            b->arg[cell.upper] == k) {
          const float m = std::min(std::min(a->margin[cell.lower], a->margin[cell.upper]),
                                   std::min(b->margin[cell.lower], b->margin[cell.upper]));
          const float big = std::max(std::max(a->mag[cell.lower], a->mag[cell.upper]),
                                     std::max(b->mag[cell.lower], b->mag[cell.upper]));
          if (m > big * kMarginRelative + kMarginAbsolute) value = k;
        }
        const OutT fill_value = static_cast<OutT>(value < 0 ? 0 : value);
        for (int64_t x = cell.begin; x < cell.end; ++x) fill[x] = fill_value;
        if (value < 0) {
          any_full = true;
          for (int64_t t = cell.begin / 8; t <= (cell.end - 1) / 8; ++t) full[t] = true;
        }
      }
      for (int64_t k = 0; k < rows; ++k) std::memcpy(dst + k * W, fill.get(), W * sizeof(OutT));
      write_copies();
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
          t(new float[p.C_ * p.w_pad_]()),
          arg(new int32_t[p.w_pad_]),
          margin(new float[p.w_pad_]),
          mag(new float[p.w_pad_]),
          tiles(new float[p.tiles_ * p.C_ * 8]),
          ready(new bool[p.tiles_]),
          chunk_ready(new bool[p.w_pad_ / 8]) {}

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
      for (int64_t chunk = x0 / 8; chunk * 8 < std::min(x1, w); ++chunk) {
        if (chunk_ready[chunk]) continue;
        chunk_ready[chunk] = true;
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

  int64_t N_, h_, w_, C_, H_, W_, W8_, tiles_, w_pad_;
  int64_t stride_ = 0;        // H / h when the upsampling is by an exact power of two, else 0
  bool shift_exact_ = false;  // key labels may be copied (see Source)
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
