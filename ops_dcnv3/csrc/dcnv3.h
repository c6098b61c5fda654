// Declarations shared by the operator binding and the CPU / CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include "dcnv3_sampling.h"

namespace ops_dcnv3 {

// Validates one call (defence in depth: the Python wrapper checks user input first) and
// returns its geometry. Raises c10::Error naming the offending argument when: a tensor is not
// 4-D, not contiguous, or differs in dtype/device from `input`; a hyper-parameter is out of
// range (softmax_mask allows at most kMaxSoftmaxPoints points per group); or a shape disagrees
// with the others. `grad_output` may be undefined (forward).
DCNv3Geometry check_dcnv3_arguments(const char* op_name, const at::Tensor& input,
                                    const at::Tensor& offset, const at::Tensor& mask,
                                    const at::Tensor& grad_output, int64_t kernel_h,
                                    int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                                    int64_t pad_h, int64_t pad_w, int64_t dilation_h,
                                    int64_t dilation_w, int64_t group, int64_t group_channels,
                                    double offset_scale, int64_t im2col_step,
                                    bool remove_center, bool softmax_mask);

}  // namespace ops_dcnv3
