// CPU kernels of TapLab>UpsampleArgmax: argmax_c(resize_bilinear(logits, (H, W), half-pixel centres))
// without materialising the [N, H, W, C] upsampled tensor.
//
// method='cells' (the default) is upsample_argmax.h: per source cell, with an exact shortcut where
// all four source vectors share their argmax (that header says why it is exact). Bands of output
// rows run on TF's CPU thread pool.
//
// method='rows' is the earlier kernel, described below, kept as an independent cross-check of the
// cells kernel and as the benchmark's "before" (experiments/benchmark_output_step.py). Arithmetic is TF's ResizeBilinear (resize_bilinear_op.cc) operation for operation, so results are
// bit-identical (the library is built with -ffp-contract=off):
//   in = (out + 0.5) * (in_size / out_size) - 0.5; lower = max(floor(in), 0);
//   upper = min(ceil(in), in_size - 1); lerp = in - floor(in)
//   top = tl + (tr - tl) * x_lerp; bottom = bl + (br - bl) * x_lerp; v = top + (bottom - top) * y_lerp
// Separable evaluation: each thread handles a band of output rows; for an output row it needs the
// x-interpolated input rows `lower` and `upper` ([C][W] channel-major, computed once per band and
// reused, with their difference, across the ~H/h output rows that share them), then one
// vectorised pass over C channels per 16-column tile keeps the running maximum and its channel in
// registers (strict >, so ties go to the first channel, like tf.argmax).
// A CUDA version would go in upsample_argmax_kernels.cu.cc (one thread per output pixel).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <array>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "cpu_dispatch.h"
#include "mv_warp.h"
#include "upsample_argmax.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/threadpool.h"

namespace tensorflow {
namespace taplab {
namespace {

// The row kernel and the cells kernel share one computation of TF's half-pixel weights.
using ::taplab::upsample_argmax::InterpolationWeights;
using Weights = ::taplab::upsample_argmax::Interpolation;  // (mv_warp.h has an Interpolation)

// dst[c * W + x] = x-interpolation of input row `row` ([w, C] channel-last) at output column x.
// The row is first transposed to [C][w] (scratch, w * C floats) so that the inner loop reads a
// small contiguous array and writes contiguously; with AVX2 the reads are 8-lane gathers.
#if TAPLAB_X86
__attribute__((target("avx2"))) int64_t InterpolateColumnsAvx2(
    const float* src, const int32_t* lower, const int32_t* upper, const float* lerp, int64_t W,
    float* out) {
  int64_t x = 0;
  for (; x + 8 <= W; x += 8) {
    const __m256i li = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lower + x));
    const __m256i ui = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(upper + x));
    const __m256 l = _mm256_i32gather_ps(src, li, 4);
    const __m256 r = _mm256_i32gather_ps(src, ui, 4);
    // l + (r - l) * lerp with separate rounding steps, as TF computes it (no FMA).
    const __m256 v = _mm256_add_ps(l, _mm256_mul_ps(_mm256_sub_ps(r, l), _mm256_loadu_ps(lerp + x)));
    _mm256_storeu_ps(out + x, v);
  }
  return x;
}
#endif

void InterpolateRowX(const float* row, const int32_t* lower, const int32_t* upper,
                     const float* lerp, int64_t w, int64_t W, int64_t C, float* scratch,
                     float* dst) {
#if TAPLAB_X86
  static const bool avx2 = __builtin_cpu_supports("avx2");
#endif
  for (int64_t x = 0; x < w; ++x) {
    for (int64_t c = 0; c < C; ++c) scratch[c * w + x] = row[x * C + c];
  }
  for (int64_t c = 0; c < C; ++c) {
    const float* src = scratch + c * w;
    float* out = dst + c * W;
    int64_t x = 0;
#if TAPLAB_X86
    if (avx2) x = InterpolateColumnsAvx2(src, lower, upper, lerp, W, out);
#endif
    for (; x < W; ++x) {
      const float l = src[lower[x]];
      const float r = src[upper[x]];
      out[x] = l + (r - l) * lerp[x];
    }
  }
}

// Vertical interpolation and running argmax over channels for one output row, given the top row
// and diff = bottom - top (both [C][W]; the difference is the same float TF computes per pixel).
// Tiles of 16 columns (two 8-lane vectors, GCC vector extensions: AVX2 where the CPU has it via
// target_clones, SSE2 pairs otherwise) keep the running maximum and its channel in registers
// across all channels.
typedef float V8F __attribute__((vector_size(32)));
typedef int32_t V8I __attribute__((vector_size(32)));

// Stores 8 labels (int32 lanes) as OutT.
inline void StoreLabels(const V8I& v, int32_t* out) { std::memcpy(out, &v, 32); }
inline void StoreLabels(const V8I& v, uint8_t* out) {
  for (int l = 0; l < 8; ++l) out[l] = static_cast<uint8_t>(v[l]);
}

template <typename OutT>
TAPLAB_AVX2_CLONES void ArgmaxRows(
    const float* top, const float* diff, int64_t W, int64_t C, const float* y_lerps,
    int64_t rows, OutT* out) {
  // Rows sharing (top, diff) are done tile by tile, so a tile's C x 16 inputs are read from
  // memory once and from L1 for the other rows (an x8 upsampling has 8 such rows).
  int64_t x0 = 0;
  for (; x0 + 16 <= W; x0 += 16) {
    for (int64_t k = 0; k < rows; ++k) {
      const float y_lerp = y_lerps[k];
      const V8F yl = {y_lerp, y_lerp, y_lerp, y_lerp, y_lerp, y_lerp, y_lerp, y_lerp};
      V8F t0, t1, d0, d1;
      std::memcpy(&t0, top + x0, 32);
      std::memcpy(&t1, top + x0 + 8, 32);
      std::memcpy(&d0, diff + x0, 32);
      std::memcpy(&d1, diff + x0 + 8, 32);
      V8F best0 = t0 + d0 * yl, best1 = t1 + d1 * yl;
      V8I arg0 = {0, 0, 0, 0, 0, 0, 0, 0}, arg1 = arg0;
      for (int64_t c = 1; c < C; ++c) {
        const float* t = top + c * W + x0;
        const float* d = diff + c * W + x0;
        std::memcpy(&t0, t, 32);
        std::memcpy(&t1, t + 8, 32);
        std::memcpy(&d0, d, 32);
        std::memcpy(&d1, d + 8, 32);
        const V8F v0 = t0 + d0 * yl, v1 = t1 + d1 * yl;
        const int32_t ci = static_cast<int32_t>(c);
        const V8I cv = {ci, ci, ci, ci, ci, ci, ci, ci};
        const V8I g0 = v0 > best0, g1 = v1 > best1;  // strict: ties keep the first channel
        best0 = g0 ? v0 : best0;
        best1 = g1 ? v1 : best1;
        arg0 = g0 ? cv : arg0;
        arg1 = g1 ? cv : arg1;
      }
      StoreLabels(arg0, out + k * W + x0);
      StoreLabels(arg1, out + k * W + x0 + 8);
    }
  }
  for (int64_t k = 0; k < rows; ++k) {
    for (int64_t x = x0; x < W; ++x) {  // remainder columns
      float best = top[x] + diff[x] * y_lerps[k];
      int32_t arg = 0;
      for (int64_t c = 1; c < C; ++c) {
        const float v = top[c * W + x] + diff[c * W + x] * y_lerps[k];
        if (v > best) {
          best = v;
          arg = static_cast<int32_t>(c);
        }
      }
      out[k * W + x] = static_cast<OutT>(arg);
    }
  }
}

// Whether every value of the index (count int32) is source << 20 | position with a source that
// exists and a position inside it (cells16[i]: source i's cells, 0 past the last source): 8
// values a step, each source's size looked up by a permute (AVX2 clone where the CPU has it).
TAPLAB_AVX2_CLONES bool IndexInSources(const int32_t* idx, int64_t count, const int32_t* cells16) {
  typedef uint32_t V8U __attribute__((vector_size(32)));
  V8I lo, hi;
  std::memcpy(&lo, cells16, 32);
  std::memcpy(&hi, cells16 + 8, 32);
  const V8I zero = {0, 0, 0, 0, 0, 0, 0, 0}, seven = zero + 7, eight = zero + 8;
  const V8I mask = zero + ((1 << 20) - 1), last = zero + 15;
  V8I bad = zero;
  int64_t k = 0;
  for (; k + 8 <= count; k += 8) {
    V8I v;
    std::memcpy(&v, idx + k, 32);
    const V8I src = (V8I)((V8U)v >> 20);
    const V8I sel = src & seven;
    const V8I cells = (src & eight) != zero ? __builtin_shuffle(hi, sel) : __builtin_shuffle(lo, sel);
    bad |= (v < zero) | (src > last) | ((v & mask) >= cells);
  }
  bool ok = true;
  for (int l = 0; l < 8; ++l) ok = ok && bad[l] == 0;
  for (; k < count; ++k) {
    const int32_t v = idx[k];
    ok = ok && v >= 0 && (v >> 20) < 16 && (v & ((1 << 20) - 1)) < cells16[v >> 20];
  }
  return ok;
}

// The output size (H, W) from `size`, after the checks both upsample ops make on it and on the
// [N, h, w, C] map they upsample (named `what` in the messages).
template <typename OutT>
Status OutputSize(const Tensor& size, const char* what, const TensorShape& map, int64_t* H,
                  int64_t* W) {
  if (size.dims() != 1 || size.NumElements() != 2) {
    return errors::InvalidArgument("size must be a vector of 2 int32 (H, W), got shape ",
                                   size.shape().DebugString());
  }
  *H = size.vec<int32>()(0);
  *W = size.vec<int32>()(1);
  if (*H <= 0 || *W <= 0) {
    return errors::InvalidArgument("size must be positive (H, W), got (", *H, ", ", *W, ")");
  }
  if (map.dim_size(1) <= 0 || map.dim_size(2) <= 0 || map.dim_size(3) <= 0) {
    return errors::InvalidArgument(what, " height, width and channels must be positive, "
                                   "got shape ", map.DebugString());
  }
  const int64_t max_channels = std::is_same<OutT, uint8_t>::value ? 256 : 2147483647LL;
  if (map.dim_size(3) > max_channels) {
    return errors::InvalidArgument(what, " has ", map.dim_size(3), " channels, too many for ",
                                   std::is_same<OutT, uint8_t>::value ? "uint8" : "int32",
                                   " labels (out_type)");
  }
  return OkStatus();
}

// The checks both plain upsample ops make on logits (input 0) and size (input 1), then their
// labels output 0, [N, H, W].
template <typename OutT>
Status LabelsOutput(OpKernelContext* ctx, int64_t* H, int64_t* W, Tensor** output) {
  const Tensor& logits = ctx->input(0);
  if (logits.dims() != 4) {
    return errors::InvalidArgument("logits must be rank 4 [N, h, w, C], got shape ",
                                   logits.shape().DebugString());
  }
  TF_RETURN_IF_ERROR(OutputSize<OutT>(ctx->input(1), "logits", logits.shape(), H, W));
  return ctx->allocate_output(0, TensorShape({logits.dim_size(0), *H, *W}), output);
}

// Runs the cells kernel's plan over all output rows on TF's CPU pool: bands of rows, several per
// thread (the shortcut makes some bands much cheaper than others, so smaller bands balance
// better; each band prepares its first two source rows itself, a small cost next to a band's
// ~s x the work of one source row).
template <typename OutT>
void RunCells(OpKernelContext* ctx, const ::taplab::upsample_argmax::CellUpsampler<OutT>& plan,
              const ::taplab::upsample_argmax::Source& src, OutT* out) {
  const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
  const int64_t rows = plan.rows();
  const int64_t bands = std::max<int64_t>(1, std::min<int64_t>(rows / 8, 8 * threads->num_threads));
  threads->workers->ParallelFor(bands, /*cost_per_unit=*/1 << 30, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      plan.Rows(src, out, plan.GroupStart(b * rows / bands),
                plan.GroupStart((b + 1) * rows / bands));
    }
  });
}

// The cells kernel's plan for the last sizes a kernel instance saw (its tables take ~25 us to
// build at 1024x2048, every frame otherwise). Compute may run concurrently: a plan is shared and
// read-only once built.
template <typename OutT>
class PlanCache {
 public:
  std::shared_ptr<const ::taplab::upsample_argmax::CellUpsampler<OutT>> Get(
      int64_t N, int64_t h, int64_t w, int64_t C, int64_t H, int64_t W) {
    const std::array<int64_t, 6> key = {N, h, w, C, H, W};
    std::lock_guard<std::mutex> lock(mu_);
    if (plan_ == nullptr || key != key_) {
      plan_ = std::make_shared<const ::taplab::upsample_argmax::CellUpsampler<OutT>>(N, h, w, C,
                                                                                    H, W);
      key_ = key;
    }
    return plan_;
  }

 private:
  std::mutex mu_;
  std::array<int64_t, 6> key_{};
  std::shared_ptr<const ::taplab::upsample_argmax::CellUpsampler<OutT>> plan_;
};

}  // namespace

template <typename OutT>
class UpsampleArgmaxOp : public OpKernel {
 public:
  explicit UpsampleArgmaxOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::string method;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("method", &method));
    cells_ = method == "cells";
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& logits = ctx->input(0);
    int64_t H, W;
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, LabelsOutput<OutT>(ctx, &H, &W, &output));
    const int64_t N = logits.dim_size(0), h = logits.dim_size(1), w = logits.dim_size(2),
                  C = logits.dim_size(3);
    if (N == 0) return;
    const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
    if (cells_) {
      ::taplab::upsample_argmax::Source src;
      src.logits = logits.flat<float>().data();
      RunCells(ctx, *plans_.Get(N, h, w, C, H, W), src, output->flat<OutT>().data());
      return;
    }
    const std::vector<Weights> ys = InterpolationWeights(H, h);
    const std::vector<Weights> xs = InterpolationWeights(W, w);
    std::vector<float> y_lerp(H);
    for (int64_t y = 0; y < H; ++y) y_lerp[y] = ys[y].lerp;
    std::vector<int32_t> x_lower(W), x_upper(W);  // int32: lets AVX2 gather them
    std::vector<float> x_lerp(W);
    for (int64_t x = 0; x < W; ++x) {
      x_lower[x] = static_cast<int32_t>(xs[x].lower);
      x_upper[x] = static_cast<int32_t>(xs[x].upper);
      x_lerp[x] = xs[x].lerp;
    }
    const float* in = logits.flat<float>().data();
    OutT* out = output->flat<OutT>().data();

    auto band = [&](int64_t begin, int64_t end) {
      // top / bottom: x-interpolated input rows (keys n * h + row); diff = bottom - top.
      std::unique_ptr<float[]> row_a(new float[C * W]), row_b(new float[C * W]),
          diff(new float[C * W]), scratch(new float[C * w]);
      auto interpolate = [&](int64_t key, float* dst) {
        InterpolateRowX(in + key * w * C, x_lower.data(), x_upper.data(), x_lerp.data(), w, W, C,
                        scratch.get(), dst);
      };
      float* top = row_a.get();
      float* bottom = row_b.get();
      int64_t top_key = -1, bottom_key = -1, diff_key_top = -1, diff_key_bottom = -1;
      for (int64_t r = begin; r < end;) {
        const int64_t n = r / H, y = r % H;
        // Output rows r .. r_end - 1 (same image) interpolate between the same two input rows.
        int64_t r_end = r + 1;
        while (r_end < end && r_end % H != 0 && ys[r_end % H].lower == ys[y].lower &&
               ys[r_end % H].upper == ys[y].upper) {
          ++r_end;
        }
        const int64_t want_top = n * h + ys[y].lower, want_bottom = n * h + ys[y].upper;
        if (want_top == bottom_key && want_top != top_key) {  // moving down: reuse
          std::swap(top, bottom);
          std::swap(top_key, bottom_key);
        }
        if (top_key != want_top) {
          interpolate(want_top, top);
          top_key = want_top;
        }
        if (bottom_key != want_bottom) {
          if (want_bottom == top_key) {
            std::copy(top, top + C * W, bottom);
          } else {
            interpolate(want_bottom, bottom);
          }
          bottom_key = want_bottom;
        }
        if (diff_key_top != top_key || diff_key_bottom != bottom_key) {
          for (int64_t k = 0; k < C * W; ++k) diff[k] = bottom[k] - top[k];
          diff_key_top = top_key;
          diff_key_bottom = bottom_key;
        }
        ArgmaxRows(top, diff.get(), W, C, y_lerp.data() + y, r_end - r, out + r * W);
        r = r_end;
      }
    };
    // Contiguous bands of output rows, a few per thread: each band pays for its own row buffers
    // and first two x-interpolated rows, so bands should be few and large.
    const int64_t rows = N * H;
    const int64_t bands = std::max<int64_t>(1, std::min<int64_t>(rows, 2 * threads->num_threads));
    threads->workers->ParallelFor(bands, /*cost_per_unit=*/1 << 30, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) band(b * rows / bands, (b + 1) * rows / bands);
    });
  }

 private:
  bool cells_;  // method == 'cells'
  PlanCache<OutT> plans_;
};

REGISTER_KERNEL_BUILDER(Name("TapLab>UpsampleArgmax")
                            .Device(DEVICE_CPU)
                            .HostMemory("size")
                            .TypeConstraint<int32>("out_type"),
                        UpsampleArgmaxOp<int32_t>);
REGISTER_KERNEL_BUILDER(Name("TapLab>UpsampleArgmax")
                            .Device(DEVICE_CPU)
                            .HostMemory("size")
                            .TypeConstraint<uint8>("out_type"),
                        UpsampleArgmaxOp<uint8_t>);

// TapLab>UpsampleArgmaxWithStats: UpsampleArgmax (cells) and ArgmaxStats of the same logits in
// one pass over them: the cells kernel computes every source row's statistics for its shortcut
// anyway (Slot::Prepare), and writes them out as it does (StatsOut). A keyframe's output step
// and the start of FFW's indexed chain from it (pipeline.propagation) read the logits once.
template <typename OutT>
class UpsampleArgmaxWithStatsOp : public OpKernel {
 public:
  explicit UpsampleArgmaxWithStatsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    namespace ua = ::taplab::upsample_argmax;
    const Tensor& logits = ctx->input(0);
    int64_t H, W;
    Tensor *output = nullptr, *arg = nullptr, *margin = nullptr, *mag = nullptr;
    OP_REQUIRES_OK(ctx, LabelsOutput<OutT>(ctx, &H, &W, &output));
    const int64_t N = logits.dim_size(0), h = logits.dim_size(1), w = logits.dim_size(2),
                  C = logits.dim_size(3);
    const TensorShape plane({N, h, w});
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, plane, &arg));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, plane, &margin));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, plane, &mag));
    if (N == 0) return;
    std::unique_ptr<std::atomic<uint8_t>[]> claimed(new std::atomic<uint8_t>[N * h]);
    for (int64_t k = 0; k < N * h; ++k) claimed[k].store(0, std::memory_order_relaxed);
    ua::StatsOut stats;
    stats.arg = arg->flat<int32>().data();
    stats.margin = margin->flat<float>().data();
    stats.mag = mag->flat<float>().data();
    stats.claimed = claimed.get();
    ua::Source src;
    src.logits = logits.flat<float>().data();
    src.stats_out = &stats;
    RunCells(ctx, *plans_.Get(N, h, w, C, H, W), src, output->flat<OutT>().data());
    // Rows the upsampling never read (a downsampling may skip some): computed here.
    const int64_t w_pad = (w + 7) / 8 * 8 + 8;
    std::unique_ptr<float[]> t;
    for (int64_t k = 0; k < N * h; ++k) {
      if (claimed[k].load(std::memory_order_relaxed)) continue;
      if (!t) t.reset(new float[C * w_pad]());
      ua::ArgmaxStatsRows(src.logits + k * w * C, 1, w, C, w_pad, t.get(), stats.arg + k * w,
                          stats.margin + k * w, stats.mag + k * w);
    }
  }

 private:
  PlanCache<OutT> plans_;
};

REGISTER_KERNEL_BUILDER(Name("TapLab>UpsampleArgmaxWithStats")
                            .Device(DEVICE_CPU)
                            .HostMemory("size")
                            .TypeConstraint<int32>("out_type"),
                        UpsampleArgmaxWithStatsOp<int32_t>);
REGISTER_KERNEL_BUILDER(Name("TapLab>UpsampleArgmaxWithStats")
                            .Device(DEVICE_CPU)
                            .HostMemory("size")
                            .TypeConstraint<uint8>("out_type"),
                        UpsampleArgmaxWithStatsOp<uint8_t>);

// TapLab>ArgmaxStats: per source pixel, what the cells kernel's shortcut reads (argmax, or -1
// where it may never shortcut; margin over the second channel; largest |logit|), computed once
// for logits that an indexed map (TapLab>UpsampleArgmaxIndexed) reads many times.
class ArgmaxStatsOp : public OpKernel {
 public:
  explicit ArgmaxStatsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& logits = ctx->input(0);
    OP_REQUIRES(ctx, logits.dims() == 4,
                errors::InvalidArgument("logits must be rank 4 [N, h, w, C], got shape ",
                                        logits.shape().DebugString()));
    const int64_t N = logits.dim_size(0), h = logits.dim_size(1), w = logits.dim_size(2),
                  C = logits.dim_size(3);
    OP_REQUIRES(ctx, C > 0, errors::InvalidArgument("logits must have channels, got shape ",
                                                    logits.shape().DebugString()));
    const TensorShape shape({N, h, w});
    Tensor *arg = nullptr, *margin = nullptr, *mag = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, shape, &arg));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, shape, &margin));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, shape, &mag));
    const int64_t rows = N * h;
    if (rows == 0 || w == 0) return;
    const int64_t w_pad = (w + 7) / 8 * 8 + 8;
    const float* in = logits.flat<float>().data();
    int32_t* a = arg->flat<int32>().data();
    float* m = margin->flat<float>().data();
    float* g = mag->flat<float>().data();
    auto stats = [&](int64_t r0, int64_t r1) {
      std::unique_ptr<float[]> t(new float[C * w_pad]());
      ::taplab::upsample_argmax::ArgmaxStatsRows(in + r0 * w * C, r1 - r0, w, C, w_pad, t.get(),
                                                 a + r0 * w, m + r0 * w, g + r0 * w);
    };
    // Small maps on the calling thread, where the pool's wake-ups cost more than the split
    // saves. An RGC crop's logits (128x128x19 at 1024x2048) take the pool: right after phi, in
    // the all-three loop on AMD Zen 5, 0.535 -> 0.51 ms (it was slower on the pool before the
    // rows' transposition by shuffles, on an Intel Xeon)
    if (rows * w * C <= (int64_t{1} << 16)) {
      stats(0, rows);
      return;
    }
    const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
    threads->workers->ParallelFor(rows, /*cost_per_unit=*/w * C * 4, stats);
  }
};

REGISTER_KERNEL_BUILDER(Name("TapLab>ArgmaxStats").Device(DEVICE_CPU), ArgmaxStatsOp);

// TapLab>UpsampleArgmaxIndexed: UpsampleArgmax (cells) of the map whose pixel p of batch item n is
// source[n, index[n, p]], from source's ArgmaxStats, without materialising that map; with
// key_labels (source's own labels), the cells the index maps onto adjacent source pixels copy
// theirs (upsample_argmax.h, Source).
template <typename OutT>
class UpsampleArgmaxIndexedOp : public OpKernel {
 public:
  explicit UpsampleArgmaxIndexedOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("feature_stride", &feature_stride_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("block_size", &block_size_));
  }

  void Compute(OpKernelContext* ctx) override {
    namespace ua = ::taplab::upsample_argmax;
    OpInputList sources, args, margins, mags;
    OP_REQUIRES_OK(ctx, ctx->input_list("sources", &sources));
    OP_REQUIRES_OK(ctx, ctx->input_list("args", &args));
    OP_REQUIRES_OK(ctx, ctx->input_list("margins", &margins));
    OP_REQUIRES_OK(ctx, ctx->input_list("magnitudes", &mags));
    const Tensor& index = ctx->input(4 * sources.size());
    const Tensor& size = ctx->input(4 * sources.size() + 1);
    const Tensor& key_labels = ctx->input(4 * sources.size() + 2);
    const Tensor& prev_index = ctx->input(4 * sources.size() + 3);
    const Tensor& prev_labels = ctx->input(4 * sources.size() + 4);
    const Tensor& motion = ctx->input(4 * sources.size() + 5);
    const int num_sources = sources.size();
    OP_REQUIRES(ctx, num_sources <= ua::kMaxSources,
                errors::InvalidArgument("at most ", ua::kMaxSources, " sources, got ",
                                        num_sources));
    const Tensor& source = sources[0];
    OP_REQUIRES(ctx, source.dims() == 4,
                errors::InvalidArgument("source must be rank 4 [N, h, w, C], got shape ",
                                        source.shape().DebugString()));
    const int64_t N = source.dim_size(0), h = source.dim_size(1), w = source.dim_size(2),
                  C = source.dim_size(3);
    // [N, h, w, 1] too: the map as the warp moves it (TapLab>MvWarp on int32), same memory.
    OP_REQUIRES(ctx,
                index.shape() == TensorShape({N, h, w}) ||
                    index.shape() == TensorShape({N, h, w, 1}),
                errors::InvalidArgument("index must be [N, h, w] = ",
                                        TensorShape({N, h, w}).DebugString(),
                                        " (source 0's) or [N, h, w, 1], got ",
                                        index.shape().DebugString()));
    ua::Source src;
    for (int i = 0; i < num_sources; ++i) {
      const Tensor& s = sources[i];
      OP_REQUIRES(ctx, s.dims() == 4 && s.dim_size(0) == N && s.dim_size(3) == C,
                  errors::InvalidArgument("source ", i, " must be [N, h_i, w_i, C] with N = ", N,
                                          " and C = ", C, ", got shape ",
                                          s.shape().DebugString()));
      const TensorShape plane({N, s.dim_size(1), s.dim_size(2)});
      for (const Tensor* t : {&args[i], &margins[i], &mags[i]}) {
        OP_REQUIRES(ctx, t->shape() == plane,
                    errors::InvalidArgument("the statistics of source ", i, " must be ",
                                            plane.DebugString(), ", got ",
                                            t->shape().DebugString()));
      }
      const int64_t cells = s.dim_size(1) * s.dim_size(2);
      OP_REQUIRES(ctx, cells <= (int64_t{1} << ua::kSourceShift),
                  errors::InvalidArgument("source ", i, " has ", cells, " pixels, more than 2^",
                                          ua::kSourceShift, " an index can address"));
      ua::PoolSource& p = src.pool[i];
      p.logits = s.flat<float>().data();
      p.arg = args[i].flat<int32>().data();
      p.margin = margins[i].flat<float>().data();
      p.mag = mags[i].flat<float>().data();
      p.cells = cells;
    }
    int64_t H, W;
    OP_REQUIRES_OK(ctx, OutputSize<OutT>(size, "source", source.shape(), &H, &W));
    const int32_t* idx = index.flat<int32>().data();
    const int64_t count = N * h * w;
    // every value a position inside an existing source: one vectorised pass decides, the
    // per-value check below names a bad one
    int32_t cells16[16] = {0};
    for (int i = 0; i < num_sources; ++i) cells16[i] = static_cast<int32_t>(src.pool[i].cells);
    const bool valid = IndexInSources(idx, count, cells16);
    for (int64_t k = 0; !valid && k < count; ++k) {
      const int64_t i = idx[k] >> ua::kSourceShift, q = idx[k] & ua::kPositionMask;
      OP_REQUIRES(ctx, idx[k] >= 0 && i < num_sources && q < src.pool[i].cells,
                  errors::InvalidArgument("index[", k, "] = ", idx[k], " (source ", i,
                                          ", position ", q, ") is outside the sources"));
    }
    const bool has_key = key_labels.NumElements() > 0;
    if (has_key) {
      OP_REQUIRES(ctx, key_labels.dims() == 3 && key_labels.dim_size(0) == N &&
                       key_labels.dim_size(1) <= H && key_labels.dim_size(2) <= W,
                  errors::InvalidArgument("key_labels must be [N, key_h <= H, key_w <= W] = [", N,
                                          ", <= ", H, ", <= ", W, "] or empty, got shape ",
                                          key_labels.shape().DebugString()));
    }
    // The previous frame (all three inputs given, or none): block offsets as TapLab>MvWarp's
    // nearest warp computes them (mv_warp.h), so that the kernel finds where each cell's values
    // were; the values themselves are compared there, so no offset can copy a wrong label.
    const bool has_prev = prev_index.NumElements() > 0;
    std::vector<int32_t> block_y, block_x, shift;
    if (has_prev) {
      OP_REQUIRES(ctx,
                  (prev_index.shape() == TensorShape({N, h, w}) ||
                   prev_index.shape() == TensorShape({N, h, w, 1})) &&
                      prev_labels.dims() == 3 && prev_labels.dim_size(0) == N &&
                      prev_labels.dim_size(1) <= H && prev_labels.dim_size(2) <= W &&
                      motion.dims() == 4 && motion.dim_size(0) == N &&
                      motion.dim_size(1) > 0 && motion.dim_size(2) > 0 &&
                      motion.dim_size(3) == 2 && feature_stride_ > 0 && block_size_ > 0,
                  errors::InvalidArgument(
                      "the previous frame needs prev_index like index, prev_labels [N, <= H, "
                      "<= W], motion [N, grid_h, grid_w, 2] and feature_stride, block_size > 0; "
                      "got ", prev_index.shape().DebugString(), ", ",
                      prev_labels.shape().DebugString(), ", ", motion.shape().DebugString()));
      const int64_t gh = motion.dim_size(1), gw = motion.dim_size(2);
      block_y.resize(h);
      block_x.resize(w);
      for (int64_t i = 0; i < h; ++i) {
        block_y[i] = static_cast<int32_t>(BlockIndex(i, feature_stride_, block_size_, gh));
      }
      for (int64_t j = 0; j < w; ++j) {
        block_x[j] = static_cast<int32_t>(BlockIndex(j, feature_stride_, block_size_, gw));
      }
      const float* mv = motion.flat<float>().data();  // (dx, dy) per block
      shift.resize(N * gh * gw * 2);
      for (int64_t k = 0; k < N * gh * gw; ++k) {  // ~20 us for 64 x 128 blocks
        shift[2 * k] = ComputeAxisShift(mv[2 * k + 1], feature_stride_, h).nearest;
        shift[2 * k + 1] = ComputeAxisShift(mv[2 * k], feature_stride_, w).nearest;
      }
      src.prev.index = prev_index.flat<int32>().data();
      src.prev.labels = prev_labels.flat<OutT>().data();
      src.prev.labels_h = prev_labels.dim_size(1);
      src.prev.labels_w = prev_labels.dim_size(2);
      src.prev.block_y = block_y.data();
      src.prev.block_x = block_x.data();
      src.prev.shift = shift.data();
      src.prev.grid_h = gh;
      src.prev.grid_w = gw;
    }
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({N, H, W}), &output));
    if (N == 0) return;
    src.index = idx;
    if (has_key) {
      src.key_labels = key_labels.flat<OutT>().data();
      src.key_h = key_labels.dim_size(1);
      src.key_w = key_labels.dim_size(2);
    }
    RunCells(ctx, *plans_.Get(N, h, w, C, H, W), src, output->flat<OutT>().data());
  }

 private:
  int64_t feature_stride_, block_size_;
  PlanCache<OutT> plans_;
};

REGISTER_KERNEL_BUILDER(Name("TapLab>UpsampleArgmaxIndexed")
                            .Device(DEVICE_CPU)
                            .HostMemory("size")
                            .TypeConstraint<int32>("out_type"),
                        UpsampleArgmaxIndexedOp<int32_t>);
REGISTER_KERNEL_BUILDER(Name("TapLab>UpsampleArgmaxIndexed")
                            .Device(DEVICE_CPU)
                            .HostMemory("size")
                            .TypeConstraint<uint8>("out_type"),
                        UpsampleArgmaxIndexedOp<uint8_t>);

}  // namespace taplab
}  // namespace tensorflow
