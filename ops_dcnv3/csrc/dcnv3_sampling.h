// Per-point DCNv3 / DCNv4 math shared by the CPU and CUDA kernels (one definition, both
// devices). DCNv4 is the same operator with another layout of the point parameters (see
// DCNv3Geometry::packed_dim) and no softmax.
//
// Conventions (docs/dcnv3.md): channels-last tensors; for output pixel (h_out, w_out),
// group g and sampling point k the location, in pixel indices of the *unpadded* input, is
//   loc = base - pad + (grid_k + offset) * offset_scale
// with base = (dilation * (kernel - 1)) / 2 + out * stride and
// grid_k = -(dilation * (kernel - 1)) / 2 + i * dilation per axis. Points run x slowest
// (k = i_x * kernel_h + i_y); remove_center skips the centre point. Bilinear samples read
// zero outside the image, which is the same as sampling the zero-padded input.
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>

namespace ops_dcnv3 {

// With softmax_mask, the kernels normalise each group's mask logits themselves and keep the
// gradients of its points in a fixed-size buffer, hence a bound on the points per group.
constexpr int64_t kMaxSoftmaxPoints = 64;

// Output length along one axis: floor((size + 2 * pad - (dilation * (kernel - 1) + 1)) / stride)
// + 1, the one C++ definition (checks and kernels); ops_dcnv3.dcnv3_output_size is its Python
// twin. Floor division, as in Python, so a kernel wider than the padded input gives < 1.
C10_HOST_DEVICE constexpr int64_t dcnv3_output_size(int64_t size, int64_t kernel, int64_t stride,
                                                    int64_t pad, int64_t dilation) {
  const int64_t span = size + 2 * pad - (dilation * (kernel - 1) + 1);
  return (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
}

// Shapes and hyper-parameters of one call. Every size is int64 so flat indices never overflow.
struct DCNv3Geometry {
  // Hyper-parameters, in the order of the operator's schema (see hyper_parameters in dcnv3.h).
  int64_t kernel_h = 0, kernel_w = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t group = 1;
  int64_t group_channels = 0;
  double offset_scale = 1.0;
  bool remove_center = false;
  bool softmax_mask = false;  // mask holds logits: softmax over each group's points first
  // Layout of the point parameters. 0 (DCNv3): separate `offset` (..., G*K*2) and `mask`
  // (..., G*K) tensors. > 0 (DCNv4): one `offset_mask` tensor whose last dimension has
  // packed_dim >= G*K*3 entries: per group g, at g*K*3, the K (dx, dy) pairs, then the K
  // weights; entries past G*K*3 are padding that the op ignores.
  int64_t packed_dim = 0;
  // Sizes, derived from the tensors by check_dcnv3_arguments.
  int64_t batch = 0;
  int64_t height_in = 0, width_in = 0;
  int64_t channels = 0;
  int64_t height_out = 0, width_out = 0;
  int64_t num_points = 0;  // kernel_h * kernel_w, minus one with remove_center
};

// Index, in the offset tensor, of the first offset of `item` = pixel * group + g (pixel: the
// flat output pixel (n, h_out, w_out)); the item's K (dx, dy) pairs follow contiguously.
C10_HOST_DEVICE inline int64_t offset_start(const DCNv3Geometry& geo, int64_t item) {
  if (geo.packed_dim == 0) return item * geo.num_points * 2;
  return (item / geo.group) * geo.packed_dim + (item % geo.group) * geo.num_points * 3;
}

// Index, in the mask tensor (the offset_mask tensor for DCNv4), of the item's first weight.
C10_HOST_DEVICE inline int64_t mask_start(const DCNv3Geometry& geo, int64_t item) {
  if (geo.packed_dim == 0) return item * geo.num_points;
  return offset_start(geo, item) + geo.num_points * 2;
}

C10_HOST_DEVICE inline float floor_value(float x) { return floorf(x); }
C10_HOST_DEVICE inline double floor_value(double x) { return floor(x); }
C10_HOST_DEVICE inline float exp_value(float x) { return expf(x); }
C10_HOST_DEVICE inline double exp_value(double x) { return exp(x); }

// Kernel-grid displacement (grid_h, grid_w), in input pixels before offset_scale, of point k.
template <typename T>
C10_HOST_DEVICE inline void point_grid(const DCNv3Geometry& geo, int64_t k, T& grid_h,
                                       T& grid_w) {
  if (geo.remove_center) {
    const int64_t center = (geo.kernel_w / 2) * geo.kernel_h + geo.kernel_h / 2;
    if (k >= center) ++k;
  }
  const int64_t i_x = k / geo.kernel_h;
  const int64_t i_y = k % geo.kernel_h;
  grid_h = static_cast<T>(i_y * geo.dilation_h - (geo.dilation_h * (geo.kernel_h - 1)) / 2);
  grid_w = static_cast<T>(i_x * geo.dilation_w - (geo.dilation_w * (geo.kernel_w - 1)) / 2);
}

// Kernel centre (base_h, base_w) of output pixel (h_out, w_out) in unpadded input pixels.
template <typename T>
C10_HOST_DEVICE inline void pixel_base(const DCNv3Geometry& geo, int64_t h_out, int64_t w_out,
                                       T& base_h, T& base_w) {
  base_h = static_cast<T>((geo.dilation_h * (geo.kernel_h - 1)) / 2 - geo.pad_h +
                          h_out * geo.stride_h);
  base_w = static_cast<T>((geo.dilation_w * (geo.kernel_w - 1)) / 2 - geo.pad_w +
                          w_out * geo.stride_w);
}

// Sampling location of one point: base + (grid + offset) * offset_scale, per axis. The offset
// pair is (offset_x, offset_y); d loc / d offset = offset_scale.
template <typename T>
C10_HOST_DEVICE inline void sampling_location(T base_h, T base_w, T grid_h, T grid_w,
                                              T offset_x, T offset_y, T offset_scale, T& loc_h,
                                              T& loc_w) {
  loc_h = base_h + (grid_h + offset_y) * offset_scale;
  loc_w = base_w + (grid_w + offset_x) * offset_scale;
}

// The four neighbours of a sampling location. Corner order: (low h, low w), (low h, high w),
// (high h, low w), (high h, high w). A corner outside the image has pixel == -1 and weight 0.
template <typename T>
struct BilinearCorners {
  int64_t pixel[4];  // flat pixel index h * width + w inside one image
  T weight[4];
  T frac_h;  // loc_h - floor(loc_h)
  T frac_w;  // loc_w - floor(loc_w)
};

// Fills `corners` for a location; returns false when no corner lies inside the image, so the
// sample and its gradient are zero (NaN locations also return false). A location exactly on
// -1 still counts: its zero-weight neighbour inside gives the one-sided derivative that
// sampling the zero-padded input (and grid_sample) gives.
template <typename T>
C10_HOST_DEVICE inline bool bilinear_corners(T loc_h, T loc_w, int64_t height, int64_t width,
                                             BilinearCorners<T>& corners) {
  if (!(loc_h >= T(-1) && loc_w >= T(-1) && loc_h < static_cast<T>(height) &&
        loc_w < static_cast<T>(width))) {
    return false;
  }
  const T floor_h = floor_value(loc_h);
  const T floor_w = floor_value(loc_w);
  const int64_t h_low = static_cast<int64_t>(floor_h);
  const int64_t w_low = static_cast<int64_t>(floor_w);
  const T frac_h = loc_h - floor_h;
  const T frac_w = loc_w - floor_w;
  corners.frac_h = frac_h;
  corners.frac_w = frac_w;
  const bool h_low_in = h_low >= 0;
  const bool h_high_in = h_low + 1 < height;
  const bool w_low_in = w_low >= 0;
  const bool w_high_in = w_low + 1 < width;
  const int64_t row_low = h_low * width;
  const int64_t row_high = row_low + width;
  const bool inside[4] = {h_low_in && w_low_in, h_low_in && w_high_in, h_high_in && w_low_in,
                          h_high_in && w_high_in};
  const int64_t pixel[4] = {row_low + w_low, row_low + w_low + 1, row_high + w_low,
                            row_high + w_low + 1};
  const T weight[4] = {(T(1) - frac_h) * (T(1) - frac_w), (T(1) - frac_h) * frac_w,
                       frac_h * (T(1) - frac_w), frac_h * frac_w};
  for (int i = 0; i < 4; ++i) {
    corners.pixel[i] = inside[i] ? pixel[i] : int64_t(-1);
    corners.weight[i] = inside[i] ? weight[i] : T(0);
  }
  return true;
}

// Gradient of one bilinear sample w.r.t. its location, given the sampled quantity at the four
// corners (zero for corners outside the image). For the DCNv3 backward the "value" at a corner
// is the dot product of grad_output with that corner's input channels.
template <typename T>
C10_HOST_DEVICE inline void bilinear_location_grad(const BilinearCorners<T>& corners,
                                                   const T corner_value[4], T& grad_h,
                                                   T& grad_w) {
  const T fh = corners.frac_h;
  const T fw = corners.frac_w;
  grad_h = (T(1) - fw) * (corner_value[2] - corner_value[0]) +
           fw * (corner_value[3] - corner_value[1]);
  grad_w = (T(1) - fh) * (corner_value[1] - corner_value[0]) +
           fh * (corner_value[3] - corner_value[2]);
}

// The softmax of one group's `count` mask logits in its numerically stable form: weight k is
// exp(logit_k - max) * inv_sum. NaN logits give NaN weights, as torch.softmax does.
template <typename T>
struct SoftmaxStats {
  T max;
  T inv_sum;
};

template <typename T, typename scalar_t>
C10_HOST_DEVICE inline T logit_max(const scalar_t* logits, int64_t count) {
  T max = static_cast<T>(logits[0]);
  for (int64_t k = 1; k < count; ++k) {
    const T logit = static_cast<T>(logits[k]);
    max = logit > max ? logit : max;
  }
  return max;
}

// For kernels that recompute each weight where it is used (no per-point storage).
template <typename T, typename scalar_t>
C10_HOST_DEVICE inline SoftmaxStats<T> softmax_stats(const scalar_t* logits, int64_t count) {
  const T max = logit_max<T>(logits, count);
  T sum = T(0);
  for (int64_t k = 0; k < count; ++k) sum += exp_value(static_cast<T>(logits[k]) - max);
  return {max, T(1) / sum};
}

template <typename T>
C10_HOST_DEVICE inline T softmax_weight(T logit, const SoftmaxStats<T>& stats) {
  return exp_value(logit - stats.max) * stats.inv_sum;
}

}  // namespace ops_dcnv3
