// Declarations shared by the operator binding and the CPU / CUDA kernels: the argument checks
// and the entry points that every device (and the tests' CUDA warp emulator) registers.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

#include "dcnv3_sampling.h"

namespace ops_dcnv3 {

// The hyper-parameters of ops_dcnv3::dcnv3_forward / dcnv3_backward, in schema order (the one
// place that lists them: DCNv3Op below takes its parameters from this signature). The sizes of
// the result are filled in by check_dcnv3_arguments.
inline DCNv3Geometry hyper_parameters(int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                                      int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                      int64_t dilation_h, int64_t dilation_w, int64_t group,
                                      int64_t group_channels, double offset_scale,
                                      bool remove_center, bool softmax_mask) {
  return {kernel_h, kernel_w,   stride_h, stride_w,     pad_h,         pad_w,        dilation_h,
          dilation_w, group, group_channels, offset_scale, remove_center, softmax_mask};
}

// Validates one call (defence in depth: the Python wrapper checks user input first) and
// returns `hyper` (from hyper_parameters) completed with the call's sizes. Raises c10::Error
// naming the offending argument when: a tensor is not 4-D, not contiguous, or differs in
// dtype/device from `input`; a hyper-parameter is out of range (softmax_mask allows at most
// kMaxSoftmaxPoints points per group); or a shape disagrees with the others. `grad_output`
// may be undefined (forward).
DCNv3Geometry check_dcnv3_arguments(const char* op_name, const at::Tensor& input,
                                    const at::Tensor& offset, const at::Tensor& mask,
                                    const at::Tensor& grad_output, DCNv3Geometry hyper);

// The operator's entry points for one device, with the schema's arguments: they check them
// and hand the geometry to `Kernels`, which provides
//   static at::Tensor forward(const DCNv3Geometry&, input, offset, mask);
//   static std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const DCNv3Geometry&,
//       input, offset, mask, grad_output);
// Registered as `m.impl("dcnv3_forward", &DCNv3Op<Kernels>::forward)` (and backward).
template <typename Kernels, typename Signature = decltype(hyper_parameters)>
struct DCNv3Op;

template <typename Kernels, typename... Hyper>
struct DCNv3Op<Kernels, DCNv3Geometry(Hyper...)> {
  static at::Tensor forward(const at::Tensor& input, const at::Tensor& offset,
                            const at::Tensor& mask, Hyper... hyper) {
    const DCNv3Geometry geo = check_dcnv3_arguments("dcnv3_forward", input, offset, mask,
                                                    at::Tensor(), hyper_parameters(hyper...));
    return Kernels::forward(geo, input, offset, mask);
  }

  static std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(
      const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
      const at::Tensor& grad_output, Hyper... hyper) {
    const DCNv3Geometry geo = check_dcnv3_arguments("dcnv3_backward", input, offset, mask,
                                                    grad_output, hyper_parameters(hyper...));
    return Kernels::backward(geo, input, offset, mask, grad_output);
  }
};

}  // namespace ops_dcnv3
