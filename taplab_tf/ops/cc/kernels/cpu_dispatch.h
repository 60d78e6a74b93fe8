// CPU feature dispatch shared by the kernels: TAPLAB_AVX2_CLONES makes GCC build an AVX2 and a
// baseline version of a function and pick one when the library loads (ifunc), so one .so serves
// every x86-64 CPU. Defining TAPLAB_BASELINE_ONLY (build variant 'baseline') or building for another
// architecture leaves only the portable code, which is how the tests cover those paths here;
// TAPLAB_NO_AVX512 leaves out the AVX-512 paths (picked at run time where the CPU has AVX-512F),
// so that the AVX2 code they replace is tested on such a CPU too.
#ifndef TAPLAB_TF_OPS_CC_KERNELS_CPU_DISPATCH_H_
#define TAPLAB_TF_OPS_CC_KERNELS_CPU_DISPATCH_H_

#if defined(__x86_64__) && !defined(TAPLAB_BASELINE_ONLY)
#include <immintrin.h>
#define TAPLAB_X86 1
#define TAPLAB_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TAPLAB_X86 0
#define TAPLAB_AVX2_CLONES
#endif

#endif  // TAPLAB_TF_OPS_CC_KERNELS_CPU_DISPATCH_H_
