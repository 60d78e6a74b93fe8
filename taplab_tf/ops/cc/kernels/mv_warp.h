// TapLab>MvWarp: functor interface shared by the CPU kernel (mv_warp_kernels.cc) and, one day, a
// CUDA kernel (mv_warp_kernels.cu.cc under #if GOOGLE_CUDA; none exists: there is no GPU to test
// one on). The sampling geometry below is plain arithmetic so a CUDA kernel could include it.
#ifndef TAPLAB_TF_OPS_CC_KERNELS_MV_WARP_H_
#define TAPLAB_TF_OPS_CC_KERNELS_MV_WARP_H_

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace tensorflow {
class OpKernelContext;
namespace taplab {

enum class Interpolation { kNearest, kBilinear };
enum class Border { kClamp, kZeros };

struct WarpParams {
  int64_t batch = 0;
  int64_t height = 0;    // h (feature map)
  int64_t width = 0;     // w
  int64_t channels = 0;  // C
  int64_t grid_h = 0;    // Hb (motion grid)
  int64_t grid_w = 0;    // Wb
  int64_t stride = 1;    // s
  int64_t block = 16;    // B
  Interpolation interpolation = Interpolation::kNearest;
  Border border = Border::kClamp;
};

// Block index of feature row/col i: floor((i + 0.5) * s / B), exact in integers, clamped to the grid.
inline int64_t BlockIndex(int64_t i, int64_t stride, int64_t block, int64_t grid) {
  const int64_t b = ((2 * i + 1) * stride) / (2 * block);
  return std::min(std::max<int64_t>(b, 0), grid - 1);
}

// Where one output pixel reads from. Up to four (index, weight) taps; index is y * w + x within
// the batch item, or -1 for "outside the map" under border='zeros' (reads zero).
// For bilinear, ay/ax are the interpolation fractions in the tfa dense_image_warp form
//   top = tl + ax (tr - tl); bottom = bl + ax (br - bl); out = top + ay (bottom - top)
// and taps are ordered tl, tr, bl, br.
struct Sample {
  int64_t index[4];
  float ay;
  float ax;
};

// Sampling positions along one axis. q is the (finite) source coordinate. It is first clamped to
// [-2, size + 1], which changes no result (everything beyond is equally "outside") but keeps the
// float -> int conversions defined for huge motion.
inline void AxisNearest(float q, int64_t size, Border border, int64_t* i0) {
  q = std::min(std::max(q, -2.0f), static_cast<float>(size + 1));
  int64_t i = static_cast<int64_t>(std::floor(q + 0.5f));  // round half up
  if (border == Border::kClamp) {
    i = std::min(std::max<int64_t>(i, 0), size - 1);
  } else if (i < 0 || i >= size) {
    i = -1;
  }
  *i0 = i;
}

inline void AxisBilinear(float q, int64_t size, Border border, int64_t* i0, int64_t* i1,
                         float* alpha) {
  q = std::min(std::max(q, -2.0f), static_cast<float>(size + 1));
  if (border == Border::kClamp) {
    // Clamp the coordinate to [0, size - 1] (what tfa interpolate_bilinear's clamping of the floor
    // to [0, size - 2] and of the fraction to [0, 1] amounts to), then floor; at the last pixel the
    // second tap repeats the first with weight 0, so integer coordinates reproduce pixels exactly.
    q = std::min(std::max(q, 0.0f), static_cast<float>(size - 1));
    const float f = std::floor(q);
    *alpha = q - f;
    *i0 = static_cast<int64_t>(f);
    *i1 = std::min(*i0 + 1, size - 1);
  } else {
    // Zero padding: each tap outside [0, size) reads zero.
    const float f = std::floor(q);
    *alpha = q - f;
    const int64_t a = static_cast<int64_t>(f);
    const int64_t b = a + 1;
    *i0 = (a >= 0 && a < size) ? a : -1;
    *i1 = (b >= 0 && b < size) ? b : -1;
  }
}

// Source of feature pixel (i, j) given its block's motion (dx, dy) in input pixels.
inline Sample ComputeSample(const WarpParams& p, int64_t i, int64_t j, float dx, float dy) {
  const float s = static_cast<float>(p.stride);
  const float qy = static_cast<float>(i) - dy / s;
  const float qx = static_cast<float>(j) - dx / s;
  Sample out;
  if (p.interpolation == Interpolation::kNearest) {
    int64_t y, x;
    AxisNearest(qy, p.height, p.border, &y);
    AxisNearest(qx, p.width, p.border, &x);
    out.index[0] = (y < 0 || x < 0) ? -1 : y * p.width + x;
    out.index[1] = out.index[2] = out.index[3] = -1;
    out.ay = out.ax = 0.0f;
    return out;
  }
  int64_t y0, y1, x0, x1;
  AxisBilinear(qy, p.height, p.border, &y0, &y1, &out.ay);
  AxisBilinear(qx, p.width, p.border, &x0, &x1, &out.ax);
  auto at = [&](int64_t y, int64_t x) -> int64_t { return (y < 0 || x < 0) ? -1 : y * p.width + x; };
  out.index[0] = at(y0, x0);
  out.index[1] = at(y0, x1);
  out.index[2] = at(y1, x0);
  out.index[3] = at(y1, x1);
  return out;
}

template <typename Device, typename T>
struct MvWarpFunctor {
  // features [N,h,w,C], motion [N,Hb,Wb,2] (validated, finite), output [N,h,w,C].
  void operator()(OpKernelContext* ctx, const WarpParams& p, const T* features,
                  const float* motion, T* output);
};

template <typename Device, typename T>
struct MvWarpGradFunctor {
  // grad [N,h,w,C] -> grad_features [N,h,w,C] (scatter-add through the forward's taps).
  void operator()(OpKernelContext* ctx, const WarpParams& p, const T* grad, const float* motion,
                  T* grad_features);
};

}  // namespace taplab
}  // namespace tensorflow

#endif  // TAPLAB_TF_OPS_CC_KERNELS_MV_WARP_H_
