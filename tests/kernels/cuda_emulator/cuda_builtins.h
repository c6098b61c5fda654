// The CUDA built-ins the DCNv3 kernels use, emulated on the CPU so that the real kernel source
// (ops_dcnv3/csrc/cuda/dcnv3_kernels.cuh) can be compiled by a host compiler and checked on a
// machine without a GPU.
//
// Model: a launch runs its blocks and, inside a block, its warps one after another (the
// kernels use no shared memory or block barriers, so warps are independent). The 32 lanes of
// a warp are 32 host threads; every __shfl_xor_sync is a rendezvous of the warp at a barrier,
// like the hardware's converged execution. The emulator reports, instead of hanging or reading
// garbage, the warp-level mistakes that are undefined behaviour on a GPU: a shuffle while a
// lane of its member mask has already returned, lanes that reach different shuffles
// (divergence), and a member mask other than the full warp.
#pragma once

#include <array>
#include <barrier>
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace cuda_emulator {

constexpr int kWarpSize = 32;

struct Dim3 {
  unsigned int x = 0;
  unsigned int y = 0;
  unsigned int z = 0;
};

class Warp {
 public:
  Warp() : barrier_(kWarpSize) {}

  // __shfl_xor_sync for lane `lane` of this warp. As on the hardware, every lane named in
  // `member_mask` must execute the same shuffle: the emulator requires the full warp.
  template <typename T>
  T shuffle_xor(int lane, unsigned int member_mask, T value, int lane_mask) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "the emulator shuffles float and double");
    if (member_mask != 0xffffffffu) fail("__shfl_xor_sync with a partial member mask");
    const int source = lane ^ lane_mask;
    values_[lane] = static_cast<double>(value);  // exact for float
    const int64_t call = ++calls_[lane];
    barrier_.arrive_and_wait();
    T result = value;
    bool converged = true;
    for (int other = 0; other < kWarpSize && converged; ++other) {
      if (exited_[other]) {
        fail("lane " + std::to_string(lane) + " shuffled while lane " + std::to_string(other) +
             " of the member mask had already returned");
        converged = false;
      } else if (calls_[other] != call) {
        fail("divergent shuffles: lane " + std::to_string(lane) + " is at shuffle " +
             std::to_string(call) + ", lane " + std::to_string(other) + " at shuffle " +
             std::to_string(calls_[other]));
        converged = false;
      }
    }
    if (source < 0 || source >= kWarpSize) {
      fail("__shfl_xor_sync lane mask " + std::to_string(lane_mask) + " leaves the warp");
    } else if (converged) {
      result = static_cast<T>(values_[source]);
    }
    barrier_.arrive_and_wait();
    return result;
  }

  // A lane returns from the kernel: later shuffles no longer wait for it.
  void exit(int lane) {
    exited_[lane] = true;
    barrier_.arrive_and_drop();
  }

  void fail(const std::string& message) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (error_.empty()) error_ = message;
  }

  std::string error() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return error_;
  }

 private:
  std::barrier<> barrier_;
  std::array<double, kWarpSize> values_{};
  std::array<int64_t, kWarpSize> calls_{};
  std::array<bool, kWarpSize> exited_{};
  std::mutex mutex_;
  std::string error_;
};

struct LaneContext {
  Warp* warp = nullptr;
  int lane = 0;
};

inline thread_local LaneContext current_lane;

inline std::mutex& atomic_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Runs `kernel(args...)` as a launch of `blocks` blocks of `block_threads` threads.
template <typename Kernel, typename... Args>
void launch(Kernel kernel, int64_t blocks, int block_threads, Args&&... args);

}  // namespace cuda_emulator

// CUDA's names, at global scope as in device code.
inline cuda_emulator::Dim3 blockDim;
inline thread_local cuda_emulator::Dim3 blockIdx;
inline thread_local cuda_emulator::Dim3 threadIdx;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)

template <typename T>
T __shfl_xor_sync(unsigned int member_mask, T value, int lane_mask) {
  const auto& lane = cuda_emulator::current_lane;
  return lane.warp->shuffle_xor(lane.lane, member_mask, value, lane_mask);
}

template <typename T>
T atomicAdd(T* address, T value) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  const std::lock_guard<std::mutex> lock(cuda_emulator::atomic_mutex());
  const T old = *address;
  *address = old + value;
  return old;
}

// Declared so that sm_90-only code paths parse (they are compiled out on the host).
struct float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

template <typename Kernel, typename... Args>
void cuda_emulator::launch(Kernel kernel, int64_t blocks, int block_threads, Args&&... args) {
  if (block_threads % kWarpSize != 0) {
    throw std::invalid_argument("block size must be a multiple of the warp size");
  }
  blockDim = {static_cast<unsigned int>(block_threads), 1, 1};
  for (int64_t block = 0; block < blocks; ++block) {
    for (int warp_start = 0; warp_start < block_threads; warp_start += kWarpSize) {
      Warp warp;
      std::vector<std::thread> lanes;
      lanes.reserve(kWarpSize);
      for (int lane = 0; lane < kWarpSize; ++lane) {
        lanes.emplace_back([&, lane] {
          blockIdx = {static_cast<unsigned int>(block), 0, 0};
          threadIdx = {static_cast<unsigned int>(warp_start + lane), 0, 0};
          current_lane = {&warp, lane};
          try {
            kernel(args...);
          } catch (const std::exception& error) {
            warp.fail(error.what());
          }
          warp.exit(lane);
        });
      }
      for (auto& thread : lanes) thread.join();
      const std::string error = warp.error();
      if (!error.empty()) {
        throw std::runtime_error("emulated CUDA launch, block " + std::to_string(block) +
                                 ", threads " + std::to_string(warp_start) + "-" +
                                 std::to_string(warp_start + kWarpSize - 1) + ": " + error);
      }
    }
  }
}
