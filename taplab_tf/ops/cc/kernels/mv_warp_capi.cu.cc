// A C entry point over the CUDA launchers (mv_warp_gpu.h), so the kernels can be tested and timed
// from Python with ctypes on a GPU machine without TensorFlow (tests/gpu/test_mv_warp_cuda.py,
// experiments/benchmark_warp_cuda.py). Built by nvcc together with mv_warp_kernels.cu.cc.
#include <cuda_fp16.h>

#include <cstdint>

#include "mv_warp.h"
#include "mv_warp_gpu.h"

extern "C" {

// dtype: 0 float16, 1 float32, 2 float64. interpolation: 0 nearest, 1 bilinear. border: 0 clamp,
// 1 zeros. All pointers are device pointers; shifts and accumulator are workspaces sized by
// taplab_mv_warp_workspace. Returns a cudaError_t value (0: success); -1 for a bad argument.
int64_t taplab_mv_warp_workspace(int64_t n, int64_t h, int64_t w, int64_t c, int64_t grid_h,
                                 int64_t grid_w, int dtype, int64_t* accumulator_bytes) {
  tensorflow::taplab::WarpParams p;
  p.batch = n, p.height = h, p.width = w, p.channels = c, p.grid_h = grid_h, p.grid_w = grid_w;
  *accumulator_bytes =
      tensorflow::taplab::gpu::GradAccumulatorBytes(p, dtype == 0 ? 2 : (dtype == 1 ? 4 : 8));
  return tensorflow::taplab::gpu::ShiftTableBytes(p);
}

int taplab_mv_warp(int gradient, int dtype, int64_t n, int64_t h, int64_t w, int64_t c,
                   int64_t grid_h, int64_t grid_w, int64_t stride, int64_t block,
                   int interpolation, int border, const void* input, const float* motion,
                   void* shifts, void* accumulator, void* output, void* stream) {
  namespace tt = tensorflow::taplab;
  if (n < 0 || h < 1 || w < 1 || c < 0 || grid_h < 1 || grid_w < 1 || stride < 1 || block < 1 ||
      h >= (int64_t{1} << 30) || w >= (int64_t{1} << 30)) {
    return -1;
  }
  tt::WarpParams p;
  p.batch = n, p.height = h, p.width = w, p.channels = c, p.grid_h = grid_h, p.grid_w = grid_w;
  p.stride = stride, p.block = block;
  p.interpolation = interpolation ? tt::Interpolation::kBilinear : tt::Interpolation::kNearest;
  p.border = border ? tt::Border::kZeros : tt::Border::kClamp;
  auto* s = static_cast<CUstream_st*>(stream);
  switch (dtype) {
#define TAPLAB_CASE(code, T)                                                                    \
  case code:                                                                                  \
    return gradient ? tt::gpu::LaunchMvWarpGrad<T>(p, static_cast<const T*>(input), motion,   \
                                                   shifts, accumulator, static_cast<T*>(output), \
                                                   s)                                         \
                    : tt::gpu::LaunchMvWarp<T>(p, static_cast<const T*>(input), motion, shifts, \
                                               static_cast<T*>(output), s);
    TAPLAB_CASE(0, __half)
    TAPLAB_CASE(1, float)
    TAPLAB_CASE(2, double)
#undef TAPLAB_CASE
    default:
      return -1;
  }
}

}  // extern "C"
