// TapLab>MvFill: the 'fill' refinement of a block motion field before FFW, compiled
// (taplab_tf.pipeline.motion_field holds the numpy reference and the rule; the two agree bit for
// bit, tests/test_motion_field.py). On a 1024x2048 frame's 8x8-block grid (128x256 cells) it takes
// a small fraction of a millisecond on one thread, where the numpy passes took milliseconds and
// held the GIL against the reader thread.
//
// Per pass, with `moving` = has a vector and |v| > moving_px (float32, as numpy compares):
//   a cell without a vector (intra) takes the median of its moving 3x3 neighbours where any
//   neighbour moves; a zero vector (has a vector, not moving) does the same where its moving
//   neighbours outnumber `majority` x its neighbours with a vector (in double, as numpy does).
// Medians are component-wise over the moving neighbours, the two middle values averaged for an
// even count (0.5f * (a + b) in float32), all read from the field as it was at the pass's start.
// Filled cells then count as having a vector. A pass that fills nothing ends the loop.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace tensorflow {
namespace taplab {
namespace {

// numpy's `hypot(dx, dy) > moving_px` in float32, exactly: decided from the squared length in
// double (exact products, one rounding) unless it is within a relative 1e-6 of the threshold,
// where hypotf itself is asked.
inline bool Moves(float dx, float dy, float moving_px, double moving_sq) {
  const double sq = static_cast<double>(dx) * dx + static_cast<double>(dy) * dy;
  if (sq > moving_sq * (1 + 1e-6)) return true;
  if (sq < moving_sq * (1 - 1e-6)) return false;
  return std::hypot(dx, dy) > moving_px;
}

float MiddleOf(float* v, int n) {
  for (int a = 1; a < n; ++a) {  // insertion sort: at most 8 values
    const float x = v[a];
    int b = a - 1;
    for (; b >= 0 && v[b] > x; --b) v[b + 1] = v[b];
    v[b + 1] = x;
  }
  const int lo = (n - 1) / 2, hi = n / 2;
  return 0.5f * (v[lo] + v[hi]);
}

class MvFillOp : public OpKernel {
 public:
  explicit MvFillOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("passes", &passes_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& mv_in = ctx->input(0);
    const Tensor& intra_in = ctx->input(1);
    const Tensor& moving_in = ctx->input(2);
    const Tensor& majority_in = ctx->input(3);
    OP_REQUIRES(ctx, mv_in.dims() == 3 && mv_in.dim_size(2) == 2,
                errors::InvalidArgument("motion_vectors must be [gh, gw, 2], got shape ",
                                        mv_in.shape().DebugString()));
    const int64_t gh = mv_in.dim_size(0), gw = mv_in.dim_size(1);
    OP_REQUIRES(ctx, intra_in.dims() == 2 && intra_in.dim_size(0) == gh &&
                         intra_in.dim_size(1) == gw,
                errors::InvalidArgument("intra must be [gh, gw] = [", gh, ", ", gw,
                                        "], got shape ", intra_in.shape().DebugString()));
    OP_REQUIRES(ctx, moving_in.NumElements() == 1 && majority_in.NumElements() == 1,
                errors::InvalidArgument("moving_px and majority must be scalars"));
    const float moving_px = moving_in.flat<float>()(0);
    const double majority = majority_in.flat<double>()(0);

    Tensor* mv_out = nullptr;
    Tensor* intra_out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, mv_in.shape(), &mv_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, intra_in.shape(), &intra_out));
    const int64_t n = gh * gw;
    float* mv = mv_out->flat<float>().data();
    std::memcpy(mv, mv_in.flat<float>().data(), sizeof(float) * 2 * n);
    const bool* intra = intra_in.flat<bool>().data();
    // valid / moving on a grid padded by one cell, so the 3x3 sums need no bounds checks.
    const int64_t pw = gw + 2;
    std::vector<uint8_t> valid((gh + 2) * pw, 0), moving((gh + 2) * pw, 0);
    auto at = [pw](int64_t r, int64_t c) { return (r + 1) * pw + (c + 1); };
    for (int64_t r = 0; r < gh; ++r)
      for (int64_t c = 0; c < gw; ++c) valid[at(r, c)] = !intra[r * gw + c];
    const double moving_sq = static_cast<double>(moving_px) * moving_px;
    const int64_t offsets[8] = {-pw - 1, -pw, -pw + 1, -1, 1, pw - 1, pw, pw + 1};

    std::vector<float> before;          // the field at the pass's start
    std::vector<int64_t> take;          // the cells this pass fills (row-major indices)
    for (int pass = 0; pass < std::max(passes_, 1); ++pass) {
      for (int64_t r = 0; r < gh; ++r)
        for (int64_t c = 0; c < gw; ++c) {
          const int64_t i = r * gw + c, p = at(r, c);
          moving[p] = valid[p] && Moves(mv[2 * i], mv[2 * i + 1], moving_px, moving_sq);
        }
      take.clear();
      for (int64_t r = 0; r < gh; ++r) {
        for (int64_t c = 0; c < gw; ++c) {
          const int64_t p = at(r, c);
          if (moving[p]) continue;  // only holes and zero vectors can be filled
          int n_moving = 0;
          for (const int64_t o : offsets) n_moving += moving[p + o];
          if (n_moving == 0) continue;
          if (valid[p]) {
            int n_valid = 0;
            for (const int64_t o : offsets) n_valid += valid[p + o];
            if (!(static_cast<double>(n_moving) >
                  majority * static_cast<double>(std::max(n_valid, 1))))
              continue;
          }
          take.push_back(r * gw + c);
        }
      }
      if (take.empty()) break;
      before.assign(mv, mv + 2 * n);
      for (const int64_t i : take) {
        const int64_t r = i / gw, c = i % gw;
        float dx[8], dy[8];
        int k = 0;
        for (int64_t dr = -1; dr <= 1; ++dr)
          for (int64_t dc = -1; dc <= 1; ++dc) {
            if ((dr == 0 && dc == 0) || !moving[at(r + dr, c + dc)]) continue;
            const int64_t j = (r + dr) * gw + (c + dc);
            dx[k] = before[2 * j];
            dy[k] = before[2 * j + 1];
            ++k;
          }
        mv[2 * i] = MiddleOf(dx, k);
        mv[2 * i + 1] = MiddleOf(dy, k);
      }
      for (const int64_t i : take) valid[at(i / gw, i % gw)] = 1;
    }
    bool* still_intra = intra_out->flat<bool>().data();
    for (int64_t i = 0; i < n; ++i) still_intra[i] = !valid[at(i / gw, i % gw)];
  }

 private:
  int passes_;
};

REGISTER_KERNEL_BUILDER(Name("TapLab>MvFill")
                            .Device(DEVICE_CPU)
                            .HostMemory("moving_px")
                            .HostMemory("majority"),
                        MvFillOp);

}  // namespace
}  // namespace taplab
}  // namespace tensorflow
