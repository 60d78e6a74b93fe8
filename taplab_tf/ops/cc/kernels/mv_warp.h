// TapLab>MvWarp: the sampling geometry shared by the CPU kernel (mv_warp_kernels.cc) and the CUDA
// kernels (mv_warp_kernels.cu.cc, built by nvcc only; see mv_warp_gpu.h). Everything below the
// functor declarations is plain integer/float arithmetic marked TAPLAB_HD, so host and device
// compute bit-identical taps.
#ifndef TAPLAB_TF_OPS_CC_KERNELS_MV_WARP_H_
#define TAPLAB_TF_OPS_CC_KERNELS_MV_WARP_H_

#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define TAPLAB_HD __host__ __device__
#else
#define TAPLAB_HD
#endif

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

TAPLAB_HD inline int64_t ClampI(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// Block index of feature row/col i: floor((i + 0.5) * s / B), exact in integers, clamped to the grid.
TAPLAB_HD inline int64_t BlockIndex(int64_t i, int64_t stride, int64_t block, int64_t grid) {
  const int64_t b = ((2 * i + 1) * stride) / (2 * block);
  return ClampI(b, 0, grid - 1);
}

// The source offset a block's motion implies, computed once per block (not per pixel).
// With t = -d / s (d = dy or dx, s = feature_stride) the source coordinate of feature row i is
// q = i + t, and since i is an integer
//   nearest (round half up): floor(q + 0.5) = i + floor(t + 0.5)
//   bilinear:                floor(q) = i + floor(t),  fraction q - floor(q) = t - floor(t)
// so every pixel of a block shares one integer offset and one fraction. t is first clamped to
// [-(size + 1), size + 1]: that changes no result (beyond it every pixel is equally outside the
// map) but keeps float -> int conversions defined for huge motion.
struct AxisShift {  // int32: |t| <= size + 1 and the kernel requires size < 2^30
  int32_t nearest;  // floor(t + 0.5)
  int32_t floor;    // floor(t)
  float frac;       // t - floor(t), in [0, 1)
};

// floor for |t| < 2^62 without a libm call (std::floor is one on baseline x86-64, no SSE4.1).
TAPLAB_HD inline int64_t FloorToInt(float t) {
  const int64_t i = static_cast<int64_t>(t);  // truncates toward zero
  return i - (t < static_cast<float>(i) ? 1 : 0);
}

TAPLAB_HD inline AxisShift ComputeAxisShift(float d, int64_t stride, int64_t size) {
  const float bound = static_cast<float>(size + 1);
  const float q = -d / static_cast<float>(stride);
  const float t = q < -bound ? -bound : (q > bound ? bound : q);
  const int64_t f = FloorToInt(t);
  return AxisShift{static_cast<int32_t>(FloorToInt(t + 0.5f)), static_cast<int32_t>(f),
                   t - static_cast<float>(f)};
}

struct BlockShift {
  AxisShift y;
  AxisShift x;
};

TAPLAB_HD inline BlockShift ComputeBlockShift(const WarpParams& p, float dx, float dy) {
  return BlockShift{ComputeAxisShift(dy, p.stride, p.height), ComputeAxisShift(dx, p.stride, p.width)};
}

// Taps of one output pixel: up to four (index, weight) taps; index is y * w + x within the batch
// item, or -1 for "outside the map" under border='zeros' (reads zero). For bilinear, ay/ax are
// the fractions in the tfa dense_image_warp form
//   top = tl + ax (tr - tl); bottom = bl + ax (br - bl); out = top + ay (bottom - top)
// and the taps are ordered tl, tr, bl, br.
struct Sample {
  int64_t index[4];
  float ay;
  float ax;
};

TAPLAB_HD inline int64_t AxisNearest(int64_t i, const AxisShift& sh, int64_t size,
                                     Border border) {
  const int64_t v = i + sh.nearest;
  if (border == Border::kClamp) return ClampI(v, 0, size - 1);
  return (v >= 0 && v < size) ? v : -1;
}

TAPLAB_HD inline void AxisBilinear(int64_t i, const AxisShift& sh, int64_t size, Border border, int64_t* i0,
                         int64_t* i1, float* alpha) {
  const int64_t v = i + sh.floor;
  if (border == Border::kClamp) {
    // Coordinate clamped to [0, size - 1] (what tfa's clamping of the floor to [0, size - 2] and
    // of the fraction to [0, 1] amounts to). Outside, or exactly on the last pixel, the second tap
    // repeats the first with weight 0, so integer coordinates reproduce pixels exactly.
    if (v < 0) {
      *i0 = 0;
      *i1 = size > 1 ? 1 : size - 1;
      *alpha = 0.0f;
    } else if (v >= size - 1) {
      *i0 = *i1 = size - 1;
      *alpha = 0.0f;
    } else {
      *i0 = v;
      *i1 = v + 1;
      *alpha = sh.frac;
    }
    return;
  }
  // Zero padding: each tap outside [0, size) reads zero.
  *i0 = (v >= 0 && v < size) ? v : -1;
  *i1 = (v + 1 >= 0 && v + 1 < size) ? v + 1 : -1;
  *alpha = sh.frac;
}

// Taps of feature pixel (i, j) whose block moved by `shift`.
TAPLAB_HD inline Sample ComputeSample(const WarpParams& p, const BlockShift& shift, int64_t i, int64_t j) {
  Sample out;
  if (p.interpolation == Interpolation::kNearest) {
    const int64_t y = AxisNearest(i, shift.y, p.height, p.border);
    const int64_t x = AxisNearest(j, shift.x, p.width, p.border);
    out.index[0] = (y < 0 || x < 0) ? -1 : y * p.width + x;
    out.index[1] = out.index[2] = out.index[3] = -1;
    out.ay = out.ax = 0.0f;
    return out;
  }
  int64_t y0, y1, x0, x1;
  AxisBilinear(i, shift.y, p.height, p.border, &y0, &y1, &out.ay);
  AxisBilinear(j, shift.x, p.width, p.border, &x0, &x1, &out.ax);
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
