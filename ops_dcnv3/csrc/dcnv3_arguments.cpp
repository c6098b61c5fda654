// Argument checks (DCNv3 and DCNv4) shared by the CPU and CUDA kernels (and by the CUDA warp emulator of the
// tests, which links this file without the operator registrations of dcnv3.cpp).
#include <cmath>

#include "dcnv3.h"

namespace ops_dcnv3 {

namespace {

void check_tensor(const char* op_name, const char* name, const at::Tensor& tensor,
                  const at::Tensor& input) {
  TORCH_CHECK(tensor.dim() == 4, op_name, ": expected `", name,
              "` to be a 4-D channels-last tensor (N, H, W, C), got shape ", tensor.sizes());
  TORCH_CHECK(tensor.scalar_type() == input.scalar_type(), op_name, ": expected `", name,
              "` to have the dtype of `input` (", input.scalar_type(), "), got ",
              tensor.scalar_type());
  TORCH_CHECK(tensor.device() == input.device(), op_name, ": expected `", name,
              "` on the device of `input` (", input.device(), "), got ", tensor.device());
  TORCH_CHECK(tensor.is_contiguous(), op_name, ": expected `", name, "` to be contiguous");
}

// (N, H_out, W_out, last) of the output grid.
void expect_shape(const char* op_name, const char* name, const at::Tensor& tensor,
                  const DCNv3Geometry& geo, int64_t last) {
  const bool ok = tensor.size(0) == geo.batch && tensor.size(1) == geo.height_out &&
                  tensor.size(2) == geo.width_out && tensor.size(3) == last;
  TORCH_CHECK(ok, op_name, ": expected `", name, "` of shape (", geo.batch, ", ", geo.height_out,
              ", ", geo.width_out, ", ", last, "), got ", tensor.sizes());
}

// The checks both operators share: hyper-parameters, `input` (and `grad_output` when
// defined) and the sizes derived from them. Returns `geo` with its sizes filled in.
DCNv3Geometry check_common(const char* op_name, const at::Tensor& input,
                           const at::Tensor& grad_output, DCNv3Geometry geo) {
  const int64_t kernel_h = geo.kernel_h, kernel_w = geo.kernel_w;
  const int64_t stride_h = geo.stride_h, stride_w = geo.stride_w;
  const int64_t pad_h = geo.pad_h, pad_w = geo.pad_w;
  const int64_t dilation_h = geo.dilation_h, dilation_w = geo.dilation_w;
  const int64_t group = geo.group, group_channels = geo.group_channels;
  TORCH_CHECK(kernel_h > 0 && kernel_w > 0, op_name,
              ": expected kernel_h and kernel_w > 0, got ", kernel_h, ", ", kernel_w);
  TORCH_CHECK(stride_h > 0 && stride_w > 0, op_name,
              ": expected stride_h and stride_w > 0, got ", stride_h, ", ", stride_w);
  TORCH_CHECK(dilation_h > 0 && dilation_w > 0, op_name,
              ": expected dilation_h and dilation_w > 0, got ", dilation_h, ", ", dilation_w);
  TORCH_CHECK(pad_h >= 0 && pad_w >= 0, op_name, ": expected pad_h and pad_w >= 0, got ",
              pad_h, ", ", pad_w);
  TORCH_CHECK(group > 0 && group_channels > 0, op_name,
              ": expected group and group_channels > 0, got ", group, ", ", group_channels);
  TORCH_CHECK(std::isfinite(geo.offset_scale), op_name,
              ": expected a finite offset_scale, got ", geo.offset_scale);
  if (geo.remove_center) {
    TORCH_CHECK(kernel_h % 2 == 1 && kernel_w % 2 == 1 && kernel_h * kernel_w > 1, op_name,
                ": remove_center=True needs odd kernel sizes with more than one point, got ",
                kernel_h, "x", kernel_w);
  }

  check_tensor(op_name, "input", input, input);
  if (grad_output.defined()) check_tensor(op_name, "grad_output", grad_output, input);

  geo.batch = input.size(0);
  geo.height_in = input.size(1);
  geo.width_in = input.size(2);
  geo.channels = input.size(3);
  geo.num_points = kernel_h * kernel_w - (geo.remove_center ? 1 : 0);
  TORCH_CHECK(!geo.softmax_mask || geo.num_points <= kMaxSoftmaxPoints, op_name,
              ": softmax_mask=True supports at most ", kMaxSoftmaxPoints,
              " sampling points per group, got ", geo.num_points,
              "; apply the softmax to the mask before the op instead");
  geo.height_out = dcnv3_output_size(geo.height_in, kernel_h, stride_h, pad_h, dilation_h);
  geo.width_out = dcnv3_output_size(geo.width_in, kernel_w, stride_w, pad_w, dilation_w);

  TORCH_CHECK(geo.channels == group * group_channels, op_name,
              ": expected input channels (last dim) == group * group_channels = ", group, " * ",
              group_channels, ", got ", geo.channels);
  TORCH_CHECK(geo.height_in > 0 && geo.width_in > 0, op_name,
              ": expected a non-empty input image, got shape ", input.sizes());
  TORCH_CHECK(geo.height_out > 0 && geo.width_out > 0, op_name,
              ": the kernel (dilated) does not fit the padded input; input shape ", input.sizes(),
              " gives output size ", geo.height_out, "x", geo.width_out);
  if (grad_output.defined()) expect_shape(op_name, "grad_output", grad_output, geo, geo.channels);
  return geo;
}

}  // namespace

DCNv3Geometry check_dcnv3_arguments(const char* op_name, const at::Tensor& input,
                                    const at::Tensor& offset, const at::Tensor& mask,
                                    const at::Tensor& grad_output, DCNv3Geometry hyper) {
  const DCNv3Geometry geo = check_common(op_name, input, grad_output, hyper);
  check_tensor(op_name, "offset", offset, input);
  check_tensor(op_name, "mask", mask, input);
  expect_shape(op_name, "offset", offset, geo, geo.group * geo.num_points * 2);
  expect_shape(op_name, "mask", mask, geo, geo.group * geo.num_points);
  return geo;
}

DCNv3Geometry check_dcnv4_arguments(const char* op_name, const at::Tensor& input,
                                    const at::Tensor& offset_mask,
                                    const at::Tensor& grad_output, DCNv3Geometry hyper) {
  DCNv3Geometry geo = check_common(op_name, input, grad_output, hyper);
  check_tensor(op_name, "offset_mask", offset_mask, input);
  const int64_t needed = geo.group * geo.num_points * 3;
  const int64_t packed = offset_mask.size(3);
  TORCH_CHECK(packed >= needed, op_name, ": expected `offset_mask` with a last dimension of at ",
              "least group * K * 3 = ", needed, " (padding after that is ignored), got ",
              offset_mask.sizes());
  expect_shape(op_name, "offset_mask", offset_mask, geo, packed);
  geo.packed_dim = packed;
  return geo;
}

}  // namespace ops_dcnv3
