// CPU kernel of TapLab>UpsampleArgmax: argmax_c(resize_bilinear(logits, (H, W), half-pixel centres))
// without materialising the [N, H, W, C] upsampled tensor.
//
// Arithmetic is TF's ResizeBilinear (resize_bilinear_op.cc) operation for operation, so results are
// bit-identical (the library is built with -ffp-contract=off):
//   in = (out + 0.5) * (in_size / out_size) - 0.5; lower = max(floor(in), 0);
//   upper = min(ceil(in), in_size - 1); lerp = in - floor(in)
//   top = tl + (tr - tl) * x_lerp; bottom = bl + (br - bl) * x_lerp; v = top + (bottom - top) * y_lerp
// Separable evaluation: each thread handles a band of output rows; for an output row it needs the
// x-interpolated input rows `lower` and `upper` ([C][W] channel-major, computed once per band and
// reused across the ~H/h output rows that share them), then one vectorisable pass over C channels
// keeps the running maximum and its channel (strict >, so ties go to the first channel, like
// tf.argmax). A CUDA version would go in upsample_argmax_kernels.cu.cc (one thread per output pixel).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/threadpool.h"

namespace tensorflow {
namespace taplab {
namespace {

struct CachedInterpolation {
  int64_t lower;
  int64_t upper;
  float lerp;
};

std::vector<CachedInterpolation> InterpolationWeights(int64_t out_size, int64_t in_size) {
  std::vector<CachedInterpolation> weights(out_size);
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

// dst[c * W + x] = x-interpolation of input row `row` ([w, C] channel-last) at output column x.
void InterpolateRowX(const float* row, const CachedInterpolation* xs, int64_t W, int64_t C,
                     float* dst) {
  for (int64_t x = 0; x < W; ++x) {
    const float* l = row + xs[x].lower * C;
    const float* r = row + xs[x].upper * C;
    const float lerp = xs[x].lerp;
    for (int64_t c = 0; c < C; ++c) dst[c * W + x] = l[c] + (r[c] - l[c]) * lerp;
  }
}

// Vertical interpolation and running argmax over channels for one output row.
__attribute__((target_clones("avx2", "default"))) void ArgmaxRow(
    const float* top, const float* bottom, int64_t W, int64_t C, float y_lerp, float* best,
    int32_t* out) {
  for (int64_t x = 0; x < W; ++x) {
    best[x] = top[x] + (bottom[x] - top[x]) * y_lerp;
    out[x] = 0;
  }
  for (int64_t c = 1; c < C; ++c) {
    const float* t = top + c * W;
    const float* b = bottom + c * W;
    const int32_t ci = static_cast<int32_t>(c);
    for (int64_t x = 0; x < W; ++x) {
      const float v = t[x] + (b[x] - t[x]) * y_lerp;
      const bool greater = v > best[x];
      best[x] = greater ? v : best[x];
      out[x] = greater ? ci : out[x];
    }
  }
}

}  // namespace

class UpsampleArgmaxOp : public OpKernel {
 public:
  explicit UpsampleArgmaxOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& logits = ctx->input(0);
    const Tensor& size = ctx->input(1);
    OP_REQUIRES(ctx, logits.dims() == 4,
                errors::InvalidArgument("logits must be rank 4 [N, h, w, C], got shape ",
                                        logits.shape().DebugString()));
    OP_REQUIRES(ctx, size.dims() == 1 && size.NumElements() == 2,
                errors::InvalidArgument("size must be a vector of 2 int32 (H, W), got shape ",
                                        size.shape().DebugString()));
    const int64_t N = logits.dim_size(0), h = logits.dim_size(1), w = logits.dim_size(2),
                  C = logits.dim_size(3);
    const int64_t H = size.vec<int32>()(0), W = size.vec<int32>()(1);
    OP_REQUIRES(ctx, H > 0 && W > 0,
                errors::InvalidArgument("size must be positive (H, W), got (", H, ", ", W, ")"));
    OP_REQUIRES(ctx, h > 0 && w > 0 && C > 0,
                errors::InvalidArgument("logits height, width and channels must be positive, "
                                        "got shape ",
                                        logits.shape().DebugString()));
    OP_REQUIRES(ctx, C <= 2147483647LL,
                errors::InvalidArgument("logits has too many channels for int32 labels"));
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({N, H, W}), &output));
    if (N == 0) return;
    const std::vector<CachedInterpolation> ys = InterpolationWeights(H, h);
    const std::vector<CachedInterpolation> xs = InterpolationWeights(W, w);
    const float* in = logits.flat<float>().data();
    int32_t* out = output->flat<int32>().data();

    auto band = [&](int64_t begin, int64_t end) {
      std::vector<float> row_a(C * W), row_b(C * W), best(W);
      float* top = row_a.data();
      float* bottom = row_b.data();
      int64_t top_key = -1, bottom_key = -1;  // n * h + input row held in top / bottom
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / H, y = r % H;
        const int64_t want_top = n * h + ys[y].lower, want_bottom = n * h + ys[y].upper;
        if (want_top == bottom_key && want_top != top_key) {  // moving down: reuse
          std::swap(top, bottom);
          std::swap(top_key, bottom_key);
        }
        if (top_key != want_top) {
          InterpolateRowX(in + want_top * w * C, xs.data(), W, C, top);
          top_key = want_top;
        }
        if (bottom_key != want_bottom) {
          if (want_bottom == top_key) {
            std::copy(top, top + C * W, bottom);
          } else {
            InterpolateRowX(in + want_bottom * w * C, xs.data(), W, C, bottom);
          }
          bottom_key = want_bottom;
        }
        ArgmaxRow(top, bottom, W, C, ys[y].lerp, best.data(), out + r * W);
      }
    };
    const int64_t cost_per_row = W * C * 6;
    ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(N * H, cost_per_row,
                                                                         band);
  }
};

REGISTER_KERNEL_BUILDER(Name("TapLab>UpsampleArgmax").Device(DEVICE_CPU).HostMemory("size"),
                        UpsampleArgmaxOp);

}  // namespace taplab
}  // namespace tensorflow
