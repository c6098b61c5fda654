// The DCNv3 CUDA kernels and their host launch code (dcnv3_kernels.cuh), compiled for the CPU
// and run on the warp emulator of cuda_builtins.h. Exposed to the tests as `forward` and
// `backward` with the arguments of ops_dcnv3::dcnv3_forward / dcnv3_backward (CPU tensors).
#include <torch/extension.h>

#include "cuda_builtins.h"
// cuda_builtins.h must come first: the kernels use the names it defines.
#include "cuda/dcnv3_kernels.cuh"

namespace {

struct EmulatedLauncher {
  template <typename... Params, typename... Args>
  void operator()(void (*kernel)(Params...), int64_t blocks, Args&&... args) const {
    cuda_emulator::launch(kernel, blocks, ops_dcnv3::kBlockThreads, std::forward<Args>(args)...);
  }
};

at::Tensor forward(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                   int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                   int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                   int64_t group, int64_t group_channels, double offset_scale,
                   int64_t im2col_step, bool remove_center, bool softmax_mask) {
  const ops_dcnv3::DCNv3Geometry geo = ops_dcnv3::check_dcnv3_arguments(
      "dcnv3_forward", input, offset, mask, at::Tensor(), kernel_h, kernel_w, stride_h,
      stride_w, pad_h, pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
      im2col_step, remove_center, softmax_mask);
  return ops_dcnv3::dcnv3_forward_launch(EmulatedLauncher{}, geo, input, offset, mask);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(
    const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
    const at::Tensor& grad_output, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
    int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
    int64_t group, int64_t group_channels, double offset_scale, int64_t im2col_step,
    bool remove_center, bool softmax_mask) {
  const ops_dcnv3::DCNv3Geometry geo = ops_dcnv3::check_dcnv3_arguments(
      "dcnv3_backward", input, offset, mask, grad_output, kernel_h, kernel_w, stride_h,
      stride_w, pad_h, pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
      im2col_step, remove_center, softmax_mask);
  return ops_dcnv3::dcnv3_backward_launch(EmulatedLauncher{}, geo, input, offset, mask,
                                          grad_output);
}

// (threads per item, channel steps per thread) the kernels use for a group width and dtype.
std::pair<int64_t, int64_t> lane_layout(int64_t group_channels, int64_t element_size) {
  const ops_dcnv3::LaneLayout layout =
      ops_dcnv3::lane_layout(group_channels, static_cast<int>(16 / element_size));
  return {int64_t{1} << layout.lanes_log2, layout.steps};
}

// Emulator self-check: in a one-warp launch, lanes from `active_lanes` on return before a
// full-warp shuffle. Undefined on a GPU, so the emulator must raise unless all 32 stay.
void shuffle_after_partial_return(int64_t active_lanes) {
  const auto kernel = +[](int64_t active) {
    if (threadIdx.x >= active) return;
    static_cast<void>(__shfl_xor_sync(0xffffffffu, 1.0f, 1));
  };
  cuda_emulator::launch(kernel, 1, cuda_emulator::kWarpSize, active_lanes);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "DCNv3 CUDA forward kernel on the CPU warp emulator");
  m.def("backward", &backward, "DCNv3 CUDA backward kernel on the CPU warp emulator");
  m.def("lane_layout", &lane_layout, "(lanes per item, steps) for group_channels, element size");
  m.def("shuffle_after_partial_return", &shuffle_after_partial_return,
        "emulator self-check: a full-warp shuffle after some lanes returned");
}
