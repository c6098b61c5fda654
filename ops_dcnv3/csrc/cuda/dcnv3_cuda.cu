// CUDA registration of the DCNv3 and DCNv4 operators: argument checks (DCNv3Op), device guard and
// stream, then the kernels of dcnv3_kernels.cuh.
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

struct CudaKernels {
  static at::Tensor forward(const DCNv3Geometry& geo, const at::Tensor& input,
                            const at::Tensor& offset, const at::Tensor& mask) {
    const c10::cuda::CUDAGuard device_guard(input.device());
    return dcnv3_forward_launch(StreamLauncher{c10::cuda::getCurrentCUDAStream()}, geo, input,
                                offset, mask);
  }

  static at::Tensor backward(const DCNv3Geometry& geo, const at::Tensor& input,
                             const at::Tensor& offset, const at::Tensor& mask,
                             const at::Tensor& grad_output, const at::Tensor& grad_offset,
                             const at::Tensor& grad_mask) {
    const c10::cuda::CUDAGuard device_guard(input.device());
    // grad_input is accumulated with atomics, so the summation order varies run to run.
    at::globalContext().alertNotDeterministic(geo.packed_dim > 0
                                                  ? "ops_dcnv3::dcnv4_backward (CUDA)"
                                                  : "ops_dcnv3::dcnv3_backward (CUDA)");
    return dcnv3_backward_launch(StreamLauncher{c10::cuda::getCurrentCUDAStream()}, geo, input,
                                 offset, mask, grad_output, grad_offset, grad_mask);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(ops_dcnv3, CUDA, m) { register_kernels<CudaKernels>(m); }

}  // namespace ops_dcnv3
