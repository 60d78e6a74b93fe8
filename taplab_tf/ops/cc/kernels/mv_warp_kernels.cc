// CPU kernels of TapLab>MvWarp and TapLab>MvWarpGrad.
//
// Forward: a table of per-block shifts (integer offset + fraction per axis, see mv_warp.h), then
// one pass over output rows (N*h of them) on the CPU device's intra-op thread pool. Each output
// pixel finds its block from precomputed row/column block indices (no dense motion map), derives
// its taps with integer arithmetic and copies/interpolates its C contiguous channels.
// Gradient: scatter-add; sharded over (batch item, channel slice) so that no two threads ever add
// into the same element (no atomics, deterministic).
// A CUDA version would go in mv_warp_kernels.cu.cc under #if GOOGLE_CUDA, implementing the same
// functors (one thread per output element for the forward, atomicAdd for the gradient).
#include <cmath>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "cpu_dispatch.h"
#include "mv_warp.h"
#include "mv_warp_cpu.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/register_types.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/threadpool.h"

namespace tensorflow {
namespace taplab {

using CPUDevice = Eigen::ThreadPoolDevice;

namespace {

// Arithmetic type: float for half and float, double for double (so gradient checks in float64
// see a float64 forward).
template <typename T>
using AccT = typename std::conditional<std::is_same<T, double>::value, double, float>::type;

thread::ThreadPool* Workers(OpKernelContext* ctx) {
  return ctx->device()->tensorflow_cpu_worker_threads()->workers;
}

int NumThreads(OpKernelContext* ctx) {
  return ctx->device()->tensorflow_cpu_worker_threads()->num_threads;
}

// Work this small runs on the calling thread: handing it to the pool costs more than it saves.
// Measured on 2 cores (KVM): the nearest warp of FFW's int32 index map (256x512, 2^17 values)
// took 0.48 ms through the pool and 0.27 ms on the calling thread (the pool's wake-ups); the
// logits (19x more values) still gain from the pool.
constexpr int64_t kInlineValues = int64_t{1} << 18;

// Copy of a pixel's or a block run's channels. Short spans: an inline loop, kept from being turned
// back into a memcpy call (at 19 channels the call costs more than the copy); long spans: memcpy
// (libc's wide-vector copy beats the baseline-ISA loop there).
template <typename T>
__attribute__((optimize("no-tree-loop-distribute-patterns"))) inline void CopySpan(
    const T* __restrict src, T* __restrict dst, int64_t n) {
  if (n * static_cast<int64_t>(sizeof(T)) >= 256) {
    std::memcpy(dst, src, n * sizeof(T));
    return;
  }
  for (int64_t k = 0; k < n; ++k) dst[k] = src[k];
}

// One output row of the bilinear warp. Runs of columns in the same block share the y taps (one
// AxisBilinear per run); the channel loop is the tfa lerp form. AVX2 clone where available.
template <typename T>
TAPLAB_AVX2_CLONES void BilinearRow(const WarpParams& p, const BlockShift* srow,
                                    const int64_t* block_x, const int64_t* run_end, int64_t i,
                                    const T* src, const T* zeros, T* dst) {
  using A = AccT<T>;
  const int64_t h = p.height, w = p.width, C = p.channels;
  for (int64_t j = 0; j < w;) {
    const int64_t end = run_end[j];
    const BlockShift& sh = srow[block_x[j]];
    int64_t y0, y1;
    float ayf;
    AxisBilinear(i, sh.y, h, p.border, &y0, &y1, &ayf);
    const T* row0 = y0 < 0 ? nullptr : src + y0 * w * C;
    const T* row1 = y1 < 0 ? nullptr : src + y1 * w * C;
    const A ay = static_cast<A>(ayf);
    for (; j < end; ++j) {
      int64_t x0, x1;
      float axf;
      AxisBilinear(j, sh.x, w, p.border, &x0, &x1, &axf);
      const T* __restrict tl = (row0 && x0 >= 0) ? row0 + x0 * C : zeros;
      const T* __restrict tr = (row0 && x1 >= 0) ? row0 + x1 * C : zeros;
      const T* __restrict bl = (row1 && x0 >= 0) ? row1 + x0 * C : zeros;
      const T* __restrict br = (row1 && x1 >= 0) ? row1 + x1 * C : zeros;
      T* __restrict o = dst + j * C;
      const A ax = static_cast<A>(axf);
      for (int64_t c = 0; c < C; ++c) {
        const A vtl = static_cast<A>(tl[c]), vtr = static_cast<A>(tr[c]);
        const A vbl = static_cast<A>(bl[c]), vbr = static_cast<A>(br[c]);
        const A top = ax * (vtr - vtl) + vtl;
        const A bottom = ax * (vbr - vbl) + vbl;
        o[c] = static_cast<T>(ay * (bottom - top) + top);
      }
    }
  }
}

// Per-call tables: the block of every feature row / column, and every block's shift (computed
// once per block, in parallel; the per-pixel work is then integer arithmetic and copies).
struct WarpTables {
  std::vector<int64_t> block_y, block_x;
  std::unique_ptr<BlockShift[]> shifts;  // [N, Hb, Wb], filled by BuildTables
};

void BuildTables(OpKernelContext* ctx, const WarpParams& p, const float* motion, WarpTables* t) {
  t->block_y.resize(p.height);
  t->block_x.resize(p.width);
  for (int64_t i = 0; i < p.height; ++i) t->block_y[i] = BlockIndex(i, p.stride, p.block, p.grid_h);
  for (int64_t j = 0; j < p.width; ++j) t->block_x[j] = BlockIndex(j, p.stride, p.block, p.grid_w);
  const int64_t blocks = p.batch * p.grid_h * p.grid_w;
  t->shifts.reset(new BlockShift[blocks]);
  BlockShift* shifts = t->shifts.get();
  auto compute = [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      shifts[k] = ComputeBlockShift(p, motion[2 * k], motion[2 * k + 1]);
    }
  };
  if (blocks <= kInlineValues / 8) {  // 2^15 blocks: ~0.1 ms here
    compute(0, blocks);
  } else {
    Workers(ctx)->ParallelFor(blocks, 40, compute);
  }
}

}  // namespace

template <typename T>
struct MvWarpFunctor<CPUDevice, T> {
  void operator()(OpKernelContext* ctx, const WarpParams& p, const T* features,
                  const float* motion, T* output) {
    const int64_t h = p.height, w = p.width, C = p.channels;
    WarpTables tables;
    BuildTables(ctx, p, motion, &tables);
    const int64_t* block_y = tables.block_y.data();
    const int64_t* block_x = tables.block_x.data();
    const std::vector<T> zeros(C, T(0));
    const bool nearest = p.interpolation == Interpolation::kNearest;
    // run_end[j]: first column after j in another block.
    std::vector<int64_t> run_end(w);
    for (int64_t j = w - 1; j >= 0; --j) {
      run_end[j] = (j + 1 < w && block_x[j + 1] == block_x[j]) ? run_end[j + 1] : j + 1;
    }

    auto rows = [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t n = row / h;
        const int64_t i = row % h;
        const T* src = features + n * h * w * C;
        T* dst = output + row * w * C;
        const BlockShift* srow = tables.shifts.get() + (n * p.grid_h + block_y[i]) * p.grid_w;
        if (nearest) {
          // Runs of columns in the same block share the shift, so unless the run is clamped or
          // cut at the border its source is one contiguous span: one copy per run, not per pixel.
          for (int64_t j = 0; j < w;) {
            const int64_t end = run_end[j];
            const BlockShift& sh = srow[block_x[j]];
            const int64_t y = AxisNearest(i, sh.y, h, p.border);
            const int64_t x0 = j + sh.x.nearest;
            const int64_t x1 = end - 1 + sh.x.nearest;
            if (y >= 0 && x0 >= 0 && x1 < w) {
              const T* s = src + (y * w + x0) * C;
              CopySpan(s, dst + j * C, (end - j) * C);
            } else {
              for (int64_t jj = j; jj < end; ++jj) {
                const int64_t x = AxisNearest(jj, sh.x, w, p.border);
                const T* s = (y < 0 || x < 0) ? zeros.data() : src + (y * w + x) * C;
                CopySpan(s, dst + jj * C, C);
              }
            }
            j = end;
          }
          continue;
        }
        BilinearRow(p, srow, block_x, run_end.data(), i, src, zeros.data(), dst);
      }
    };
    if (nearest && p.batch * h * w * C <= kInlineValues) {
      rows(0, p.batch * h);
      return;
    }
    const int64_t cost_per_row = w * C * (nearest ? 2 : 12) + w * 30;
    Workers(ctx)->ParallelFor(p.batch * h, cost_per_row, rows);
  }
};

template <typename T>
struct MvWarpGradFunctor<CPUDevice, T> {
  void operator()(OpKernelContext* ctx, const WarpParams& p, const T* grad, const float* motion,
                  T* grad_features) {
    using A = AccT<T>;
    const int64_t h = p.height, w = p.width, C = p.channels;
    const int64_t plane = h * w * C;
    // Accumulate in A; for half that needs a temporary.
    A* acc = nullptr;
    Tensor acc_tensor;
    if (std::is_same<T, A>::value) {
      acc = reinterpret_cast<A*>(grad_features);
    } else {
      OP_REQUIRES_OK(ctx, ctx->allocate_temp(DataTypeToEnum<A>::value,
                                             TensorShape({p.batch * plane}), &acc_tensor));
      acc = acc_tensor.flat<A>().data();
    }
    WarpTables tables;
    BuildTables(ctx, p, motion, &tables);
    const int64_t* block_y = tables.block_y.data();
    const int64_t* block_x = tables.block_x.data();
    const bool nearest = p.interpolation == Interpolation::kNearest;

    // Units: (batch item, channel slice); each unit owns its slice of acc exclusively.
    const int64_t threads = std::max(1, NumThreads(ctx));
    const int64_t slices =
        std::min<int64_t>(C, std::max<int64_t>(1, (2 * threads + p.batch - 1) / p.batch));
    const int64_t slice = (C + slices - 1) / slices;
    auto units = [&](int64_t begin, int64_t end) {
      for (int64_t u = begin; u < end; ++u) {
        const int64_t n = u / slices;
        const int64_t c0 = (u % slices) * slice;
        const int64_t c1 = std::min(C, c0 + slice);
        A* dst = acc + n * plane;
        for (int64_t k = 0; k < h * w; ++k) {
          for (int64_t c = c0; c < c1; ++c) dst[k * C + c] = A(0);
        }
        if (c0 >= c1) continue;
        for (int64_t i = 0; i < h; ++i) {
          const BlockShift* srow = tables.shifts.get() + (n * p.grid_h + block_y[i]) * p.grid_w;
          for (int64_t j = 0; j < w; ++j) {
            const Sample sm = ComputeSample(p, srow[block_x[j]], i, j);
            const T* g = grad + n * plane + (i * w + j) * C;
            if (nearest) {
              if (sm.index[0] < 0) continue;
              A* d = dst + sm.index[0] * C;
              for (int64_t c = c0; c < c1; ++c) d[c] += static_cast<A>(g[c]);
              continue;
            }
            const A ay = static_cast<A>(sm.ay), ax = static_cast<A>(sm.ax);
            const A weight[4] = {(A(1) - ay) * (A(1) - ax), (A(1) - ay) * ax, ay * (A(1) - ax),
                                 ay * ax};
            for (int t = 0; t < 4; ++t) {
              if (sm.index[t] < 0 || weight[t] == A(0)) continue;
              A* d = dst + sm.index[t] * C;
              const A wt = weight[t];
              for (int64_t c = c0; c < c1; ++c) d[c] += wt * static_cast<A>(g[c]);
            }
          }
        }
      }
    };
    const int64_t cost = h * w * (slice * (nearest ? 2 : 8) + 40);
    Workers(ctx)->ParallelFor(p.batch * slices, cost, units);
    if (!std::is_same<T, A>::value) {
      const int64_t total = p.batch * plane;
      Workers(ctx)->ParallelFor(total, 2, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) grad_features[k] = static_cast<T>(acc[k]);
      });
    }
  }
};

// The checks of TapLab>MvWarp's inputs (shapes, the grid against the map, finite vectors) and the
// warp's parameters from them: one place for MvWarp, MvWarpGrad and IndexTakeRegion's warp.
Status CheckWarp(const Tensor& features, const Tensor& motion, int64_t stride, int64_t block,
                 Interpolation interpolation, Border border, const char* fname, WarpParams* out) {
  if (features.dims() != 4) {
    return errors::InvalidArgument(fname, " must be rank 4 [N, h, w, C], got shape ",
                                   features.shape().DebugString());
  }
  if (motion.dims() != 4) {
    return errors::InvalidArgument(
        "motion_vectors must be rank 4 [N, H/block_size, W/block_size, 2], got shape ",
        motion.shape().DebugString());
  }
  if (motion.dim_size(3) != 2) {
    return errors::InvalidArgument("motion_vectors last dimension must be 2 (dx, dy), got shape ",
                                   motion.shape().DebugString());
  }
  if (motion.dim_size(0) != features.dim_size(0)) {
    return errors::InvalidArgument("motion_vectors batch size ", motion.dim_size(0),
                                   " does not match ", fname, " batch size ",
                                   features.dim_size(0));
  }
  WarpParams& p = *out;
  p.batch = features.dim_size(0);
  p.height = features.dim_size(1);
  p.width = features.dim_size(2);
  p.channels = features.dim_size(3);
  p.grid_h = motion.dim_size(1);
  p.grid_w = motion.dim_size(2);
  p.stride = stride;
  p.block = block;
  p.interpolation = interpolation;
  p.border = border;
  if (p.height <= 0 || p.width <= 0) {
    return errors::InvalidArgument(fname, " height and width must be positive, got shape ",
                                   features.shape().DebugString());
  }
  if (p.height >= (int64_t{1} << 30) || p.width >= (int64_t{1} << 30)) {
    return errors::InvalidArgument(fname, " height and width must be below 2^30, got shape ",
                                   features.shape().DebugString());
  }
  if (p.grid_h <= 0 || p.grid_w <= 0) {
    return errors::InvalidArgument("motion_vectors grid must be non-empty, got shape ",
                                   motion.shape().DebugString());
  }
  // The grid and the feature map must describe the same frame: the grid spans Hb*B input pixels,
  // the feature map h*s; partial edge blocks and feature-map padding leave a difference below
  // s + B, which block-index clamping absorbs. Anything larger is a wrong stride or grid.
  const int64_t tol = p.stride + p.block;
  if (std::abs(p.height * p.stride - p.grid_h * p.block) >= tol ||
      std::abs(p.width * p.stride - p.grid_w * p.block) >= tol) {
    return errors::InvalidArgument(
        "motion_vectors grid ", p.grid_h, "x", p.grid_w, " (block_size ", p.block, ", spans ",
        p.grid_h * p.block, "x", p.grid_w * p.block, " input pixels) does not cover ", fname, " ",
        p.height, "x", p.width, " at feature_stride ", p.stride, " (spans ", p.height * p.stride,
        "x", p.width * p.stride, "); they must agree to within feature_stride + block_size");
  }
  const float* mv = motion.flat<float>().data();
  const int64_t mv_count = motion.NumElements();
  for (int64_t k = 0; k < mv_count; ++k) {
    if (!std::isfinite(mv[k])) {
      const int64_t comp = k % 2, bx = (k / 2) % p.grid_w, by = (k / 2 / p.grid_w) % p.grid_h,
                    n = k / 2 / p.grid_w / p.grid_h;
      return errors::InvalidArgument("motion_vectors contains a non-finite value (", mv[k],
                                     ") at [", n, ", ", by, ", ", bx, ", ", comp, "]");
    }
  }
  return OkStatus();
}

// TapLab>MvWarp (kGrad = false) and TapLab>MvWarpGrad (kGrad = true): same checks, same attrs.
template <typename T, bool kGrad>
class MvWarpOp : public OpKernel {
 public:
  explicit MvWarpOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("feature_stride", &stride_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("block_size", &block_));
    std::string interpolation, border;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("interpolation", &interpolation));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("border", &border));
    OP_REQUIRES(ctx, stride_ >= 1,
                errors::InvalidArgument("feature_stride must be >= 1, got ", stride_));
    OP_REQUIRES(ctx, block_ >= 1, errors::InvalidArgument("block_size must be >= 1, got ", block_));
    interpolation_ =
        interpolation == "bilinear" ? Interpolation::kBilinear : Interpolation::kNearest;
    border_ = border == "zeros" ? Border::kZeros : Border::kClamp;
    constexpr bool kIsFloat = !std::is_integral<T>::value;  // half, float, double
    OP_REQUIRES(ctx, kIsFloat || interpolation_ == Interpolation::kNearest,
                errors::InvalidArgument("interpolation 'bilinear' needs float features; an "
                                        "int32 map (an index) warps with 'nearest' only"));
  }

  void Compute(OpKernelContext* ctx) override {
    const char* fname = kGrad ? "grad" : "features";
    const Tensor& features = ctx->input(0);
    const Tensor& motion = ctx->input(1);
    WarpParams p;
    OP_REQUIRES_OK(ctx, CheckWarp(features, motion, stride_, block_, interpolation_, border_, fname,
                                  &p));
    const float* mv = motion.flat<float>().data();
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, features.shape(), &output));
    if (output->NumElements() == 0) return;
    if constexpr (kGrad) {
      MvWarpGradFunctor<CPUDevice, T>()(ctx, p, features.flat<T>().data(), mv,
                                        output->flat<T>().data());
    } else {
      MvWarpFunctor<CPUDevice, T>()(ctx, p, features.flat<T>().data(), mv,
                                    output->flat<T>().data());
    }
  }

 private:
  int64_t stride_ = 1;
  int64_t block_ = 16;
  Interpolation interpolation_ = Interpolation::kNearest;
  Border border_ = Border::kClamp;
};

#define TAPLAB_REGISTER_MV_WARP(T)                                                        \
  REGISTER_KERNEL_BUILDER(Name("TapLab>MvWarp").Device(DEVICE_CPU).TypeConstraint<T>("T"), \
                          MvWarpOp<T, false>);                                            \
  REGISTER_KERNEL_BUILDER(                                                                \
      Name("TapLab>MvWarpGrad").Device(DEVICE_CPU).TypeConstraint<T>("T"), MvWarpOp<T, true>);

TAPLAB_REGISTER_MV_WARP(Eigen::half);
TAPLAB_REGISTER_MV_WARP(float);
TAPLAB_REGISTER_MV_WARP(double);
#undef TAPLAB_REGISTER_MV_WARP
// An int32 map (FFW's index map, pipeline.propagation.IndexedLogits) moves like logits under the
// nearest warp: its values are copied, never mixed. No gradient (an index is not differentiable).
REGISTER_KERNEL_BUILDER(Name("TapLab>MvWarp").Device(DEVICE_CPU).TypeConstraint<int32>("T"),
                        MvWarpOp<int32, false>);

Status WarpIndexMap(OpKernelContext* ctx, const Tensor& index, const Tensor& motion,
                    int64_t stride, int64_t block, int32_t* out) {
  WarpParams p;
  TF_RETURN_IF_ERROR(CheckWarp(index, motion, stride, block, Interpolation::kNearest,
                               Border::kClamp, "index", &p));
  if (index.NumElements() > 0) {
    MvWarpFunctor<CPUDevice, int32>()(ctx, p, index.flat<int32>().data(),
                                      motion.flat<float>().data(), out);
  }
  return OkStatus();
}

}  // namespace taplab
}  // namespace tensorflow
