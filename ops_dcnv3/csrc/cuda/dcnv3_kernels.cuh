// DCNv3 and DCNv4 CUDA kernels (float32, float64, float16, bfloat16; half types accumulate in
// float) and the host code that plans and launches them. DCNv4 runs the same kernels: only
// where a point's offsets and weight are read from differs (offset_start / mask_start of
// dcnv3_sampling.h; DCNv4 never sets softmax_mask). dcnv3_cuda.cu launches them on the GPU; the
// tests also compile this header as plain C++ and run it under a CPU warp emulator
// (tests/cuda_emulator), so it uses only the CUDA built-ins that emulator provides:
// blockIdx / blockDim / threadIdx, __shfl_xor_sync and atomicAdd.
//
// Work mapping (DCNv4-style): an "item" is one (output pixel, group); it is served by `lanes`
// consecutive threads (a power of two <= 32, so an item never straddles a warp), each owning
// VEC consecutive channels (16 bytes: 4 float, 8 half) per step; groups wider than
// lanes * VEC loop over steps. Each thread computes a point's location and bilinear weights
// once (shared header) and applies them to all its channels. Blocks have a fixed 256 threads
// whatever the group count. Backward: grad_offset / grad_mask of a (item, point) are reduced
// across the item's lanes with warp shuffles and written once by lane 0 (no atomics; with
// softmax_mask, lane 0 applies the softmax's Jacobian after the last point);
// grad_input is scattered with atomicAdd into an accumulation-type buffer (float32 for half
// types, cast afterwards).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include <cstdint>
#include <limits>
#include <tuple>
#include <type_traits>

#include "../dcnv3.h"

namespace ops_dcnv3 {

constexpr int kBlockThreads = 256;
constexpr int kWarpSize = 32;

template <typename scalar_t, int VEC>
struct alignas(sizeof(scalar_t) * VEC) Pack {
  scalar_t value[VEC];
};

// Loads VEC channels starting at `src` (channel index c0 of a group with `count` channels)
// into float accumulators; channels past `count` read zero. ALIGNED: count % VEC == 0 and the
// tensor is 16-byte aligned, so one vector load suffices.
template <typename scalar_t, typename acc_t, int VEC, bool ALIGNED>
__device__ __forceinline__ void load_channels(const scalar_t* __restrict__ src, int64_t c0,
                                              int64_t count, acc_t (&dst)[VEC]) {
  if constexpr (ALIGNED) {
    const Pack<scalar_t, VEC> pack = *reinterpret_cast<const Pack<scalar_t, VEC>*>(src);
#pragma unroll
    for (int j = 0; j < VEC; ++j) dst[j] = static_cast<acc_t>(pack.value[j]);
  } else {
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      dst[j] = c0 + j < count ? static_cast<acc_t>(src[j]) : acc_t(0);
    }
  }
}

template <typename scalar_t, typename acc_t, int VEC, bool ALIGNED>
__device__ __forceinline__ void store_channels(scalar_t* __restrict__ dst, int64_t c0,
                                               int64_t count, const acc_t (&src)[VEC]) {
  if constexpr (ALIGNED) {
    Pack<scalar_t, VEC> pack;
#pragma unroll
    for (int j = 0; j < VEC; ++j) pack.value[j] = static_cast<scalar_t>(src[j]);
    *reinterpret_cast<Pack<scalar_t, VEC>*>(dst) = pack;
  } else {
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      if (c0 + j < count) dst[j] = static_cast<scalar_t>(src[j]);
    }
  }
}

// dst[j] += value[j] for the VEC channels at dst (a 16-byte aligned run when ALIGNED). Hopper
// (sm_90+) has native float4 atomics, a quarter of the atomic operations.
template <typename acc_t, int VEC, bool ALIGNED>
__device__ __forceinline__ void atomic_add_channels(acc_t* dst, int64_t c0, int64_t count,
                                                    const acc_t (&value)[VEC]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr bool kVectorAtomics = ALIGNED && std::is_same_v<acc_t, float> && VEC % 4 == 0;
#else
  constexpr bool kVectorAtomics = false;
#endif
  if constexpr (kVectorAtomics) {
#pragma unroll
    for (int j = 0; j < VEC; j += 4) {
      atomicAdd(reinterpret_cast<float4*>(dst + j),
                make_float4(value[j], value[j + 1], value[j + 2], value[j + 3]));
    }
  } else {
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      if (ALIGNED || c0 + j < count) atomicAdd(dst + j, value[j]);
    }
  }
}

// Threads per item and channel steps for a group of `group_channels` channels.
struct LaneLayout {
  int lanes_log2 = 0;
  int64_t steps = 1;
};

inline LaneLayout lane_layout(int64_t group_channels, int vec) {
  LaneLayout layout;
  while ((int64_t{1} << layout.lanes_log2) < kWarpSize &&
         (int64_t{vec} << layout.lanes_log2) < group_channels) {
    ++layout.lanes_log2;
  }
  const int64_t per_step = int64_t{vec} << layout.lanes_log2;
  layout.steps = (group_channels + per_step - 1) / per_step;
  return layout;
}

// The item a thread serves and its lane within the item's threads.
struct ThreadItem {
  int64_t item;  // (pixel, group) flat index, pixel-major; may be past the last item
  int64_t lane;
};

__device__ __forceinline__ ThreadItem thread_item(int lanes_log2) {
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  return {thread >> lanes_log2, thread & ((int64_t{1} << lanes_log2) - 1)};
}

// Image, output pixel and group of an item.
struct ItemCoords {
  int64_t n, h_out, w_out, g;
};

__device__ __forceinline__ ItemCoords item_coords(const DCNv3Geometry& geo, int64_t item) {
  const int64_t pixel = item / geo.group;
  const int64_t pixels_out = geo.height_out * geo.width_out;
  return {pixel / pixels_out, (pixel % pixels_out) / geo.width_out, pixel % geo.width_out,
          item % geo.group};
}

// The weight of a point: its mask value, or with softmax_mask its softmax over the group.
template <typename acc_t, typename scalar_t>
__device__ __forceinline__ acc_t point_weight(bool softmax_mask, scalar_t mask_value,
                                              const SoftmaxStats<acc_t>& stats) {
  return softmax_mask ? softmax_weight(static_cast<acc_t>(mask_value), stats)
                      : static_cast<acc_t>(mask_value);
}

template <typename scalar_t, int VEC, bool ALIGNED>
__global__ void __launch_bounds__(kBlockThreads)
    dcnv3_forward_kernel(const DCNv3Geometry geo, const int lanes_log2, const int64_t steps,
                         const int64_t items, const scalar_t* __restrict__ input,
                         const scalar_t* __restrict__ offset, const scalar_t* __restrict__ mask,
                         scalar_t* __restrict__ output) {
  using acc_t = at::opmath_type<scalar_t>;
  const ThreadItem thread = thread_item(lanes_log2);
  if (thread.item >= items) return;
  const int64_t item = thread.item;
  const ItemCoords idx = item_coords(geo, item);
  const int64_t channels = geo.channels;
  const int64_t group_channels = geo.group_channels;
  const int64_t num_points = geo.num_points;
  const scalar_t* image_group = input + idx.n * geo.height_in * geo.width_in * channels +
                                idx.g * group_channels;
  const scalar_t* point_offset = offset + offset_start(geo, item);
  const scalar_t* point_mask = mask + mask_start(geo, item);
  scalar_t* out = output + item * group_channels;  // item * Cg == pixel * C + g * Cg
  const acc_t scale = static_cast<acc_t>(geo.offset_scale);
  acc_t base_h, base_w;
  pixel_base(geo, idx.h_out, idx.w_out, base_h, base_w);
  const SoftmaxStats<acc_t> stats = geo.softmax_mask
                                        ? softmax_stats<acc_t>(point_mask, num_points)
                                        : SoftmaxStats<acc_t>{acc_t(0), acc_t(1)};

  for (int64_t step = 0; step < steps; ++step) {
    const int64_t c0 = ((step << lanes_log2) + thread.lane) * VEC;
    if (c0 >= group_channels) break;
    acc_t acc[VEC];
#pragma unroll
    for (int j = 0; j < VEC; ++j) acc[j] = acc_t(0);
    for (int64_t k = 0; k < num_points; ++k) {
      acc_t grid_h, grid_w, loc_h, loc_w;
      point_grid(geo, k, grid_h, grid_w);
      sampling_location(base_h, base_w, grid_h, grid_w, static_cast<acc_t>(point_offset[2 * k]),
                        static_cast<acc_t>(point_offset[2 * k + 1]), scale, loc_h, loc_w);
      BilinearCorners<acc_t> corners;
      if (!bilinear_corners(loc_h, loc_w, geo.height_in, geo.width_in, corners)) continue;
      const acc_t m = point_weight(geo.softmax_mask, point_mask[k], stats);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        if (corners.pixel[i] < 0) continue;
        acc_t value[VEC];
        load_channels<scalar_t, acc_t, VEC, ALIGNED>(
            image_group + corners.pixel[i] * channels + c0, c0, group_channels, value);
        const acc_t w = m * corners.weight[i];
#pragma unroll
        for (int j = 0; j < VEC; ++j) acc[j] += w * value[j];
      }
    }
    store_channels<scalar_t, acc_t, VEC, ALIGNED>(out + c0, c0, group_channels, acc);
  }
}

// SOFTMAX (geo.softmax_mask): lane 0 of an item keeps the gradients of its point weights and
// turns them into logit gradients after the last point.
template <typename scalar_t, int VEC, bool ALIGNED, bool SOFTMAX>
__global__ void __launch_bounds__(kBlockThreads)
    dcnv3_backward_kernel(const DCNv3Geometry geo, const int lanes_log2, const int64_t steps,
                          const int64_t items, const scalar_t* __restrict__ input,
                          const scalar_t* __restrict__ offset,
                          const scalar_t* __restrict__ mask,
                          const scalar_t* __restrict__ grad_output,
                          at::opmath_type<scalar_t>* __restrict__ grad_input,
                          scalar_t* grad_offset, scalar_t* grad_mask) {
  using acc_t = at::opmath_type<scalar_t>;
  const ThreadItem thread = thread_item(lanes_log2);
  // Threads past the last item stay in the loop (contributing zeros) because every thread of
  // a warp must take part in the shuffles; they address item 0 so every pointer stays in range.
  const bool active = thread.item < items;
  const int64_t item = active ? thread.item : 0;
  const ItemCoords idx = item_coords(geo, item);
  const int64_t channels = geo.channels;
  const int64_t group_channels = geo.group_channels;
  const int64_t num_points = geo.num_points;
  const int64_t image_base = idx.n * geo.height_in * geo.width_in * channels +
                             idx.g * group_channels;
  const scalar_t* image_group = input + image_base;
  acc_t* grad_image_group = grad_input + image_base;
  const scalar_t* point_offset = offset + offset_start(geo, item);
  const scalar_t* point_mask = mask + mask_start(geo, item);
  scalar_t* point_grad_offset = grad_offset + offset_start(geo, item);
  scalar_t* point_grad_mask = grad_mask + mask_start(geo, item);
  const scalar_t* go = grad_output + item * group_channels;
  const acc_t scale = static_cast<acc_t>(geo.offset_scale);
  const int lanes = 1 << lanes_log2;
  acc_t base_h, base_w;
  pixel_base(geo, idx.h_out, idx.w_out, base_h, base_w);
  // Every point needs the same grad_output channels: the first step's are read once here
  // (the common widths, 16 and 32 channels, have only that step).
  acc_t first_grad[VEC];
  const int64_t first_c0 = thread.lane * VEC;
  if (active && first_c0 < group_channels) {
    load_channels<scalar_t, acc_t, VEC, ALIGNED>(go + first_c0, first_c0, group_channels,
                                                 first_grad);
  }
  SoftmaxStats<acc_t> stats{acc_t(0), acc_t(1)};
  if (SOFTMAX && active) stats = softmax_stats<acc_t>(point_mask, num_points);
  acc_t grad_weights[SOFTMAX ? kMaxSoftmaxPoints : 1];  // lane 0's d loss / d weight_k
  acc_t weighted_grad = acc_t(0);                         // sum_k weight_k * d weight_k

  for (int64_t k = 0; k < num_points; ++k) {
    acc_t loc_h = acc_t(0), loc_w = acc_t(0);
    acc_t m = acc_t(0);
    BilinearCorners<acc_t> corners;
    bool sampled = false;
    if (active) {
      acc_t grid_h, grid_w;
      point_grid(geo, k, grid_h, grid_w);
      sampling_location(base_h, base_w, grid_h, grid_w, static_cast<acc_t>(point_offset[2 * k]),
                        static_cast<acc_t>(point_offset[2 * k + 1]), scale, loc_h, loc_w);
      sampled = bilinear_corners(loc_h, loc_w, geo.height_in, geo.width_in, corners);
      m = point_weight(SOFTMAX, point_mask[k], stats);
    }
    // This thread's share of <grad_output, input at corner i> over its channels.
    acc_t corner_dot[4] = {acc_t(0), acc_t(0), acc_t(0), acc_t(0)};
    if (sampled) {
      for (int64_t step = 0; step < steps; ++step) {
        const int64_t c0 = ((step << lanes_log2) + thread.lane) * VEC;
        if (c0 >= group_channels) break;
        acc_t grad[VEC];
        if (step == 0) {
#pragma unroll
          for (int j = 0; j < VEC; ++j) grad[j] = first_grad[j];
        } else {
          load_channels<scalar_t, acc_t, VEC, ALIGNED>(go + c0, c0, group_channels, grad);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          if (corners.pixel[i] < 0) continue;
          const int64_t corner_base = corners.pixel[i] * channels + c0;
          acc_t value[VEC];
          load_channels<scalar_t, acc_t, VEC, ALIGNED>(image_group + corner_base, c0,
                                                       group_channels, value);
          const acc_t w = m * corners.weight[i];
          acc_t scattered[VEC];
#pragma unroll
          for (int j = 0; j < VEC; ++j) {
            corner_dot[i] += grad[j] * value[j];
            scattered[j] = w * grad[j];
          }
          atomic_add_channels<acc_t, VEC, ALIGNED>(grad_image_group + corner_base, c0,
                                                   group_channels, scattered);
        }
      }
    }
    // Both results are linear in the corner dots, so per-thread partials can be summed.
    acc_t grad_h = acc_t(0), grad_w = acc_t(0), grad_m = acc_t(0);
    if (sampled) {
      bilinear_location_grad(corners, corner_dot, grad_h, grad_w);
#pragma unroll
      for (int i = 0; i < 4; ++i) grad_m += corners.weight[i] * corner_dot[i];
    }
    for (int delta = lanes >> 1; delta > 0; delta >>= 1) {
      grad_h += __shfl_xor_sync(0xffffffffu, grad_h, delta);
      grad_w += __shfl_xor_sync(0xffffffffu, grad_w, delta);
      grad_m += __shfl_xor_sync(0xffffffffu, grad_m, delta);
    }
    if (active && thread.lane == 0) {
      // A point sampled outside the image gets exact zeros, as on the CPU: m * scale * 0 would
      // turn a non-finite mask value into NaN. (`sampled` is the same on every lane of an item.)
      const acc_t grad_scale = sampled ? m * scale : acc_t(0);
      point_grad_offset[2 * k] = static_cast<scalar_t>(grad_scale * grad_w);
      point_grad_offset[2 * k + 1] = static_cast<scalar_t>(grad_scale * grad_h);
      if constexpr (SOFTMAX) {
        grad_weights[k] = grad_m;
      } else {
        point_grad_mask[k] = static_cast<scalar_t>(grad_m);
      }
    }
    if constexpr (SOFTMAX) weighted_grad += m * grad_m;  // grad_m is the item's total on every lane
  }
  if constexpr (SOFTMAX) {
    if (active && thread.lane == 0) {
      // d logit_k = p_k * (d p_k - sum_j p_j d p_j)
      for (int64_t k = 0; k < num_points; ++k) {
        const acc_t p = softmax_weight(static_cast<acc_t>(point_mask[k]), stats);
        point_grad_mask[k] = static_cast<scalar_t>(p * (grad_weights[k] - weighted_grad));
      }
    }
  }
}

// Calls fn(std::true_type{}) or fn(std::false_type{}): a run-time flag as a template argument.
template <typename Fn>
void with_bool(bool value, Fn&& fn) {
  if (value) {
    fn(std::true_type{});
  } else {
    fn(std::false_type{});
  }
}

inline bool is_aligned(const at::Tensor& tensor, int64_t bytes) {
  return reinterpret_cast<std::uintptr_t>(tensor.const_data_ptr()) % bytes == 0;
}

inline int64_t blocks_for(int64_t items, const LaneLayout& layout) {
  const int64_t threads = items << layout.lanes_log2;
  const int64_t blocks = (threads + kBlockThreads - 1) / kBlockThreads;
  TORCH_CHECK(blocks <= std::numeric_limits<int32_t>::max(),
              "dcnv3: problem too large for one launch (", items, " pixel-groups)");
  return blocks;
}

// The host side of both passes, for a `launcher` that runs `launcher(kernel, blocks, args...)`
// as `kernel<<<blocks, kBlockThreads>>>(args...)`: on the current stream in dcnv3_cuda.cu, on
// the CPU warp emulator in the tests. `geo` comes from check_dcnv3_arguments.
template <typename Launcher>
at::Tensor dcnv3_forward_launch(const Launcher& launcher, const DCNv3Geometry& geo,
                                const at::Tensor& input, const at::Tensor& offset,
                                const at::Tensor& mask) {
  at::Tensor output =
      at::empty({geo.batch, geo.height_out, geo.width_out, geo.channels}, input.options());
  if (output.numel() == 0) return output;
  const int64_t items = geo.batch * geo.height_out * geo.width_out * geo.group;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "dcnv3_forward_cuda", [&] {
        constexpr int kVec = 16 / sizeof(scalar_t);
        const LaneLayout layout = lane_layout(geo.group_channels, kVec);
        const int64_t blocks = blocks_for(items, layout);
        const bool aligned =
            geo.group_channels % kVec == 0 && is_aligned(input, 16) && is_aligned(output, 16);
        with_bool(aligned, [&](auto aligned_tag) {
          launcher(&dcnv3_forward_kernel<scalar_t, kVec, decltype(aligned_tag)::value>, blocks,
                   geo, layout.lanes_log2, layout.steps, items,
                   input.const_data_ptr<scalar_t>(), offset.const_data_ptr<scalar_t>(),
                   mask.const_data_ptr<scalar_t>(), output.mutable_data_ptr<scalar_t>());
        });
      });
  return output;
}

// grad_offset / grad_mask: the preallocated parameter gradients (see DCNv3Op / DCNv4Op in
// dcnv3.h; one zero-filled tensor for DCNv4). Returns grad_input.
template <typename Launcher>
at::Tensor dcnv3_backward_launch(const Launcher& launcher, const DCNv3Geometry& geo,
                                 const at::Tensor& input, const at::Tensor& offset,
                                 const at::Tensor& mask, const at::Tensor& grad_output,
                                 const at::Tensor& grad_offset, const at::Tensor& grad_mask) {
  if (geo.batch == 0) return at::zeros_like(input);

  const at::ScalarType acc_type = at::toOpMathType(input.scalar_type());
  const bool accumulate_in_place = acc_type == input.scalar_type();
  at::Tensor grad_input_acc = accumulate_in_place
                                  ? at::zeros_like(input)
                                  : at::zeros(input.sizes(), input.options().dtype(acc_type));
  const int64_t items = geo.batch * geo.height_out * geo.width_out * geo.group;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "dcnv3_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        constexpr int kVec = 16 / sizeof(scalar_t);
        const LaneLayout layout = lane_layout(geo.group_channels, kVec);
        const int64_t blocks = blocks_for(items, layout);
        const bool aligned = geo.group_channels % kVec == 0 && is_aligned(input, 16) &&
                             is_aligned(grad_output, 16) && is_aligned(grad_input_acc, 16);
        with_bool(aligned, [&](auto aligned_tag) {
          with_bool(geo.softmax_mask, [&](auto softmax_tag) {
            launcher(&dcnv3_backward_kernel<scalar_t, kVec, decltype(aligned_tag)::value,
                                            decltype(softmax_tag)::value>,
                     blocks, geo, layout.lanes_log2, layout.steps, items,
                     input.const_data_ptr<scalar_t>(), offset.const_data_ptr<scalar_t>(),
                     mask.const_data_ptr<scalar_t>(), grad_output.const_data_ptr<scalar_t>(),
                     grad_input_acc.mutable_data_ptr<acc_t>(),
                     grad_offset.mutable_data_ptr<scalar_t>(),
                     grad_mask.mutable_data_ptr<scalar_t>());
          });
        });
      });

  return accumulate_in_place ? grad_input_acc : grad_input_acc.to(input.scalar_type());
}

}  // namespace ops_dcnv3
