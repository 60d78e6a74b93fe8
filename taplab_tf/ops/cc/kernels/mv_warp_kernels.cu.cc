// CUDA kernels of MvWarp (TapLab Eq. 1) and its feature gradient. Built by nvcc only (the CPU op
// library's build skips *.cu.cc); interface and status in mv_warp_gpu.h.
//
// Forward: a tiny kernel turns each block's motion into its BlockShift (integer offset and
// fraction per axis, mv_warp.h), then one thread per output element (n, i, j, c), channel
// fastest, so a warp reads and writes contiguous channel runs. The taps are ComputeSample, the
// same host/device function the CPU kernel uses, so both give identical nearest results and
// bilinear results in the same arithmetic (the tfa lerp form, in float, double for double).
// Gradient: zero, then one thread per grad element scatter-adds into its (up to four) taps with
// atomicAdd; float16 accumulates in a float32 buffer that is converted at the end.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <type_traits>

#include "mv_warp.h"
#include "mv_warp_gpu.h"

namespace tensorflow {
namespace taplab {
namespace gpu {
namespace {

template <typename T>
struct Acc {
  using type = float;
};
template <>
struct Acc<double> {
  using type = double;
};

__device__ inline float Load(const __half* p) { return __half2float(*p); }
__device__ inline float Load(const float* p) { return *p; }
__device__ inline double Load(const double* p) { return *p; }
__device__ inline void Store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ inline void Store(float* p, float v) { *p = v; }
__device__ inline void Store(double* p, double v) { *p = v; }

__device__ inline float Add(float a, float b) { return __fadd_rn(a, b); }
__device__ inline double Add(double a, double b) { return __dadd_rn(a, b); }
__device__ inline float Mul(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double Mul(double a, double b) { return __dmul_rn(a, b); }

template <typename T>
__device__ inline T Zero() {
  return T(0);
}
template <>
__device__ inline __half Zero<__half>() {
  return __ushort_as_half(0);
}

constexpr int kThreads = 256;

int Blocks(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(b, 1), 65535 * 32));
}

__global__ void ShiftsKernel(WarpParams p, const float* __restrict__ motion,
                             BlockShift* __restrict__ shifts, int64_t count) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < count;
       k += int64_t{blockDim.x} * gridDim.x) {
    shifts[k] = ComputeBlockShift(p, motion[2 * k], motion[2 * k + 1]);
  }
}

__device__ inline Sample SampleOf(const WarpParams& p, const BlockShift* __restrict__ shifts,
                                  int64_t n, int64_t i, int64_t j) {
  const int64_t by = BlockIndex(i, p.stride, p.block, p.grid_h);
  const int64_t bx = BlockIndex(j, p.stride, p.block, p.grid_w);
  return ComputeSample(p, shifts[(n * p.grid_h + by) * p.grid_w + bx], i, j);
}

// One output element from its taps: src points at channel c of the batch item's map.
template <typename T>
__device__ inline void WriteElement(const WarpParams& p, const Sample& s, const T* src, int64_t C,
                                    T* dst) {
  using A = typename Acc<T>::type;
  if (p.interpolation == Interpolation::kNearest) {
    *dst = s.index[0] < 0 ? Zero<T>() : src[s.index[0] * C];
    return;
  }
  const A vtl = s.index[0] < 0 ? A(0) : Load(src + s.index[0] * C);
  const A vtr = s.index[1] < 0 ? A(0) : Load(src + s.index[1] * C);
  const A vbl = s.index[2] < 0 ? A(0) : Load(src + s.index[2] * C);
  const A vbr = s.index[3] < 0 ? A(0) : Load(src + s.index[3] * C);
  const A ax = static_cast<A>(s.ax), ay = static_cast<A>(s.ay);
  // The CPU kernel's expression order (tfa lerp form), without contraction into FMAs.
  const A top = Add(Mul(ax, vtr - vtl), vtl);
  const A bottom = Add(Mul(ax, vbr - vbl), vbl);
  Store(dst, Add(Mul(ay, bottom - top), top));
}

template <typename T>
__global__ void ForwardKernel(WarpParams p, const T* __restrict__ features,
                             const BlockShift* __restrict__ shifts, T* __restrict__ output,
                             int64_t count) {
  const int64_t C = p.channels, w = p.width, h = p.height, plane = h * w * C;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < count;
       e += int64_t{blockDim.x} * gridDim.x) {
    const int64_t c = e % C;
    const int64_t pix = e / C;
    const int64_t j = pix % w;
    const int64_t i = (pix / w) % h;
    const int64_t n = pix / (w * h);
    WriteElement(p, SampleOf(p, shifts, n, i, j), features + n * plane + c, C, output + e);
  }
}

// The same as ForwardKernel, laid out for speed when every index fits in 32 bits: blockIdx.y walks
// the N*h output rows (row, batch item and block row computed once per thread block) and
// blockIdx.x x threadIdx.x the w*C elements of a row, so each element costs two 32-bit divisions
// (its column and its block column) instead of six 64-bit ones.
template <typename T>
__global__ void ForwardRowsKernel(WarpParams p, const T* __restrict__ features,
                                  const BlockShift* __restrict__ shifts, T* __restrict__ output) {
  const int C = static_cast<int>(p.channels), w = static_cast<int>(p.width);
  const int h = static_cast<int>(p.height), rows = static_cast<int>(p.batch * p.height);
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= w * C) return;
  const int j = k / C;
  const int c = k - j * C;
  const int b2 = 2 * static_cast<int>(p.block);
  const int gw = static_cast<int>(p.grid_w), gh = static_cast<int>(p.grid_h);
  const int bx = min(((2 * j + 1) * static_cast<int>(p.stride)) / b2, gw - 1);
  for (int row = blockIdx.y; row < rows; row += gridDim.y) {
    const int n = row / h;
    const int i = row - n * h;
    const int by = min(((2 * i + 1) * static_cast<int>(p.stride)) / b2, gh - 1);
    WriteElement(p, ComputeSample(p, shifts[(n * gh + by) * gw + bx], i, j),
                 features + static_cast<int64_t>(n) * h * w * C + c, int64_t{C},
                 output + static_cast<int64_t>(row) * w * C + k);
  }
}

template <typename A>
__global__ void GradKernel(WarpParams p, const void* __restrict__ grad_raw, int grad_kind,
                           const BlockShift* __restrict__ shifts, A* __restrict__ acc,
                           int64_t count) {
  const int64_t C = p.channels, w = p.width, h = p.height, plane = h * w * C;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < count;
       e += int64_t{blockDim.x} * gridDim.x) {
    A g;
    if (grad_kind == 0) g = static_cast<A>(Load(static_cast<const __half*>(grad_raw) + e));
    else if (grad_kind == 1) g = static_cast<A>(Load(static_cast<const float*>(grad_raw) + e));
    else g = static_cast<A>(Load(static_cast<const double*>(grad_raw) + e));
    if (g == A(0)) continue;
    const int64_t c = e % C;
    const int64_t pix = e / C;
    const int64_t j = pix % w;
    const int64_t i = (pix / w) % h;
    const int64_t n = pix / (w * h);
    const Sample s = SampleOf(p, shifts, n, i, j);
    A* dst = acc + n * plane + c;
    if (p.interpolation == Interpolation::kNearest) {
      if (s.index[0] >= 0) atomicAdd(dst + s.index[0] * C, g);
      continue;
    }
    const A ay = static_cast<A>(s.ay), ax = static_cast<A>(s.ax);
    const A weight[4] = {(A(1) - ay) * (A(1) - ax), (A(1) - ay) * ax, ay * (A(1) - ax), ay * ax};
    for (int t = 0; t < 4; ++t) {
      if (s.index[t] < 0 || weight[t] == A(0)) continue;
      atomicAdd(dst + s.index[t] * C, weight[t] * g);
    }
  }
}

__global__ void FloatToHalfKernel(const float* __restrict__ in, __half* __restrict__ out,
                                  int64_t count) {
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < count;
       e += int64_t{blockDim.x} * gridDim.x) {
    out[e] = __float2half_rn(in[e]);
  }
}

template <typename T>
constexpr int GradKind() {
  return std::is_same<T, __half>::value ? 0 : (std::is_same<T, float>::value ? 1 : 2);
}

int Shifts(const WarpParams& p, const float* motion, void* shifts, cudaStream_t stream) {
  const int64_t blocks = p.batch * p.grid_h * p.grid_w;
  ShiftsKernel<<<Blocks(blocks), kThreads, 0, stream>>>(p, motion,
                                                         static_cast<BlockShift*>(shifts), blocks);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int64_t ShiftTableBytes(const WarpParams& p) {
  return p.batch * p.grid_h * p.grid_w * static_cast<int64_t>(sizeof(BlockShift));
}

int64_t GradAccumulatorBytes(const WarpParams& p, int element_bytes) {
  return element_bytes == 2 ? p.batch * p.height * p.width * p.channels * 4 : 0;
}

template <typename T>
int LaunchMvWarp(const WarpParams& p, const T* features, const float* motion, void* shifts,
                 T* output, CUstream_st* stream) {
  const int64_t count = p.batch * p.height * p.width * p.channels;
  if (count == 0) return 0;
  if (const int err = Shifts(p, motion, shifts, stream)) return err;
  const int64_t row = p.width * p.channels;
  // 32-bit layout: indices (into the map and the motion grid, times 2 for BlockIndex) fit.
  // TAPLAB_TF_CUDA_GENERIC_KERNEL=1 forces the general kernel (so tests cover it on small maps).
  const char* generic = std::getenv("TAPLAB_TF_CUDA_GENERIC_KERNEL");
  const bool force_generic = generic != nullptr && generic[0] == '1';
  if (!force_generic && count < (int64_t{1} << 30) && p.grid_h * p.grid_w * p.batch < (int64_t{1} << 30) &&
      2 * (std::max(p.height, p.width) + 1) * p.stride < (int64_t{1} << 30)) {
    const dim3 grid(static_cast<unsigned>((row + kThreads - 1) / kThreads),
                    static_cast<unsigned>(std::min<int64_t>(p.batch * p.height, 65535)));
    ForwardRowsKernel<T><<<grid, kThreads, 0, stream>>>(
        p, features, static_cast<const BlockShift*>(shifts), output);
  } else {
    ForwardKernel<T><<<Blocks(count), kThreads, 0, stream>>>(
        p, features, static_cast<const BlockShift*>(shifts), output, count);
  }
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int LaunchMvWarpGrad(const WarpParams& p, const T* grad, const float* motion, void* shifts,
                     void* accumulator, T* grad_features, CUstream_st* stream) {
  using A = typename Acc<T>::type;
  const int64_t count = p.batch * p.height * p.width * p.channels;
  if (count == 0) return 0;
  if (const int err = Shifts(p, motion, shifts, stream)) return err;
  A* acc = std::is_same<T, __half>::value ? static_cast<A*>(accumulator)
                                           : reinterpret_cast<A*>(grad_features);
  if (acc == nullptr) return static_cast<int>(cudaErrorInvalidValue);
  if (const cudaError_t err = cudaMemsetAsync(acc, 0, count * sizeof(A), stream)) {
    return static_cast<int>(err);
  }
  GradKernel<A><<<Blocks(count), kThreads, 0, stream>>>(
      p, grad, GradKind<T>(), static_cast<const BlockShift*>(shifts), acc, count);
  if (std::is_same<T, __half>::value) {
    FloatToHalfKernel<<<Blocks(count), kThreads, 0, stream>>>(
        reinterpret_cast<const float*>(acc), reinterpret_cast<__half*>(grad_features), count);
  }
  return static_cast<int>(cudaGetLastError());
}

#define TAPLAB_INSTANTIATE(T)                                                               \
  template int LaunchMvWarp<T>(const WarpParams&, const T*, const float*, void*, T*,        \
                               CUstream_st*);                                               \
  template int LaunchMvWarpGrad<T>(const WarpParams&, const T*, const float*, void*, void*, \
                                   T*, CUstream_st*);
TAPLAB_INSTANTIATE(__half)
TAPLAB_INSTANTIATE(float)
TAPLAB_INSTANTIATE(double)
#undef TAPLAB_INSTANTIATE

}  // namespace gpu
}  // namespace taplab
}  // namespace tensorflow
