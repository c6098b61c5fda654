// CUDA registration of the DCNv3 operator: argument checks, device guard and stream, then
// the kernels of dcnv3_kernels.cuh.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <utility>

#include "dcnv3_kernels.cuh"

namespace ops_dcnv3 {
namespace {

// Launches a kernel on the current stream of the current device.
struct StreamLauncher {
  cudaStream_t stream;

  template <typename... Params, typename... Args>
  void operator()(void (*kernel)(Params...), int64_t blocks, Args&&... args) const {
    kernel<<<static_cast<unsigned int>(blocks), kBlockThreads, 0, stream>>>(
        std::forward<Args>(args)...);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

at::Tensor dcnv3_forward_cuda(const at::Tensor& input, const at::Tensor& offset,
                              const at::Tensor& mask, int64_t kernel_h, int64_t kernel_w,
                              int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                              int64_t dilation_h, int64_t dilation_w, int64_t group,
                              int64_t group_channels, double offset_scale, int64_t im2col_step,
                              bool remove_center, bool softmax_mask) {
  const DCNv3Geometry geo = check_dcnv3_arguments(
      "dcnv3_forward", input, offset, mask, at::Tensor(), kernel_h, kernel_w, stride_h,
      stride_w, pad_h, pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
      im2col_step, remove_center, softmax_mask);
  const c10::cuda::CUDAGuard device_guard(input.device());
  return dcnv3_forward_launch(StreamLauncher{c10::cuda::getCurrentCUDAStream()}, geo, input,
                              offset, mask);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> dcnv3_backward_cuda(
    const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
    const at::Tensor& grad_output, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
    int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
    int64_t group, int64_t group_channels, double offset_scale, int64_t im2col_step,
    bool remove_center, bool softmax_mask) {
  const DCNv3Geometry geo = check_dcnv3_arguments(
      "dcnv3_backward", input, offset, mask, grad_output, kernel_h, kernel_w, stride_h,
      stride_w, pad_h, pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
      im2col_step, remove_center, softmax_mask);
  const c10::cuda::CUDAGuard device_guard(input.device());
  // grad_input is accumulated with atomics, so the summation order varies run to run.
  at::globalContext().alertNotDeterministic("ops_dcnv3::dcnv3_backward (CUDA)");
  return dcnv3_backward_launch(StreamLauncher{c10::cuda::getCurrentCUDAStream()}, geo, input,
                               offset, mask, grad_output);
}

}  // namespace

TORCH_LIBRARY_IMPL(ops_dcnv3, CUDA, m) {
  m.impl("dcnv3_forward", &dcnv3_forward_cuda);
  m.impl("dcnv3_backward", &dcnv3_backward_cuda);
}

}  // namespace ops_dcnv3
