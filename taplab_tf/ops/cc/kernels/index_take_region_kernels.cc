// TapLab>IndexTakeRegion: RGC's take-over (Eq. 6 at alpha = 1) on FFW's index map
// (pipeline.propagation.IndexedLogits), in one pass over the map:
//
//   out = index, except out[:, top:top+rh, left:left+rw] = source << 20 | (r * rw + c)
//
// (r, c) the position inside the region: the region's cells now read the crop's logits, which
// the caller appends as source number `source`. Before this op the map was copied to NumPy,
// overwritten there and copied back into a tensor: three passes over it and two allocations.
// With motion vectors, `index` is first warped by them (FFW's nearest warp of the map, as
// TapLab>MvWarp; mv_warp_cpu.h): a propagated frame's warp and RGC's take-over in one pass.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "mv_warp_cpu.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace tensorflow {
namespace taplab {
namespace {

constexpr int kSourceShift = 20;  // as upsample_argmax.h (ops.SOURCE_SHIFT)
constexpr int kMaxSources = 16;

class IndexTakeRegionOp : public OpKernel {
 public:
  explicit IndexTakeRegionOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("feature_stride", &stride_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("block_size", &block_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& index = ctx->input(0);
    OP_REQUIRES(ctx, index.dims() == 3 || (index.dims() == 4 && index.dim_size(3) == 1),
                errors::InvalidArgument("index must be [N, h, w] or [N, h, w, 1], got shape ",
                                        index.shape().DebugString()));
    int64_t v[5];
    const char* names[5] = {"top", "left", "region_height", "region_width", "source"};
    for (int i = 0; i < 5; ++i) {
      const Tensor& t = ctx->input(i + 1);
      OP_REQUIRES(ctx, TensorShapeUtils::IsScalar(t.shape()),
                  errors::InvalidArgument(names[i], " must be a scalar, got shape ",
                                          t.shape().DebugString()));
      v[i] = t.scalar<int32>()();
    }
    const int64_t N = index.dim_size(0), h = index.dim_size(1), w = index.dim_size(2);
    const int64_t top = v[0], left = v[1], rh = v[2], rw = v[3], source = v[4];
    OP_REQUIRES(ctx, rh >= 0 && rw >= 0 && top >= 0 && left >= 0 && top + rh <= h &&
                         left + rw <= w,
                errors::InvalidArgument("the region ", rh, "x", rw, " at (", top, ", ", left,
                                        ") does not fit the ", h, "x", w, " map"));
    OP_REQUIRES(ctx, source >= 0 && source < kMaxSources,
                errors::InvalidArgument("source must be in [0, ", kMaxSources, "), got ",
                                        source));
    OP_REQUIRES(ctx, rh * rw <= (int64_t{1} << kSourceShift),
                errors::InvalidArgument("the region has ", rh * rw, " cells, more than 2^",
                                        kSourceShift, " an index can address"));
    const Tensor& motion = ctx->input(6);
    const bool warp = motion.NumElements() > 0;
    Tensor* output = nullptr;
    const int32_t* in = index.flat<int32>().data();
    if (warp) {  // the warped map, then its region taken over in place
      OP_REQUIRES(ctx, stride_ >= 1 && block_ >= 1,
                  errors::InvalidArgument("motion vectors need feature_stride and block_size "
                                          ">= 1, got ", stride_, " and ", block_));
      OP_REQUIRES_OK(ctx, ctx->allocate_output(0, index.shape(), &output));
      Tensor map4;  // [N, h, w, 1], as MvWarp takes it
      OP_REQUIRES(ctx, map4.CopyFrom(index, TensorShape({N, h, w, 1})),
                  errors::Internal("index reshape"));
      OP_REQUIRES_OK(ctx, WarpIndexMap(ctx, map4, motion, stride_, block_,
                                       output->flat<int32>().data()));
      in = output->flat<int32>().data();
    } else {
      OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0, index.shape(), &output));
    }
    int32_t* out = output->flat<int32>().data();
    const int32_t base = static_cast<int32_t>(source << kSourceShift);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t y = 0; y < h; ++y) {
        const int32_t* s = in + (n * h + y) * w;
        int32_t* d = out + (n * h + y) * w;
        const bool inside = y >= top && y < top + rh;
        if (!inside) {
          if (d != s) std::memcpy(d, s, w * sizeof(int32_t));
          continue;
        }
        if (d != s) {
          std::memcpy(d, s, left * sizeof(int32_t));
          std::memcpy(d + left + rw, s + left + rw, (w - left - rw) * sizeof(int32_t));
        }
        const int32_t row = base + static_cast<int32_t>((y - top) * rw);
        for (int64_t c = 0; c < rw; ++c) d[left + c] = row + static_cast<int32_t>(c);
      }
    }
  }

 private:
  int64_t stride_ = 0, block_ = 0;
};

REGISTER_KERNEL_BUILDER(Name("TapLab>IndexTakeRegion").Device(DEVICE_CPU), IndexTakeRegionOp);

}  // namespace
}  // namespace taplab
}  // namespace tensorflow
