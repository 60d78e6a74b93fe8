// The CPU warp of an int32 map (TapLab>MvWarp's nearest warp with clamped borders) for other
// kernels of the library: TapLab>IndexTakeRegion warps FFW's index map and takes RGC's region
// over in one op (index_take_region_kernels.cc).
#ifndef TAPLAB_TF_OPS_CC_KERNELS_MV_WARP_CPU_H_
#define TAPLAB_TF_OPS_CC_KERNELS_MV_WARP_CPU_H_

#include <cstdint>

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace tensorflow {
namespace taplab {

// out [N, h, w, C] = index [N, h, w, C] int32 warped by motion [N, grid_h, grid_w, 2] as
// TapLab>MvWarp(interpolation='nearest', border='clamp') warps it, after the same checks (an
// InvalidArgument status names a bad input).
Status WarpIndexMap(OpKernelContext* ctx, const Tensor& index, const Tensor& motion,
                    int64_t stride, int64_t block, int32_t* out);

}  // namespace taplab
}  // namespace tensorflow

#endif  // TAPLAB_TF_OPS_CC_KERNELS_MV_WARP_CPU_H_
