// Declarations shared by the operator binding and the CPU / CUDA kernels: the argument checks
// and the entry points that every device (and the tests' CUDA warp emulator) registers.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

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

// DCNv4's hyper-parameters (ops_dcnv3::dcnv4_forward / dcnv4_backward, schema order): those
// of DCNv3 without softmax_mask, which DCNv4 never applies.
inline DCNv3Geometry dcnv4_hyper_parameters(int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                                            int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                            int64_t dilation_h, int64_t dilation_w,
                                            int64_t group, int64_t group_channels,
                                            double offset_scale, bool remove_center) {
  return hyper_parameters(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
                          dilation_w, group, group_channels, offset_scale, remove_center, false);
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

// The same for DCNv4 (hyper from dcnv4_hyper_parameters): `offset_mask` must be
// (N, H_out, W_out, P) with P >= group * K * 3; the result has packed_dim = P.
DCNv3Geometry check_dcnv4_arguments(const char* op_name, const at::Tensor& input,
                                    const at::Tensor& offset_mask,
                                    const at::Tensor& grad_output, DCNv3Geometry hyper);

// The operators' entry points for one device, with the schemas' arguments: they check them,
// allocate the parameter gradients and hand the geometry to `Kernels`, which provides
//   static at::Tensor forward(const DCNv3Geometry&, input, offset, mask);
//   static at::Tensor backward(const DCNv3Geometry&, input, offset, mask, grad_output,
//                              grad_offset, grad_mask);  // returns grad_input
// where the kernels index offset / mask (and their gradients) with offset_start /
// mask_start. For DCNv4 (geo.packed_dim > 0) offset and mask are both `offset_mask`, and
// grad_offset and grad_mask both its zero-filled gradient, of which the kernels write every
// entry but the padding. register_kernels<Kernels> (below) registers all four entry points.
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
    at::Tensor grad_offset = at::empty_like(offset);
    at::Tensor grad_mask = at::empty_like(mask);
    at::Tensor grad_input =
        Kernels::backward(geo, input, offset, mask, grad_output, grad_offset, grad_mask);
    return {grad_input, grad_offset, grad_mask};
  }
};

template <typename Kernels, typename Signature = decltype(dcnv4_hyper_parameters)>
struct DCNv4Op;

template <typename Kernels, typename... Hyper>
struct DCNv4Op<Kernels, DCNv3Geometry(Hyper...)> {
  static at::Tensor forward(const at::Tensor& input, const at::Tensor& offset_mask,
                            Hyper... hyper) {
    const DCNv3Geometry geo = check_dcnv4_arguments(
        "dcnv4_forward", input, offset_mask, at::Tensor(), dcnv4_hyper_parameters(hyper...));
    return Kernels::forward(geo, input, offset_mask, offset_mask);
  }

  static std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& input,
                                                     const at::Tensor& offset_mask,
                                                     const at::Tensor& grad_output,
                                                     Hyper... hyper) {
    const DCNv3Geometry geo = check_dcnv4_arguments(
        "dcnv4_backward", input, offset_mask, grad_output, dcnv4_hyper_parameters(hyper...));
    at::Tensor grad_offset_mask = at::zeros_like(offset_mask);  // padding entries stay zero
    at::Tensor grad_input = Kernels::backward(geo, input, offset_mask, offset_mask, grad_output,
                                              grad_offset_mask, grad_offset_mask);
    return {grad_input, grad_offset_mask};
  }
};

// The instruction set the CPU kernels run with in this process ("default", "avx2", "avx512"
// or "avx512_bf16"): the best the CPU supports within ATen's capability and
// OPS_DCNV3_CPU_ISA (dcnv3_cpu.cpp). Raises c10::ValueError for a bad OPS_DCNV3_CPU_ISA.
const char* cpu_kernel_isa();

// Registers a device's `Kernels` for the four operators, inside TORCH_LIBRARY_IMPL.
template <typename Kernels>
void register_kernels(torch::Library& m) {
  m.impl("dcnv3_forward", &DCNv3Op<Kernels>::forward);
  m.impl("dcnv3_backward", &DCNv3Op<Kernels>::backward);
  m.impl("dcnv4_forward", &DCNv4Op<Kernels>::forward);
  m.impl("dcnv4_backward", &DCNv4Op<Kernels>::backward);
}

}  // namespace ops_dcnv3
