// The DCNv3 / DCNv4 CUDA kernels and their host launch code (dcnv3_kernels.cuh), compiled for
// the CPU and run on the warp emulator of cuda_builtins.h. Exposed to the tests as `forward` /
// `backward` (arguments of ops_dcnv3::dcnv3_forward / dcnv3_backward) and `dcnv4_forward` /
// `dcnv4_backward` (those of the DCNv4 ops), on CPU tensors, through the same argument checks
// and gradient allocation (DCNv3Op / DCNv4Op of dcnv3.h) as the registered devices.
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

// The host launch code of dcnv3_kernels.cuh, run on the emulator.
struct EmulatedKernels {
  static at::Tensor forward(const ops_dcnv3::DCNv3Geometry& geo, const at::Tensor& input,
                            const at::Tensor& offset, const at::Tensor& mask) {
    return ops_dcnv3::dcnv3_forward_launch(EmulatedLauncher{}, geo, input, offset, mask);
  }

  static at::Tensor backward(const ops_dcnv3::DCNv3Geometry& geo, const at::Tensor& input,
                             const at::Tensor& offset, const at::Tensor& mask,
                             const at::Tensor& grad_output, const at::Tensor& grad_offset,
                             const at::Tensor& grad_mask) {
    return ops_dcnv3::dcnv3_backward_launch(EmulatedLauncher{}, geo, input, offset, mask,
                                            grad_output, grad_offset, grad_mask);
  }
};

using EmulatedOp = ops_dcnv3::DCNv3Op<EmulatedKernels>;
using EmulatedOp4 = ops_dcnv3::DCNv4Op<EmulatedKernels>;

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
  m.def("forward", &EmulatedOp::forward, "DCNv3 CUDA forward kernel on the CPU warp emulator");
  m.def("backward", &EmulatedOp::backward, "DCNv3 CUDA backward kernel on the CPU warp emulator");
  m.def("dcnv4_forward", &EmulatedOp4::forward,
        "DCNv4 (packed offset_mask) CUDA forward kernel on the CPU warp emulator");
  m.def("dcnv4_backward", &EmulatedOp4::backward,
        "DCNv4 (packed offset_mask) CUDA backward kernel on the CPU warp emulator");
  m.def("lane_layout", &lane_layout, "(lanes per item, steps) for group_channels, element size");
  m.def("shuffle_after_partial_return", &shuffle_after_partial_return,
        "emulator self-check: a full-warp shuffle after some lanes returned");
}
