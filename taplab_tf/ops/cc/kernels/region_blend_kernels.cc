// TapLab>RegionBlend: Eq. 6 of RGC on one region of the logits, in one pass over the map.
//
//   out = logits, except out[:, top:top+rh, left:left+rw] = r + alpha * (crop - r), r the region
//
// with the float32 arithmetic of the TF expression `region + alpha * (crop_logits - region)`
// (subtract, multiply, add, each rounded; built with -ffp-contract=off), so it equals the
// concat-based TF version (ops.region_blend's fallback) bit for bit. At alpha = 1 the region is
// the crop itself, exactly ((1 - alpha) r + alpha crop, as Eq. 6 reads; r + (crop - r) would
// round), in both versions. The TF version sliced and concatenated the map twice, copying ~2.5x
// its bytes (10 MB at 1024x2048, stride 4, 19 classes); this kernel writes each output row once,
// reusing the input's buffer where TF can forward it.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace tensorflow {
namespace taplab {
namespace {

class RegionBlendOp : public OpKernel {
 public:
  explicit RegionBlendOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& logits = ctx->input(0);
    const Tensor& crop = ctx->input(1);
    OP_REQUIRES(ctx, logits.dims() == 4 && crop.dims() == 4,
                errors::InvalidArgument("logits and crop_logits must be rank 4, got shapes ",
                                        logits.shape().DebugString(), " and ",
                                        crop.shape().DebugString()));
    const int64_t N = logits.dim_size(0), h = logits.dim_size(1), w = logits.dim_size(2),
                  C = logits.dim_size(3);
    const int64_t rh = crop.dim_size(1), rw = crop.dim_size(2);
    OP_REQUIRES(ctx, crop.dim_size(0) == N && crop.dim_size(3) == C,
                errors::InvalidArgument("crop_logits ", crop.shape().DebugString(),
                                        " must have the batch and channels of logits ",
                                        logits.shape().DebugString()));
    const int64_t top = ctx->input(2).scalar<int32>()();
    const int64_t left = ctx->input(3).scalar<int32>()();
    const float alpha = ctx->input(4).scalar<float>()();
    OP_REQUIRES(ctx, top >= 0 && left >= 0 && top + rh <= h && left + rw <= w,
                errors::InvalidArgument("region [", top, ":", top + rh, ", ", left, ":",
                                        left + rw, "] is not inside the ", h, "x", w,
                                        " logits"));
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0, logits.shape(), &output));
    if (N * h * w * C == 0) return;
    const float* in = logits.flat<float>().data();
    const float* cr = crop.flat<float>().data();
    float* out = output->flat<float>().data();
    const bool in_place = out == in;
    auto rows = [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t n = row / h, i = row % h;
        const float* s = in + row * w * C;
        float* d = out + row * w * C;
        if (i < top || i >= top + rh) {
          if (!in_place) std::memcpy(d, s, sizeof(float) * w * C);
          continue;
        }
        if (!in_place) {
          std::memcpy(d, s, sizeof(float) * left * C);
          std::memcpy(d + (left + rw) * C, s + (left + rw) * C,
                      sizeof(float) * (w - left - rw) * C);
        }
        const float* c = cr + ((n * rh) + (i - top)) * rw * C;
        const float* r = s + left * C;
        float* o = d + left * C;
        if (alpha == 1.0f) {  // Eq. 6 at alpha = 1 is the crop itself, exactly
          std::memmove(o, c, sizeof(float) * rw * C);
          continue;
        }
        for (int64_t k = 0; k < rw * C; ++k) {
          const float diff = c[k] - r[k];
          const float step = alpha * diff;
          o[k] = r[k] + step;
        }
      }
    };
    const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
    threads->workers->ParallelFor(N * h, /*cost_per_unit=*/w * C * 2, rows);
  }
};

REGISTER_KERNEL_BUILDER(Name("TapLab>RegionBlend")
                            .Device(DEVICE_CPU)
                            .HostMemory("top")
                            .HostMemory("left")
                            .HostMemory("alpha"),
                        RegionBlendOp);

}  // namespace
}  // namespace taplab
}  // namespace tensorflow
