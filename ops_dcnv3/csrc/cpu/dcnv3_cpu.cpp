// DCNv3 and DCNv4 CPU kernels (float32, float64, bfloat16, float16; half types accumulate in
// float). DCNv4 runs the same loops: only where a point's offsets and weight are read from
// differs (offset_start / mask_start of dcnv3_sampling.h).
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
#include <ATen/Version.h>
#include <c10/macros/Macros.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <tuple>
#include <vector>

#include "../dcnv3.h"

#if defined(__GNUC__)
// The 8-float vectors below only live in internal, always-inlined helpers, so GCC's note that
// passing AVX vectors changes the ABI in the baseline build does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define OPS_DCNV3_X86_DISPATCH 1
#include <immintrin.h>
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

// The accumulators of one (pixel, group): its group_channels values in the accumulation type,
// with the few operations the kernels need. This generic version loops over a runtime (kCg
// == 0) or compile-time channel count; a vectorised specialisation follows.
template <typename scalar_t, int64_t kCg, int kLanes, typename Enable = void>
class GroupChannels {
 public:
  using acc_t = at::opmath_type<scalar_t>;

  explicit GroupChannels(int64_t count) : count_(count) {
    if constexpr (kCg == 0) values_.resize(count_);
  }
  void zero() { std::fill(values_.begin(), values_.end(), acc_t(0)); }
  void load(const scalar_t* __restrict__ src) {
    for (int64_t c = 0; c < size(); ++c) values_[c] = widen<acc_t>(src[c]);
  }
  void store(scalar_t* __restrict__ dst) const {
    for (int64_t c = 0; c < size(); ++c) dst[c] = static_cast<scalar_t>(values_[c]);
  }
  // this += alpha * src
  void add_scaled(acc_t alpha, const scalar_t* __restrict__ src) {
    for (int64_t c = 0; c < size(); ++c) values_[c] += alpha * widen<acc_t>(src[c]);
  }
  // dst += alpha * this
  void scaled_add_to(acc_t* __restrict__ dst, acc_t alpha) const {
    for (int64_t c = 0; c < size(); ++c) dst[c] += alpha * values_[c];
  }
  // <this, src>, with independent partial sums (added as a tree) so the loop vectorises
  // without reassociation flags.
  acc_t dot(const scalar_t* __restrict__ src) const {
    constexpr int64_t kPartials = 8;
    acc_t partial[kPartials] = {};
    int64_t c = 0;
    for (; c + kPartials <= size(); c += kPartials) {
      for (int64_t j = 0; j < kPartials; ++j) partial[j] += values_[c + j] * widen<acc_t>(src[c + j]);
    }
    if constexpr (kCg == 0 || kCg % kPartials != 0) {
      for (; c < size(); ++c) partial[0] += values_[c] * widen<acc_t>(src[c]);
    }
    for (int64_t width = kPartials / 2; width > 0; width /= 2) {
      for (int64_t j = 0; j < width; ++j) partial[j] += partial[j + width];
    }
    return partial[0];
  }
  // out[i] = <this, src[i]> for the four corners of a sample.
  void dot4(const scalar_t* const src[4], acc_t out[4]) const {
    for (int i = 0; i < 4; ++i) out[i] = dot(src[i]);
  }

 private:
  // A compile-time bound when specialised, so the loops unroll.
  int64_t size() const { return kCg > 0 ? kCg : count_; }

  const int64_t count_;
  std::conditional_t<kCg == 0, std::vector<acc_t>, std::array<acc_t, (kCg > 0 ? kCg : 1)>>
      values_;
};

#if defined(__GNUC__)
// float / bfloat16 groups of a multiple of kLanes (8 or 16) channels, in explicit float
// vectors (GCC/Clang vector extensions: AVX or AVX-512 registers in those builds, SSE pairs
// otherwise). Auto-vectorisation of the loops above proved unreliable once fully unrolled,
// notably for bfloat16.
typedef float Float16 __attribute__((vector_size(64)));
typedef float Float8 __attribute__((vector_size(32)));
typedef float Float4 __attribute__((vector_size(16)));
typedef uint32_t Uint32x16 __attribute__((vector_size(64)));
typedef uint32_t Uint32x8 __attribute__((vector_size(32)));
typedef uint16_t Uint16x16 __attribute__((vector_size(32)));
typedef uint16_t Uint16x8 __attribute__((vector_size(16)));

template <int kLanes>
struct FloatVector;
template <>
struct FloatVector<8> {
  using Type = Float8;
  using Bits = Uint32x8;
  using Half = Uint16x8;
};
template <>
struct FloatVector<16> {
  using Type = Float16;
  using Bits = Uint32x16;
  using Half = Uint16x16;
};

template <int kLanes>
C10_ALWAYS_INLINE typename FloatVector<kLanes>::Type load_vector(const float* src) {
  typename FloatVector<kLanes>::Type v;
  std::memcpy(&v, src, sizeof(v));
  return v;
}
template <int kLanes>
C10_ALWAYS_INLINE typename FloatVector<kLanes>::Type load_vector(const c10::BFloat16* src) {
  using Vector = FloatVector<kLanes>;
  typename Vector::Half raw;
  std::memcpy(&raw, src, sizeof(raw));
  return reinterpret_cast<typename Vector::Type>(
      __builtin_convertvector(raw, typename Vector::Bits) << 16);
}
template <typename Vector>
C10_ALWAYS_INLINE void store_vector(float* dst, const Vector& v) {
  std::memcpy(dst, &v, sizeof(v));
}
C10_ALWAYS_INLINE Float8 load8(const float* src) { return load_vector<8>(src); }
C10_ALWAYS_INLINE void store8(float* dst, const Float8& v) { store_vector(dst, v); }

// The 16 lanes of a vector folded to 8 (lane i + lane i + 8); 8 lanes stay as they are.
C10_ALWAYS_INLINE Float8 fold_to_8(const Float8& v) { return v; }
C10_ALWAYS_INLINE Float8 fold_to_8(const Float16& v) {
  return __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
         __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
}

template <typename scalar_t, int64_t kCg, int kLanes>
class GroupChannels<scalar_t, kCg, kLanes,
                    std::enable_if_t<(kCg > 0 && kCg % kLanes == 0) &&
                                     (std::is_same_v<scalar_t, float> ||
                                      std::is_same_v<scalar_t, c10::BFloat16>)>> {
 public:
  using acc_t = float;
  using Vector = typename FloatVector<kLanes>::Type;
  static constexpr int64_t kVectors = kCg / kLanes;

  explicit GroupChannels(int64_t) {}
  void zero() {
    for (int64_t v = 0; v < kVectors; ++v) values_[v] = Vector{};
  }
  void load(const scalar_t* src) {
    for (int64_t v = 0; v < kVectors; ++v) values_[v] = load_vector<kLanes>(src + kLanes * v);
  }
  void store(scalar_t* dst) const {
    for (int64_t v = 0; v < kVectors; ++v) {
      if constexpr (std::is_same_v<scalar_t, float>) {
        store_vector(dst + kLanes * v, values_[v]);
      } else {
        for (int j = 0; j < kLanes; ++j) {
          dst[kLanes * v + j] = static_cast<scalar_t>(values_[v][j]);
        }
      }
    }
  }
  void add_scaled(float alpha, const scalar_t* src) {
    for (int64_t v = 0; v < kVectors; ++v) {
      values_[v] += alpha * load_vector<kLanes>(src + kLanes * v);
    }
  }
  void scaled_add_to(float* dst, float alpha) const {
    for (int64_t v = 0; v < kVectors; ++v) {
      store_vector(dst + kLanes * v, load_vector<kLanes>(dst + kLanes * v) + alpha * values_[v]);
    }
  }
  // out[i] = <this, src[i]> for the four corners of a sample: the four horizontal sums are
  // reduced together (shuffle-and-add rounds shared by the four).
  void dot4(const scalar_t* const src[4], float out[4]) const {
    Float8 sum[4];
    for (int i = 0; i < 4; ++i) sum[i] = fold_to_8(products(src[i]));
    // Halves of sums 0 and 1, then of 2 and 3: lanes 0-3 belong to one sum, 4-7 to the other.
    const Float8 sum01 = __builtin_shufflevector(sum[0], sum[1], 0, 1, 2, 3, 8, 9, 10, 11) +
                         __builtin_shufflevector(sum[0], sum[1], 4, 5, 6, 7, 12, 13, 14, 15);
    const Float8 sum23 = __builtin_shufflevector(sum[2], sum[3], 0, 1, 2, 3, 8, 9, 10, 11) +
                         __builtin_shufflevector(sum[2], sum[3], 4, 5, 6, 7, 12, 13, 14, 15);
    // Pairs: lanes (0, 1) sum 0, (2, 3) sum 2, (4, 5) sum 1, (6, 7) sum 3.
    const Float8 pairs = __builtin_shufflevector(sum01, sum23, 0, 1, 8, 9, 4, 5, 12, 13) +
                         __builtin_shufflevector(sum01, sum23, 2, 3, 10, 11, 6, 7, 14, 15);
    const Float4 total = __builtin_shufflevector(pairs, pairs, 0, 4, 2, 6) +
                         __builtin_shufflevector(pairs, pairs, 1, 5, 3, 7);
    for (int i = 0; i < 4; ++i) out[i] = total[i];
  }

 private:
  // Lane-wise products with src, summed over the group's vectors.
  Vector products(const scalar_t* src) const {
    Vector sum = values_[0] * load_vector<kLanes>(src);
    for (int64_t v = 1; v < kVectors; ++v) {
      sum += values_[v] * load_vector<kLanes>(src + kLanes * v);
    }
    return sum;
  }

  Vector values_[kVectors];
};
#endif

// Pixels whose sampling geometry is computed together, for one group: kTilePixels * K points
// per pass, enough for the point loop of tile_geometry to fill several vectors.
constexpr int64_t kTilePixels = 8;
// The widest vector of points the per-point loops step by (PointLanes::kWidth).
constexpr int64_t kMaxPointLanes = 8;

// Length of the per-point buffers of a tile: its items rounded up to whole vectors of the
// point loops (zero-filled, so the padding lanes compute finite values that nothing reads).
inline int64_t padded_tile_items(int64_t num_points) {
  return kTilePixels * num_points + kMaxPointLanes;
}

// The pointers and tables of one pass; the pass sets its outputs (and backward its inputs).
template <typename scalar_t>
struct KernelArgs {
  using acc_t = at::opmath_type<scalar_t>;

  KernelArgs(const DCNv3Geometry& geo_, const at::Tensor& input_, const at::Tensor& offset_,
             const at::Tensor& mask_)
      : geo(geo_),
        tile_grid_h(padded_tile_items(geo_.num_points)),
        tile_grid_w(padded_tile_items(geo_.num_points)),
        input(input_.const_data_ptr<scalar_t>()),
        offset(offset_.const_data_ptr<scalar_t>()),
        mask(mask_.const_data_ptr<scalar_t>()) {
    // Kernel-grid displacements of the points, computed once per call and repeated for each
    // pixel of a tile (item j = t * K + k), as tile_geometry reads them.
    for (int64_t j = 0; j < kTilePixels * geo.num_points; ++j) {
      point_grid(geo, j % geo.num_points, tile_grid_h[j], tile_grid_w[j]);
    }
  }

  DCNv3Geometry geo;
  std::vector<acc_t> tile_grid_h, tile_grid_w;  // padded_tile_items(num_points)
  const scalar_t* input;
  const scalar_t* offset;
  const scalar_t* mask;
  scalar_t* output = nullptr;             // forward only
  const scalar_t* grad_output = nullptr;  // backward only, from here on
  acc_t* grad_input_acc = nullptr;        // `chunks` copies of grad_input (N, H, W, C)
  scalar_t* grad_offset = nullptr;
  scalar_t* grad_mask = nullptr;
  int64_t chunks = 1;
  int64_t group_blocks = 1;
};

// grad_mask of one (pixel, group) from the gradients of its point weights: as is, or through
// the softmax (d logit_k = p_k * (d p_k - sum_j p_j d p_j)) with softmax_mask.
template <typename scalar_t, typename acc_t>
C10_ALWAYS_INLINE void write_mask_grad(const DCNv3Geometry& geo, const acc_t* weights,
                                       const acc_t* grad_weights, scalar_t* grad_mask) {
  if (geo.softmax_mask) {
    acc_t weighted = acc_t(0);
    for (int64_t k = 0; k < geo.num_points; ++k) weighted += weights[k] * grad_weights[k];
    for (int64_t k = 0; k < geo.num_points; ++k) {
      grad_mask[k] = static_cast<scalar_t>(weights[k] * (grad_weights[k] - weighted));
    }
  } else {
    for (int64_t k = 0; k < geo.num_points; ++k) {
      grad_mask[k] = static_cast<scalar_t>(grad_weights[k]);
    }
  }
}

// Sizes the loops of both passes use, bound to locals at their start (a compile-time group
// width when kCg > 0).
template <typename acc_t, int64_t kCg>
struct LoopSizes {
  explicit LoopSizes(const DCNv3Geometry& geo)
      : cg(kCg > 0 ? kCg : geo.group_channels),
        channels(geo.channels),
        num_points(geo.num_points),
        pixels_out(geo.height_out * geo.width_out),
        image_stride(geo.height_in * geo.width_in * geo.channels),
        scale(static_cast<acc_t>(geo.offset_scale)) {}
  int64_t cg;
  int64_t channels;
  int64_t num_points;
  int64_t pixels_out;
  int64_t image_stride;  // elements of one image
  acc_t scale;           // offset_scale
};

// Per-point buffers of one tile (item j = t * K + k: pixel t of the tile, point k), reused
// from tile to tile. gather_tile fills the inputs, then tile_geometry the rest, a vector of
// points at a time: the per-point location and corner arithmetic, as scalar code in front
// of each point's channel loops, dominated both passes.
template <typename acc_t>
struct TileBuffers {
  explicit TileBuffers(int64_t num_points)
      : base_h(padded_tile_items(num_points)),
        base_w(padded_tile_items(num_points)),
        offset_x(padded_tile_items(num_points)),
        offset_y(padded_tile_items(num_points)),
        point_weight(padded_tile_items(num_points)),
        logit_max(padded_tile_items(num_points)),
        frac_h(padded_tile_items(num_points)),
        frac_w(padded_tile_items(num_points)),
        inside(padded_tile_items(num_points)) {
    for (auto& buffer : pixel) buffer.resize(padded_tile_items(num_points));
    for (auto& buffer : weight) buffer.resize(padded_tile_items(num_points));
  }
  // Inputs: kernel centre of the item's pixel, its offsets and its point weight (mask);
  // with softmax_mask, the largest logit of the item's (pixel, group).
  std::vector<acc_t> base_h, base_w, offset_x, offset_y, point_weight, logit_max;
  // Outputs: per corner (order of BilinearCorners) the flat pixel in the image (-1 outside)
  // and the bilinear weight (0 outside); the location's fractional parts; whether any corner
  // lies inside the image.
  std::array<std::vector<int32_t>, 4> pixel;
  std::array<std::vector<acc_t>, 4> weight;
  std::vector<acc_t> frac_h, frac_w;
  std::vector<int32_t> inside;  // nonzero where any corner is inside
};

// How the per-point loops below step through a tile's items: one scalar at a time (double,
// and compilers without vector extensions), or 8 floats at a time in explicit vectors. The
// compiler does not vectorise these loops by itself (floor and the selects stay scalar
// branches under the default -ftrapping-math), so they are written in vectors directly.
template <typename acc_t, typename Enable = void>
struct PointLanes {
  using Value = acc_t;
  using Int = int32_t;
  static constexpr int64_t kWidth = 1;
  static Value load(const acc_t* src) { return *src; }
  static Int load(const int32_t* src) { return *src; }
  static void store(acc_t* dst, Value v) { *dst = v; }
  static void store(int32_t* dst, Int v) { *dst = v; }
  static Int to_int(Value v) { return static_cast<Int>(v); }  // truncates
  static Value to_value(Int v) { return static_cast<Value>(v); }
  static Value exp(Value v) { return exp_value(v); }
};

#if defined(__GNUC__)
typedef int32_t Int32x8 __attribute__((vector_size(32)));

template <typename acc_t>
struct PointLanes<acc_t, std::enable_if_t<std::is_same_v<acc_t, float>>> {
  using Value = Float8;
  using Int = Int32x8;
  static constexpr int64_t kWidth = 8;
  static_assert(kWidth <= kMaxPointLanes);
  static Value load(const float* src) { return load8(src); }
  static Int load(const int32_t* src) {
    Int v;
    std::memcpy(&v, src, sizeof(v));
    return v;
  }
  static void store(float* dst, Value v) { store8(dst, v); }
  static void store(int32_t* dst, Int v) { std::memcpy(dst, &v, sizeof(v)); }
  static Int to_int(Value v) { return __builtin_convertvector(v, Int); }  // truncates
  static Value to_value(Int v) { return __builtin_convertvector(v, Value); }
  // e^v as 2^n * e^r with n = round(v / ln 2), |r| <= ln(2) / 2 and e^r from the classic
  // degree-6 minimax polynomial of single-precision exp (Cephes expf): within ~2 ulp of expf.
  // v is clamped to where 2^n is a normal float (e^-87.3 ~ 1e-38 stands in for smaller
  // results); NaN stays NaN.
  static Value exp(Value v) {
    const Value zero = Value{};
    v = v > 88.0f ? zero + 88.0f : v;
    v = v < -87.3f ? zero - 87.3f : v;
    const Value scaled = v * 1.44269504088896341f + 0.5f;
    const Int truncated = to_int(scaled);
    const Int n = to_value(truncated) > scaled ? truncated - 1 : truncated;  // floor
    const Value n_value = to_value(n);
    // r = v - n ln 2, with ln 2 split in two so that n * 0.693359375 is exact.
    const Value r = v - n_value * 0.693359375f + n_value * 2.12194440e-4f;
    Value poly = zero + 1.9875691500e-4f;
    poly = poly * r + 1.3981999507e-3f;
    poly = poly * r + 8.3334519073e-3f;
    poly = poly * r + 4.1665795894e-2f;
    poly = poly * r + 1.6666665459e-1f;
    poly = poly * r + 5.0000001201e-1f;
    const Value exp_r = poly * (r * r) + r + 1.0f;
    return exp_r * reinterpret_cast<Value>((n + 127) << 23);
  }
};
#endif

// The point weights of a tile from their logits: per (pixel, group) the softmax over its K
// points in its stable form (exp(logit - max) / sum), the exps a vector at a time. NaN
// logits give NaN weights, as torch.softmax does.
template <typename acc_t>
C10_ALWAYS_INLINE void softmax_tile(int64_t tile, int64_t num_points, TileBuffers<acc_t>& b) {
  using Lanes = PointLanes<acc_t>;
  for (int64_t j = 0; j < tile * num_points; j += Lanes::kWidth) {
    Lanes::store(&b.point_weight[j],
                 Lanes::exp(Lanes::load(&b.point_weight[j]) - Lanes::load(&b.logit_max[j])));
  }
  for (int64_t t = 0; t < tile; ++t) {
    acc_t* weights = b.point_weight.data() + t * num_points;
    acc_t sum = acc_t(0);
    for (int64_t k = 0; k < num_points; ++k) sum += weights[k];
    const acc_t inv_sum = acc_t(1) / sum;
    for (int64_t k = 0; k < num_points; ++k) weights[k] *= inv_sum;
  }
}

// Gathers the inputs of `tile` pixels starting at flat output pixel p0, group g: kernel
// centres, offsets and point weights (softmax of the logits with softmax_mask).
template <typename scalar_t, typename acc_t>
C10_ALWAYS_INLINE void gather_tile(const KernelArgs<scalar_t>& args, int64_t p0, int64_t tile,
                                   int64_t g, TileBuffers<acc_t>& b) {
  const DCNv3Geometry& geo = args.geo;
  const int64_t num_points = geo.num_points;
  const int64_t pixels_out = geo.height_out * geo.width_out;
  for (int64_t t = 0; t < tile; ++t) {
    const int64_t p = p0 + t;
    const int64_t q = p % pixels_out;
    acc_t base_h, base_w;
    pixel_base(geo, q / geo.width_out, q % geo.width_out, base_h, base_w);
    const scalar_t* point_offset = args.offset + offset_start(geo, p * geo.group + g);
    const scalar_t* point_mask = args.mask + mask_start(geo, p * geo.group + g);
    const acc_t max = geo.softmax_mask ? logit_max<acc_t>(point_mask, num_points) : acc_t(0);
    for (int64_t k = 0; k < num_points; ++k) {
      const int64_t j = t * num_points + k;
      b.base_h[j] = base_h;
      b.base_w[j] = base_w;
      b.offset_x[j] = static_cast<acc_t>(point_offset[2 * k]);
      b.offset_y[j] = static_cast<acc_t>(point_offset[2 * k + 1]);
      b.point_weight[j] = static_cast<acc_t>(point_mask[k]);
      b.logit_max[j] = max;
    }
  }
  if (geo.softmax_mask) softmax_tile(tile, num_points, b);
}

// Corners, bilinear weights and fractional parts of `items` gathered points: the arithmetic
// of sampling_location and bilinear_corners (dcnv3_sampling.h), branch-free, a vector of
// points at a time (the buffers are padded to whole vectors). Pixels are int32:
// forward_cpu / backward_cpu check that an image has fewer than 2^31.
template <typename scalar_t, typename acc_t>
C10_ALWAYS_INLINE void tile_geometry(const KernelArgs<scalar_t>& args, int64_t items,
                                     TileBuffers<acc_t>& b) {
  using Lanes = PointLanes<acc_t>;
  using Value = typename Lanes::Value;
  using Int = typename Lanes::Int;
  const acc_t* grid_h = args.tile_grid_h.data();
  const acc_t* grid_w = args.tile_grid_w.data();
  const acc_t scale = static_cast<acc_t>(args.geo.offset_scale);
  const int32_t height = static_cast<int32_t>(args.geo.height_in);
  const int32_t width = static_cast<int32_t>(args.geo.width_in);
  const acc_t height_f = static_cast<acc_t>(height);
  const acc_t width_f = static_cast<acc_t>(width);
  const Value zero = Value{} * acc_t(0);
  const Value one = zero + acc_t(1);
  for (int64_t j = 0; j < items; j += Lanes::kWidth) {
    const Value loc_h = Lanes::load(&b.base_h[j]) +
                        (Lanes::load(grid_h + j) + Lanes::load(&b.offset_y[j])) * scale;
    const Value loc_w = Lanes::load(&b.base_w[j]) +
                        (Lanes::load(grid_w + j) + Lanes::load(&b.offset_x[j])) * scale;
    // False for NaN locations too; such points then read nothing, as in bilinear_corners.
    const Int inside = (loc_h >= acc_t(-1)) & (loc_w >= acc_t(-1)) & (loc_h < height_f) &
                       (loc_w < width_f);
    // Outside, a harmless location stands in, so the int conversion stays defined.
    const Value safe_h = inside ? loc_h : zero;
    const Value safe_w = inside ? loc_w : zero;
    // floor of values >= -1: truncate, then step down where truncation rounded up.
    const Int trunc_h = Lanes::to_int(safe_h);
    const Int trunc_w = Lanes::to_int(safe_w);
    const Int h_low = Lanes::to_value(trunc_h) > safe_h ? trunc_h - 1 : trunc_h;
    const Int w_low = Lanes::to_value(trunc_w) > safe_w ? trunc_w - 1 : trunc_w;
    const Value frac_h = safe_h - Lanes::to_value(h_low);
    const Value frac_w = safe_w - Lanes::to_value(w_low);
    const Int h_low_in = inside & (h_low >= 0);
    const Int h_high_in = inside & (h_low + 1 < height);
    const Int w_low_in = inside & (w_low >= 0);
    const Int w_high_in = inside & (w_low + 1 < width);
    const Int row_low = h_low * width;
    const Int none = Int{} - 1;
    Lanes::store(&b.pixel[0][j], (h_low_in & w_low_in) ? row_low + w_low : none);
    Lanes::store(&b.pixel[1][j], (h_low_in & w_high_in) ? row_low + w_low + 1 : none);
    Lanes::store(&b.pixel[2][j], (h_high_in & w_low_in) ? row_low + width + w_low : none);
    Lanes::store(&b.pixel[3][j], (h_high_in & w_high_in) ? row_low + width + w_low + 1 : none);
    Lanes::store(&b.weight[0][j],
                 (h_low_in & w_low_in) ? (one - frac_h) * (one - frac_w) : zero);
    Lanes::store(&b.weight[1][j], (h_low_in & w_high_in) ? (one - frac_h) * frac_w : zero);
    Lanes::store(&b.weight[2][j], (h_high_in & w_low_in) ? frac_h * (one - frac_w) : zero);
    Lanes::store(&b.weight[3][j], (h_high_in & w_high_in) ? frac_h * frac_w : zero);
    Lanes::store(&b.frac_h[j], frac_h);
    Lanes::store(&b.frac_w[j], frac_w);
    Lanes::store(&b.inside[j], inside);
  }
}

// Everything the channel loops need of `tile` pixels from flat output pixel p0, group g:
// the gathered inputs, then the sampling geometry.
template <typename scalar_t, typename acc_t>
C10_ALWAYS_INLINE void prepare_tile(const KernelArgs<scalar_t>& args, int64_t p0, int64_t tile,
                                    int64_t g, TileBuffers<acc_t>& b) {
  gather_tile(args, p0, tile, g, b);
  tile_geometry(args, tile * args.geo.num_points, b);
}

// Forward for output pixels [begin, end) of the flattened (N, H_out, W_out).
template <typename scalar_t, int64_t kCg, int kLanes>
C10_ALWAYS_INLINE void forward_pixels(const KernelArgs<scalar_t>& args, int64_t begin,
                                      int64_t end) {
  using acc_t = at::opmath_type<scalar_t>;
  const DCNv3Geometry& geo = args.geo;
  const auto [cg, channels, num_points, pixels_out, image_stride, scale] =
      LoopSizes<acc_t, kCg>(geo);
  GroupChannels<scalar_t, kCg, kLanes> acc(cg);
  TileBuffers<acc_t> b(num_points);

  for (int64_t p0 = begin; p0 < end; p0 += kTilePixels) {
    const int64_t tile = std::min(kTilePixels, end - p0);
    for (int64_t g = 0; g < geo.group; ++g) {
      prepare_tile(args, p0, tile, g, b);
      for (int64_t t = 0; t < tile; ++t) {
        const int64_t p = p0 + t;
        const scalar_t* image_group = args.input + (p / pixels_out) * image_stride + g * cg;
        acc.zero();
        for (int64_t j = t * num_points; j < (t + 1) * num_points; ++j) {
          const acc_t m = b.point_weight[j];
          for (int i = 0; i < 4; ++i) {
            const int32_t pixel = b.pixel[i][j];
            if (pixel < 0) continue;
            acc.add_scaled(m * b.weight[i][j], image_group + pixel * channels);
          }
        }
        acc.store(args.output + p * channels + g * cg);
      }
    }
  }
}

// Per-thread scratch of the backward pass, reused from tile to tile.
template <typename scalar_t, int64_t kCg, int kLanes>
struct BackwardScratch {
  using acc_t = at::opmath_type<scalar_t>;
  BackwardScratch(int64_t cg, int64_t num_points)
      : tile(num_points),
        grad_h(padded_tile_items(num_points)),
        grad_w(padded_tile_items(num_points)),
        grad_weights(padded_tile_items(num_points)),
        zero_row(cg, scalar_t(0)) {
    for (auto& buffer : corner_dot) buffer.resize(padded_tile_items(num_points));
  }
  TileBuffers<acc_t> tile;
  // corner_dot[i][j] = <grad_out, input at corner i of item j>: the sample's gradient w.r.t.
  // that corner's weight, shared by grad_mask and the location gradient.
  std::array<std::vector<acc_t>, 4> corner_dot;
  std::vector<acc_t> grad_h, grad_w;  // d loss / d location, times offset_scale and weight
  std::vector<acc_t> grad_weights;    // d loss / d point weight
  const std::vector<scalar_t> zero_row;  // what corners outside the image read
};

// Backward of group g for the `tile` output pixels from flat pixel p0 (all in image n),
// accumulating grad_input into copy `chunk`.
template <typename scalar_t, int64_t kCg, int kLanes>
C10_ALWAYS_INLINE void backward_tile(const KernelArgs<scalar_t>& args,
                                     BackwardScratch<scalar_t, kCg, kLanes>& scratch,
                                     GroupChannels<scalar_t, kCg, kLanes>& grad_out, int64_t n,
                                     int64_t chunk, int64_t g, int64_t p0, int64_t tile) {
  using acc_t = at::opmath_type<scalar_t>;
  const DCNv3Geometry& geo = args.geo;
  const auto [cg, channels, num_points, pixels_out, image_stride, scale] =
      LoopSizes<acc_t, kCg>(geo);
  const int64_t items = tile * num_points;
  auto& b = scratch.tile;
  auto& corner_dot = scratch.corner_dot;
  auto& grad_h = scratch.grad_h;
  auto& grad_w = scratch.grad_w;
  auto& grad_weights = scratch.grad_weights;
  const auto& zero_row = scratch.zero_row;
  const scalar_t* image_group = args.input + n * image_stride + g * cg;
  acc_t* grad_image_group =
      args.grad_input_acc + (chunk * geo.batch + n) * image_stride + g * cg;
  prepare_tile(args, p0, tile, g, b);
  // The channel loops: four dot products and four scatters per point.
  for (int64_t t = 0; t < tile; ++t) {
    grad_out.load(args.grad_output + (p0 + t) * channels + g * cg);
    for (int64_t j = t * num_points; j < (t + 1) * num_points; ++j) {
      // The same point of the next pixel: its corner rows are fetched while this one's
      // are used (the corner reads and the read-modify-write scatters wait on memory).
      if (j + num_points < items) {
        for (int i = 0; i < 4; ++i) {
          const int32_t ahead = b.pixel[i][j + num_points];
          if (ahead >= 0) {
            __builtin_prefetch(image_group + static_cast<int64_t>(ahead) * channels);
            __builtin_prefetch(grad_image_group + static_cast<int64_t>(ahead) * channels, 1);
          }
        }
      }
      // Corners outside read the zero row, so the four dots are taken together.
      const scalar_t* corner_input[4];
      for (int i = 0; i < 4; ++i) {
        const int32_t pixel = b.pixel[i][j];
        corner_input[i] =
            pixel < 0 ? zero_row.data() : image_group + static_cast<int64_t>(pixel) * channels;
      }
      acc_t dots[4];
      grad_out.dot4(corner_input, dots);
      const acc_t m = b.point_weight[j];
      for (int i = 0; i < 4; ++i) {
        const int32_t pixel = b.pixel[i][j];
        corner_dot[i][j] = pixel < 0 ? acc_t(0) : dots[i];
        if (pixel < 0) continue;
        grad_out.scaled_add_to(grad_image_group + static_cast<int64_t>(pixel) * channels,
                               m * b.weight[i][j]);
      }
    }
  }
  // Location and weight gradients of the tile's points (bilinear_location_grad), a vector
  // of points at a time.
  using Lanes = PointLanes<acc_t>;
  using Value = typename Lanes::Value;
  const Value zero = Value{} * acc_t(0);
  for (int64_t j = 0; j < items; j += Lanes::kWidth) {
    const Value dot0 = Lanes::load(&corner_dot[0][j]);
    const Value dot1 = Lanes::load(&corner_dot[1][j]);
    const Value dot2 = Lanes::load(&corner_dot[2][j]);
    const Value dot3 = Lanes::load(&corner_dot[3][j]);
    const Value fh = Lanes::load(&b.frac_h[j]);
    const Value fw = Lanes::load(&b.frac_w[j]);
    const Value d_h = (acc_t(1) - fw) * (dot2 - dot0) + fw * (dot3 - dot1);
    const Value d_w = (acc_t(1) - fh) * (dot1 - dot0) + fh * (dot3 - dot2);
    const Value sample =
        Lanes::load(&b.weight[0][j]) * dot0 + Lanes::load(&b.weight[1][j]) * dot1 +
        Lanes::load(&b.weight[2][j]) * dot2 + Lanes::load(&b.weight[3][j]) * dot3;
    const Value factor = Lanes::load(&b.point_weight[j]) * scale;
    const auto inside = Lanes::load(&b.inside[j]) != 0;
    Lanes::store(&grad_h[j], inside ? factor * d_h : zero);
    Lanes::store(&grad_w[j], inside ? factor * d_w : zero);
    Lanes::store(&grad_weights[j], inside ? sample : zero);
  }
  for (int64_t t = 0; t < tile; ++t) {
    const int64_t p = p0 + t;
    scalar_t* point_grad_offset = args.grad_offset + offset_start(geo, p * geo.group + g);
    for (int64_t k = 0; k < num_points; ++k) {
      point_grad_offset[2 * k] = static_cast<scalar_t>(grad_w[t * num_points + k]);
      point_grad_offset[2 * k + 1] = static_cast<scalar_t>(grad_h[t * num_points + k]);
    }
    write_mask_grad(geo, b.point_weight.data() + t * num_points,
                    grad_weights.data() + t * num_points,
                    args.grad_mask + mask_start(geo, p * geo.group + g));
  }
}

// Backward for work units [begin, end); unit = ((n * blocks) + block) * chunks + chunk, where
// a block is a range of groups (backward_cpu explains the split).
template <typename scalar_t, int64_t kCg, int kLanes>
C10_ALWAYS_INLINE void backward_units(const KernelArgs<scalar_t>& args, int64_t begin,
                                      int64_t end) {
  const DCNv3Geometry& geo = args.geo;
  const int64_t chunks = args.chunks;
  const int64_t blocks = args.group_blocks;
  const int64_t pixels_out = geo.height_out * geo.width_out;
  const int64_t cg = kCg > 0 ? kCg : geo.group_channels;
  BackwardScratch<scalar_t, kCg, kLanes> scratch(cg, geo.num_points);
  // grad_output of the pixel and group at hand; a local of its own, so that the compiler
  // keeps it in registers.
  GroupChannels<scalar_t, kCg, kLanes> grad_out(cg);
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t chunk = unit % chunks;
    const int64_t block = (unit / chunks) % blocks;
    const int64_t n = unit / (chunks * blocks);
    const int64_t first = n * pixels_out + chunk * pixels_out / chunks;
    const int64_t last = n * pixels_out + (chunk + 1) * pixels_out / chunks;
    for (int64_t p0 = first; p0 < last; p0 += kTilePixels) {
      // All groups of a pixel tile in turn: their offsets are adjacent in memory, and so are
      // the rows their corners read and write.
      for (int64_t g = block * geo.group / blocks; g < (block + 1) * geo.group / blocks; ++g) {
        backward_tile(args, scratch, grad_out, n, chunk, g, p0, std::min(kTilePixels, last - p0));
      }
    }
  }
}

// The same loops compiled for the baseline ISA, for AVX2+FMA and for AVX-512 (with 16-float
// channel vectors: a group of 16 channels is then one register).
template <typename scalar_t>
using RangeFn = void (*)(const KernelArgs<scalar_t>&, int64_t, int64_t);

template <typename scalar_t, int64_t kCg>
void forward_baseline(const KernelArgs<scalar_t>& args, int64_t begin, int64_t end) {
  forward_pixels<scalar_t, kCg, 8>(args, begin, end);
}
template <typename scalar_t, int64_t kCg>
void backward_baseline(const KernelArgs<scalar_t>& args, int64_t begin, int64_t end) {
  backward_units<scalar_t, kCg, 8>(args, begin, end);
}

#if OPS_DCNV3_X86_DISPATCH
template <typename scalar_t, int64_t kCg>
__attribute__((target("avx2,fma"))) void forward_avx2(const KernelArgs<scalar_t>& args,
                                                      int64_t begin, int64_t end) {
  forward_pixels<scalar_t, kCg, 8>(args, begin, end);
}
template <typename scalar_t, int64_t kCg>
__attribute__((target("avx2,fma"))) void backward_avx2(const KernelArgs<scalar_t>& args,
                                                       int64_t begin, int64_t end) {
  backward_units<scalar_t, kCg, 8>(args, begin, end);
}

#define OPS_DCNV3_AVX512_TARGET "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"
template <typename scalar_t, int64_t kCg>
__attribute__((target(OPS_DCNV3_AVX512_TARGET))) void forward_avx512(
    const KernelArgs<scalar_t>& args, int64_t begin, int64_t end) {
  forward_pixels<scalar_t, kCg, 16>(args, begin, end);
}
template <typename scalar_t, int64_t kCg>
__attribute__((target(OPS_DCNV3_AVX512_TARGET))) void backward_avx512(
    const KernelArgs<scalar_t>& args, int64_t begin, int64_t end) {
  backward_units<scalar_t, kCg, 16>(args, begin, end);
}

// bfloat16 forward with the AVX512-BF16 dot product. vdpbf16ps multiplies 32 pairs of
// bfloat16 and adds each pair's two products to one float lane, so one instruction applies
// two corners to 16 channels: the corners' rows interleaved channel by channel, times the pair
// of their coefficients (point weight * bilinear weight, rounded to bfloat16). The products of
// two bfloat16 are exact in float, and the sums stay in float until the output is stored;
// only the coefficients are rounded, by at most 2^-9 of their value (about what rounding the
// output to bfloat16 costs anyway).
#define OPS_DCNV3_AVX512BF16_TARGET OPS_DCNV3_AVX512_TARGET ",avx512bf16"
template <int64_t kCg>
__attribute__((target(OPS_DCNV3_AVX512BF16_TARGET))) void forward_avx512bf16(
    const KernelArgs<c10::BFloat16>& args, int64_t begin, int64_t end) {
  static_assert(kCg > 0 && kCg % 16 == 0, "whole 16-channel vectors only");
  constexpr int64_t kVectors = kCg / 16;
  const DCNv3Geometry& geo = args.geo;
  const auto [cg, channels, num_points, pixels_out, image_stride, scale] =
      LoopSizes<float, kCg>(geo);
  TileBuffers<float> b(num_points);
  // Per item: the bfloat16 coefficients of corners 0 and 1 (low, high half), and of 2 and 3;
  // the address of each corner's row (the zero row for corners outside the image).
  std::vector<uint32_t> pair01(padded_tile_items(num_points));
  std::vector<uint32_t> pair23(padded_tile_items(num_points));
  std::array<std::vector<const uint16_t*>, 4> rows;
  for (auto& buffer : rows) buffer.resize(padded_tile_items(num_points));
  alignas(64) static const uint16_t zero_row[kCg] = {};
  // Word 2c of the result takes channel c of the first row, word 2c + 1 that of the second.
  alignas(64) static const uint16_t interleave_words[32] = {
      0, 32, 1, 33, 2,  34, 3,  35, 4,  36, 5,  37, 6,  38, 7,  39,
      8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  const __m512i interleave = _mm512_load_si512(interleave_words);
  const __m512i row_bytes = _mm512_set1_epi64(channels * int64_t(sizeof(uint16_t)));
  const __m512i zero_row_address = _mm512_set1_epi64(reinterpret_cast<int64_t>(zero_row));
  const uint16_t* input = reinterpret_cast<const uint16_t*>(args.input);

  // Tiles stop at image boundaries, so that one image's address serves all their rows.
  for (int64_t p0 = begin, tile; p0 < end; p0 += tile) {
    tile = std::min({kTilePixels, end - p0, pixels_out - p0 % pixels_out});
    const int64_t items = tile * num_points;
    const uint16_t* image = input + (p0 / pixels_out) * image_stride;
    for (int64_t g = 0; g < geo.group; ++g) {
      prepare_tile(args, p0, tile, g, b);
      const __m512i group_address = _mm512_set1_epi64(reinterpret_cast<int64_t>(image + g * cg));
      for (int64_t j = 0; j < items; j += 8) {
        const __m256 m = _mm256_loadu_ps(&b.point_weight[j]);
        __m256i packed[4];
        for (int i = 0; i < 4; ++i) {
          const __m256 coefficient = _mm256_mul_ps(m, _mm256_loadu_ps(&b.weight[i][j]));
          packed[i] = _mm256_cvtepu16_epi32(
              reinterpret_cast<__m128i>(_mm256_cvtneps_pbh(coefficient)));
          const __m256i pixel = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&b.pixel[i][j]));
          const __m512i address = _mm512_add_epi64(
              group_address, _mm512_mul_epi32(_mm512_cvtepi32_epi64(pixel), row_bytes));
          _mm512_storeu_si512(&rows[i][j],
                              _mm512_mask_blend_epi64(_mm256_cmplt_epi32_mask(pixel, _mm256_setzero_si256()),
                                                      address, zero_row_address));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(&pair01[j]),
                            _mm256_or_si256(packed[0], _mm256_slli_epi32(packed[1], 16)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(&pair23[j]),
                            _mm256_or_si256(packed[2], _mm256_slli_epi32(packed[3], 16)));
      }
      for (int64_t t = 0; t < tile; ++t) {
        const int64_t p = p0 + t;
        // Two accumulators per vector (corners 0+1, corners 2+3): independent chains.
        __m512 acc[kVectors][2];
        for (int64_t v = 0; v < kVectors; ++v) acc[v][0] = acc[v][1] = _mm512_setzero_ps();
        for (int64_t j = t * num_points; j < (t + 1) * num_points; ++j) {
          const __m512bh coefficients[2] = {
              reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(pair01[j]))),
              reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(pair23[j])))};
          for (int64_t v = 0; v < kVectors; ++v) {
            for (int pair = 0; pair < 2; ++pair) {
              const __m512i first = _mm512_castsi256_si512(_mm256_loadu_si256(
                  reinterpret_cast<const __m256i*>(rows[2 * pair][j] + 16 * v)));
              const __m512i second = _mm512_castsi256_si512(_mm256_loadu_si256(
                  reinterpret_cast<const __m256i*>(rows[2 * pair + 1][j] + 16 * v)));
              acc[v][pair] = _mm512_dpbf16_ps(
                  acc[v][pair],
                  reinterpret_cast<__m512bh>(_mm512_permutex2var_epi16(first, interleave, second)),
                  coefficients[pair]);
            }
          }
        }
        uint16_t* out = reinterpret_cast<uint16_t*>(args.output) + p * channels + g * cg;
        for (int64_t v = 0; v < kVectors; ++v) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * v),
                              reinterpret_cast<__m256i>(
                                  _mm512_cvtneps_pbh(_mm512_add_ps(acc[v][0], acc[v][1]))));
        }
      }
    }
  }
}

// The ISA the loops run with: the best the CPU supports, never beyond ATen's own choice, so
// ATEN_CPU_CAPABILITY=default or =avx2 selects the baseline or AVX2 loops; and at most
// OPS_DCNV3_CPU_ISA where that is set (default, avx2, avx512 or avx512_bf16), which is how
// the tests also run the AVX-512 loops without the BF16 instructions on a machine that has
// them. The AVX-512 BF16 build differs from the AVX-512 one only in the bfloat16 forward of
// whole 16-channel vectors.
enum class Isa { kBaseline, kAvx2, kAvx512, kAvx512Bf16 };
constexpr const char* kIsaNames[] = {"default", "avx2", "avx512", "avx512_bf16"};

Isa isa_cap_from_environment() {
  const char* value = std::getenv("OPS_DCNV3_CPU_ISA");
  if (value == nullptr || *value == '\0') return Isa::kAvx512Bf16;
  for (int i = 0; i < 4; ++i) {
    if (std::string(value) == kIsaNames[i]) return static_cast<Isa>(i);
  }
  TORCH_CHECK_VALUE(false, "OPS_DCNV3_CPU_ISA must be one of default, avx2, avx512, "
                    "avx512_bf16 (the most the CPU kernels may use), got '", value, "'");
}

Isa cpu_isa() {
  static const Isa isa = [] {
    const std::string aten = at::get_cpu_capability();
    Isa best = Isa::kBaseline;
    if (aten == "AVX512" && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq")) {
      best = __builtin_cpu_supports("avx512bf16") ? Isa::kAvx512Bf16 : Isa::kAvx512;
    } else if (aten != "DEFAULT" && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma")) {
      best = Isa::kAvx2;
    }
    return std::min(best, isa_cap_from_environment());
  }();
  return isa;
}
#endif

template <typename scalar_t, int64_t kCg>
RangeFn<scalar_t> select_for_isa(bool backward) {
#if OPS_DCNV3_X86_DISPATCH
  switch (cpu_isa()) {
    case Isa::kAvx512Bf16:
      if constexpr (std::is_same_v<scalar_t, c10::BFloat16> && kCg > 0 && kCg % 16 == 0) {
        if (!backward) return &forward_avx512bf16<kCg>;
      }
      [[fallthrough]];
    case Isa::kAvx512:
      return backward ? &backward_avx512<scalar_t, kCg> : &forward_avx512<scalar_t, kCg>;
    case Isa::kAvx2:
      return backward ? &backward_avx2<scalar_t, kCg> : &forward_avx2<scalar_t, kCg>;
    case Isa::kBaseline:
      break;
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

// The kernels index pixels of one image (and one row past it) in int32.
void check_image_size(const DCNv3Geometry& geo) {
  TORCH_CHECK((geo.height_in + 1) * (geo.width_in + 1) < (int64_t(1) << 31),
              "dcnv3 (CPU): input images of at most 2^31 pixels are supported, got height ",
              geo.height_in, " x width ", geo.width_in);
}

at::Tensor forward_cpu(const DCNv3Geometry& geo, const at::Tensor& input,
                       const at::Tensor& offset, const at::Tensor& mask) {
  check_image_size(geo);
  at::Tensor output =
      at::empty({geo.batch, geo.height_out, geo.width_out, geo.channels}, input.options());
  if (output.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, input.scalar_type(), "dcnv3_forward_cpu", [&] {
        KernelArgs<scalar_t> args(geo, input, offset, mask);
        args.output = output.mutable_data_ptr<scalar_t>();
        const RangeFn<scalar_t> kernel = select_kernel<scalar_t>(geo.group_channels, false);
        // Enough pixels per task to amortise scheduling (a pixel costs ~4*C*K multiply-adds).
        const int64_t grain = std::max<int64_t>(1, 8192 / (geo.channels * geo.num_points));
        at::parallel_for(0, geo.batch * geo.height_out * geo.width_out, grain,
                         [&](int64_t begin, int64_t end) { kernel(args, begin, end); });
      });
  return output;
}

at::Tensor backward_cpu(const DCNv3Geometry& geo, const at::Tensor& input,
                        const at::Tensor& offset, const at::Tensor& mask,
                        const at::Tensor& grad_output, const at::Tensor& grad_offset,
                        const at::Tensor& grad_mask) {
  check_image_size(geo);
  if (geo.batch == 0) return at::zeros_like(input);

  const at::ScalarType acc_type = at::toOpMathType(input.scalar_type());
  // Units of work: (image, block of groups, pixel chunk). Whole images with all their groups
  // while there are images enough for the threads; else the groups are split into blocks,
  // and only then the pixels into chunks (each chunk accumulating into its own copy).
  const int64_t threads = at::get_num_threads();
  const int64_t blocks =
      std::clamp<int64_t>((threads + geo.batch - 1) / geo.batch, 1, geo.group);
  const int64_t pairs = geo.batch * blocks;
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
        KernelArgs<scalar_t> args(geo, input, offset, mask);
        args.grad_output = grad_output.const_data_ptr<scalar_t>();
        args.grad_input_acc = grad_input_acc.mutable_data_ptr<acc_t>();
        args.grad_offset = grad_offset.mutable_data_ptr<scalar_t>();
        args.grad_mask = grad_mask.mutable_data_ptr<scalar_t>();
        args.chunks = chunks;
        args.group_blocks = blocks;
        const RangeFn<scalar_t> kernel = select_kernel<scalar_t>(geo.group_channels, true);
        at::parallel_for(0, pairs * chunks, 1,
                         [&](int64_t begin, int64_t end) { kernel(args, begin, end); });
      });

  return accumulate_in_place ? grad_input_acc : grad_input_acc.sum(0).to(input.scalar_type());
}

struct CpuKernels {
  static constexpr auto forward = &forward_cpu;
  static constexpr auto backward = &backward_cpu;
};

}  // namespace

const char* cpu_kernel_isa() {
#if OPS_DCNV3_X86_DISPATCH
  return kIsaNames[static_cast<int>(cpu_isa())];
#else
  return "default";
#endif
}

TORCH_LIBRARY_IMPL(ops_dcnv3, CPU, m) { register_kernels<CpuKernels>(m); }

}  // namespace ops_dcnv3
