// CUDA launchers of the MvWarp forward and feature-gradient kernels (mv_warp_kernels.cu.cc).
//
// TF-free on purpose: plain device pointers and a CUDA stream, so the kernels can be built by nvcc
// and tested on a GPU machine that has no TensorFlow (tests/gpu/, through the C API in
// mv_warp_capi.cu.cc). Storage types: float, double and __half (layout-identical to Eigen::half).
//
// Status: tested on an NVIDIA H100 against the NumPy reference of Eq. (1) (tests/gpu/). Not yet
// registered as TapLab>MvWarp's DEVICE_GPU kernel: that glue needs a CUDA build of TensorFlow
// 2.15 to compile and test against, which no GPU machine of this project has had (see
// docs/INTERFACES.md, "CUDA kernels"). Until then a GPU-placed mv_warp runs the pure-TF path.
#ifndef TAPLAB_TF_OPS_CC_KERNELS_MV_WARP_GPU_H_
#define TAPLAB_TF_OPS_CC_KERNELS_MV_WARP_GPU_H_

#include <cstdint>

#include "mv_warp.h"

struct CUstream_st;

namespace tensorflow {
namespace taplab {
namespace gpu {

// Bytes of device workspace the launchers need: the per-block shift table [N, Hb, Wb], and for
// the float16 gradient a float32 accumulator [N, h, w, C].
int64_t ShiftTableBytes(const WarpParams& p);
int64_t GradAccumulatorBytes(const WarpParams& p, int element_bytes);

// features/output [N, h, w, C], motion [N, Hb, Wb, 2] (finite: the caller validates, as the CPU
// op does on its host copy), all device pointers; shifts: ShiftTableBytes of device memory.
// Returns a cudaError_t value (0 on success). Asynchronous on `stream`.
template <typename T>
int LaunchMvWarp(const WarpParams& p, const T* features, const float* motion, void* shifts,
                 T* output, CUstream_st* stream);

// grad/grad_features [N, h, w, C]: scatter-add of grad through the forward's taps (atomicAdd;
// accumulation order, and so the last bits of float sums, may differ from the CPU kernel's).
// accumulator: GradAccumulatorBytes of device memory (nullptr allowed when that is 0).
template <typename T>
int LaunchMvWarpGrad(const WarpParams& p, const T* grad, const float* motion, void* shifts,
                     void* accumulator, T* grad_features, CUstream_st* stream);

}  // namespace gpu
}  // namespace taplab
}  // namespace tensorflow

#endif  // TAPLAB_TF_OPS_CC_KERNELS_MV_WARP_GPU_H_
