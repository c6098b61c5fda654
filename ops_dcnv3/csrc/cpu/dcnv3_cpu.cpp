// DCNv3 CPU kernels (float32, float64, bfloat16, float16; half types accumulate in float).
//
// Layout: every (pixel, group) reads a contiguous run of group_channels values per corner, so
// each sampling point's location and bilinear weights are computed once and then applied to
// the whole run with simple loops the compiler vectorises. The common group widths (16: T to
// XL, 32: H and G) get compile-time loop bounds, and on x86 the hot loops are also compiled
// for AVX2+FMA and picked at run time, so one binary stays portable.
//
// Forward: parallel over output pixels (each pixel writes only its own outputs).
// Backward: grad_offset / grad_mask of a (pixel, group, point) are dot products over the
// group's channels and are written by exactly one task. grad_input receives scatters to four
// corners from many pixels, so work is split into units (image n, group g, pixel chunk): a
// unit only ever writes channels of group g of image n, so units with different (n, g) never
// race. When there are fewer (n, g) pairs than threads, each pair is split into pixel chunks
// that accumulate into private copies of grad_input, summed afterwards; the extra memory
// (chunks copies of the input) is only spent when it buys parallelism.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/macros/Macros.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <tuple>
#include <vector>

#include "../dcnv3.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define OPS_DCNV3_X86_DISPATCH 1
#else
#define OPS_DCNV3_X86_DISPATCH 0
#endif

namespace ops_dcnv3 {
namespace {

// Widens one stored value to the accumulation type. bfloat16 is the top half of a float, so
// a shift (which vectorises) replaces c10's scalar conversion.
template <typename acc_t, typename src_t>
C10_ALWAYS_INLINE acc_t widen(src_t value) {
  return static_cast<acc_t>(value);
}
template <>
C10_ALWAYS_INLINE float widen<float, c10::BFloat16>(c10::BFloat16 value) {
  return std::bit_cast<float>(static_cast<uint32_t>(value.x) << 16);
}

// dst[c] += alpha * src[c]
template <typename acc_t, typename src_t>
C10_ALWAYS_INLINE void axpy(acc_t* __restrict__ dst, acc_t alpha, const src_t* __restrict__ src,
                            int64_t n) {
  for (int64_t c = 0; c < n; ++c) dst[c] += alpha * widen<acc_t>(src[c]);
}

// sum_c a[c] * b[c], with independent partial sums (and a tree to add them up) so the loop
// vectorises without reassociation flags.
template <typename acc_t, typename src_t>
C10_ALWAYS_INLINE acc_t dot(const acc_t* __restrict__ a, const src_t* __restrict__ b,
                            int64_t n) {
  constexpr int64_t kLanes = 8;
  acc_t partial[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) partial[j] += a[c + j] * widen<acc_t>(b[c + j]);
  }
  for (; c < n; ++c) partial[0] += a[c] * widen<acc_t>(b[c]);
  for (int64_t width = kLanes / 2; width > 0; width /= 2) {
    for (int64_t j = 0; j < width; ++j) partial[j] += partial[j + width];
  }
  return partial[0];
}

// A per-(pixel, group) channel buffer: on the stack with a compile-time size when the group
// width is specialised (kCg > 0), otherwise on the heap.
template <typename acc_t, int64_t kCg>
struct ChannelBuffer {
  explicit ChannelBuffer(int64_t) {}
  acc_t* data() { return values.data(); }
  std::array<acc_t, kCg> values;
};

template <typename acc_t>
struct ChannelBuffer<acc_t, 0> {
  explicit ChannelBuffer(int64_t n) : values(n) {}
  acc_t* data() { return values.data(); }
  std::vector<acc_t> values;
};

template <typename scalar_t>
struct KernelArgs {
  using acc_t = at::opmath_type<scalar_t>;
  DCNv3Geometry geo;
  const acc_t* grid;  // (num_points, 2): grid_h, grid_w of each point
  const scalar_t* input;
  const scalar_t* offset;
  const scalar_t* mask;
  const scalar_t* grad_output;       // backward only
  scalar_t* output;                  // forward only
  acc_t* grad_input_acc;             // backward only: `chunks` copies of grad_input
  scalar_t* grad_offset;             // backward only
  scalar_t* grad_mask;               // backward only
  int64_t chunks = 1;                // backward only
};

// Forward for output pixels [begin, end) of the flattened (N, H_out, W_out).
template <typename scalar_t, int64_t kCg>
C10_ALWAYS_INLINE void forward_pixels(const KernelArgs<scalar_t>& args, int64_t begin,
                                      int64_t end) {
  using acc_t = at::opmath_type<scalar_t>;
  const DCNv3Geometry& geo = args.geo;
  const int64_t cg = kCg > 0 ? kCg : geo.group_channels;
  const int64_t channels = geo.channels;
  const int64_t num_points = geo.num_points;
  const int64_t pixels_out = geo.height_out * geo.width_out;
  const int64_t image_stride = geo.height_in * geo.width_in * channels;
  const acc_t scale = static_cast<acc_t>(geo.offset_scale);
  ChannelBuffer<acc_t, kCg> buffer(cg);
  acc_t* acc = buffer.data();

  for (int64_t p = begin; p < end; ++p) {
    const int64_t n = p / pixels_out;
    acc_t base_h, base_w;
    pixel_base(geo, (p % pixels_out) / geo.width_out, p % geo.width_out, base_h, base_w);
    const scalar_t* image = args.input + n * image_stride;
    for (int64_t g = 0; g < geo.group; ++g) {
      std::fill(acc, acc + cg, acc_t(0));
      const scalar_t* point_offset = args.offset + (p * geo.group + g) * num_points * 2;
      const scalar_t* point_mask = args.mask + (p * geo.group + g) * num_points;
      const scalar_t* image_group = image + g * cg;
      for (int64_t k = 0; k < num_points; ++k) {
        acc_t loc_h, loc_w;
        sampling_location(base_h, base_w, args.grid[2 * k], args.grid[2 * k + 1],
                          static_cast<acc_t>(point_offset[2 * k]),
                          static_cast<acc_t>(point_offset[2 * k + 1]), scale, loc_h, loc_w);
        BilinearCorners<acc_t> corners;
        if (!bilinear_corners(loc_h, loc_w, geo.height_in, geo.width_in, corners)) continue;
        const acc_t m = static_cast<acc_t>(point_mask[k]);
        for (int i = 0; i < 4; ++i) {
          if (corners.pixel[i] < 0) continue;
          axpy(acc, m * corners.weight[i], image_group + corners.pixel[i] * channels, cg);
        }
      }
      scalar_t* out = args.output + p * channels + g * cg;
      for (int64_t c = 0; c < cg; ++c) out[c] = static_cast<scalar_t>(acc[c]);
    }
  }
}

// Backward for work units [begin, end); unit = ((n * group) + g) * chunks + chunk.
template <typename scalar_t, int64_t kCg>
C10_ALWAYS_INLINE void backward_units(const KernelArgs<scalar_t>& args, int64_t begin,
                                      int64_t end) {
  using acc_t = at::opmath_type<scalar_t>;
  const DCNv3Geometry& geo = args.geo;
  const int64_t cg = kCg > 0 ? kCg : geo.group_channels;
  const int64_t channels = geo.channels;
  const int64_t num_points = geo.num_points;
  const int64_t pixels_out = geo.height_out * geo.width_out;
  const int64_t image_stride = geo.height_in * geo.width_in * channels;
  const acc_t scale = static_cast<acc_t>(geo.offset_scale);
  const int64_t chunks = args.chunks;
  ChannelBuffer<acc_t, kCg> buffer(cg);
  acc_t* grad_out = buffer.data();

  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t chunk = unit % chunks;
    const int64_t g = (unit / chunks) % geo.group;
    const int64_t n = unit / (chunks * geo.group);
    const scalar_t* image_group = args.input + n * image_stride + g * cg;
    acc_t* grad_image_group =
        args.grad_input_acc + (chunk * geo.batch + n) * image_stride + g * cg;
    const int64_t first = chunk * pixels_out / chunks;
    const int64_t last = (chunk + 1) * pixels_out / chunks;
    for (int64_t q = first; q < last; ++q) {
      const int64_t p = n * pixels_out + q;
      acc_t base_h, base_w;
      pixel_base(geo, q / geo.width_out, q % geo.width_out, base_h, base_w);
      const scalar_t* go = args.grad_output + p * channels + g * cg;
      for (int64_t c = 0; c < cg; ++c) grad_out[c] = widen<acc_t>(go[c]);
      const int64_t point_base = (p * geo.group + g) * num_points;
      const scalar_t* point_offset = args.offset + point_base * 2;
      const scalar_t* point_mask = args.mask + point_base;
      scalar_t* point_grad_offset = args.grad_offset + point_base * 2;
      scalar_t* point_grad_mask = args.grad_mask + point_base;
      for (int64_t k = 0; k < num_points; ++k) {
        acc_t loc_h, loc_w;
        sampling_location(base_h, base_w, args.grid[2 * k], args.grid[2 * k + 1],
                          static_cast<acc_t>(point_offset[2 * k]),
                          static_cast<acc_t>(point_offset[2 * k + 1]), scale, loc_h, loc_w);
        BilinearCorners<acc_t> corners;
        if (!bilinear_corners(loc_h, loc_w, geo.height_in, geo.width_in, corners)) {
          point_grad_offset[2 * k] = scalar_t(0);
          point_grad_offset[2 * k + 1] = scalar_t(0);
          point_grad_mask[k] = scalar_t(0);
          continue;
        }
        const acc_t m = static_cast<acc_t>(point_mask[k]);
        // corner_dot[i] = <grad_out, input at corner i>: the sample's gradient w.r.t. that
        // corner's weight, shared by grad_mask and the location gradient.
        acc_t corner_dot[4];
        acc_t sample_dot = acc_t(0);
        for (int i = 0; i < 4; ++i) {
          if (corners.pixel[i] < 0) {
            corner_dot[i] = acc_t(0);
            continue;
          }
          const int64_t corner = corners.pixel[i] * channels;
          corner_dot[i] = dot(grad_out, image_group + corner, cg);
          sample_dot += corners.weight[i] * corner_dot[i];
          axpy(grad_image_group + corner, m * corners.weight[i], grad_out, cg);
        }
        acc_t grad_h, grad_w;
        bilinear_location_grad(corners, corner_dot, grad_h, grad_w);
        point_grad_offset[2 * k] = static_cast<scalar_t>(m * scale * grad_w);
        point_grad_offset[2 * k + 1] = static_cast<scalar_t>(m * scale * grad_h);
        point_grad_mask[k] = static_cast<scalar_t>(sample_dot);
      }
    }
  }
}

// The same loops compiled for the baseline ISA and for AVX2+FMA.
template <typename scalar_t>
using RangeFn = void (*)(const KernelArgs<scalar_t>&, int64_t, int64_t);

template <typename scalar_t, int64_t kCg>
void forward_baseline(const KernelArgs<scalar_t>& args, int64_t begin, int64_t end) {
  forward_pixels<scalar_t, kCg>(args, begin, end);
}
template <typename scalar_t, int64_t kCg>
void backward_baseline(const KernelArgs<scalar_t>& args, int64_t begin, int64_t end) {
  backward_units<scalar_t, kCg>(args, begin, end);
}

#if OPS_DCNV3_X86_DISPATCH
template <typename scalar_t, int64_t kCg>
__attribute__((target("avx2,fma"))) void forward_avx2(const KernelArgs<scalar_t>& args,
                                                      int64_t begin, int64_t end) {
  forward_pixels<scalar_t, kCg>(args, begin, end);
}
template <typename scalar_t, int64_t kCg>
__attribute__((target("avx2,fma"))) void backward_avx2(const KernelArgs<scalar_t>& args,
                                                       int64_t begin, int64_t end) {
  backward_units<scalar_t, kCg>(args, begin, end);
}

bool cpu_has_avx2_fma() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported;
}
#endif

template <typename scalar_t, int64_t kCg>
RangeFn<scalar_t> select_for_isa(bool backward) {
#if OPS_DCNV3_X86_DISPATCH
  if (cpu_has_avx2_fma()) {
    return backward ? &backward_avx2<scalar_t, kCg> : &forward_avx2<scalar_t, kCg>;
  }
#endif
  return backward ? &backward_baseline<scalar_t, kCg> : &forward_baseline<scalar_t, kCg>;
}

template <typename scalar_t>
RangeFn<scalar_t> select_kernel(int64_t group_channels, bool backward) {
  switch (group_channels) {
    case 16:
      return select_for_isa<scalar_t, 16>(backward);
    case 32:
      return select_for_isa<scalar_t, 32>(backward);
    default:
      return select_for_isa<scalar_t, 0>(backward);
  }
}

// Kernel-grid displacements of all points, computed once per call.
template <typename acc_t>
std::vector<acc_t> grid_table(const DCNv3Geometry& geo) {
  std::vector<acc_t> grid(2 * geo.num_points);
  for (int64_t k = 0; k < geo.num_points; ++k) point_grid(geo, k, grid[2 * k], grid[2 * k + 1]);
  return grid;
}

at::Tensor dcnv3_forward_cpu(const at::Tensor& input, const at::Tensor& offset,
                             const at::Tensor& mask, int64_t kernel_h, int64_t kernel_w,
                             int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                             int64_t dilation_h, int64_t dilation_w, int64_t group,
                             int64_t group_channels, double offset_scale, int64_t im2col_step,
                             bool remove_center) {
  const DCNv3Geometry geo = check_dcnv3_arguments(
      "dcnv3_forward", input, offset, mask, at::Tensor(), kernel_h, kernel_w, stride_h,
      stride_w, pad_h, pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
      im2col_step, remove_center);
  at::Tensor output =
      at::empty({geo.batch, geo.height_out, geo.width_out, geo.channels}, input.options());
  if (output.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, input.scalar_type(), "dcnv3_forward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const std::vector<acc_t> grid = grid_table<acc_t>(geo);
        KernelArgs<scalar_t> args{geo, grid.data(), input.const_data_ptr<scalar_t>(),
                                  offset.const_data_ptr<scalar_t>(),
                                  mask.const_data_ptr<scalar_t>()};
        args.output = output.mutable_data_ptr<scalar_t>();
        const RangeFn<scalar_t> kernel = select_kernel<scalar_t>(geo.group_channels, false);
        // Enough pixels per task to amortise scheduling (a pixel costs ~4*C*K multiply-adds).
        const int64_t grain = std::max<int64_t>(1, 8192 / (geo.channels * geo.num_points));
        at::parallel_for(0, geo.batch * geo.height_out * geo.width_out, grain,
                         [&](int64_t begin, int64_t end) { kernel(args, begin, end); });
      });
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> dcnv3_backward_cpu(
    const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
    const at::Tensor& grad_output, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
    int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
    int64_t group, int64_t group_channels, double offset_scale, int64_t im2col_step,
    bool remove_center) {
  const DCNv3Geometry geo = check_dcnv3_arguments(
      "dcnv3_backward", input, offset, mask, grad_output, kernel_h, kernel_w, stride_h,
      stride_w, pad_h, pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
      im2col_step, remove_center);
  at::Tensor grad_offset = at::empty_like(offset);
  at::Tensor grad_mask = at::empty_like(mask);
  if (geo.batch == 0) return {at::zeros_like(input), grad_offset, grad_mask};

  const at::ScalarType acc_type = at::toOpMathType(input.scalar_type());
  const int64_t pairs = geo.batch * geo.group;
  const int64_t threads = at::get_num_threads();
  const int64_t chunks = std::clamp<int64_t>((threads + pairs - 1) / pairs, 1,
                                             geo.height_out * geo.width_out);
  const bool accumulate_in_place = chunks == 1 && acc_type == input.scalar_type();
  at::Tensor grad_input_acc =
      accumulate_in_place
          ? at::zeros_like(input)
          : at::zeros({chunks, geo.batch, geo.height_in, geo.width_in, geo.channels},
                      input.options().dtype(acc_type));

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, input.scalar_type(), "dcnv3_backward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const std::vector<acc_t> grid = grid_table<acc_t>(geo);
        KernelArgs<scalar_t> args{geo, grid.data(), input.const_data_ptr<scalar_t>(),
                                  offset.const_data_ptr<scalar_t>(),
                                  mask.const_data_ptr<scalar_t>()};
        args.grad_output = grad_output.const_data_ptr<scalar_t>();
        args.grad_input_acc = grad_input_acc.mutable_data_ptr<acc_t>();
        args.grad_offset = grad_offset.mutable_data_ptr<scalar_t>();
        args.grad_mask = grad_mask.mutable_data_ptr<scalar_t>();
        args.chunks = chunks;
        const RangeFn<scalar_t> kernel = select_kernel<scalar_t>(geo.group_channels, true);
        at::parallel_for(0, pairs * chunks, 1,
                         [&](int64_t begin, int64_t end) { kernel(args, begin, end); });
      });

  at::Tensor grad_input =
      accumulate_in_place ? grad_input_acc : grad_input_acc.sum(0).to(input.scalar_type());
  return {grad_input, grad_offset, grad_mask};
}

}  // namespace

TORCH_LIBRARY_IMPL(ops_dcnv3, CPU, m) {
  m.impl("dcnv3_forward", &dcnv3_forward_cpu);
  m.impl("dcnv3_backward", &dcnv3_backward_cpu);
}

}  // namespace ops_dcnv3
