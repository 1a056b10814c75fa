// Stand-in for cub::DeviceRadixSort on the CPU execution layer (tests only): the same ordering as
// CUB's radix sort, done with std::stable_sort on the host.
//   - stable: equal keys keep their input order;
//   - floating point: ordered by CUB's bit twiddle (negative values below positive ones), -0 and
//     +0 equal, NaNs by bit pattern (positive NaNs above +inf, negative ones below -inf);
//   - only bits [begin_bit, end_bit) of the twiddled key take part, as in CUB.
// The temporary storage it asks for differs from CUB's (it holds the permutation): callers must
// ask for the size, never assume one.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace cub {
namespace detail_cpu {

template <typename K> struct UnsignedBits { using type = std::make_unsigned_t<K>; };
template <> struct UnsignedBits<float> { using type = uint32_t; };
template <> struct UnsignedBits<double> { using type = uint64_t; };
template <> struct UnsignedBits<__half> { using type = uint16_t; };
template <> struct UnsignedBits<bool> { using type = uint8_t; };

// CUB's key twiddle: an unsigned image of the key whose unsigned order is the key's order.
template <typename K>
typename UnsignedBits<K>::type twiddled(K key) {
  using U = typename UnsignedBits<K>::type;
  constexpr U kSign = U(1) << (sizeof(U) * 8 - 1);
  U bits;
  std::memcpy(&bits, static_cast<const void*>(&key), sizeof(U));
  if constexpr (std::is_floating_point<K>::value || std::is_same<K, __half>::value) {
    if (bits == kSign) bits = 0;  // -0 -> +0
    return (bits & kSign) ? U(~bits) : U(bits | kSign);
  } else if constexpr (std::is_signed<K>::value) {
    return U(bits ^ kSign);
  } else {
    return bits;
  }
}

}  // namespace detail_cpu

struct DeviceRadixSort {
  template <typename KeyT, typename ValueT, typename NumItemsT>
  static cudaError_t SortPairsDescending(void* d_temp_storage, size_t& temp_storage_bytes,
                                         const KeyT* d_keys_in, KeyT* d_keys_out,
                                         const ValueT* d_values_in, ValueT* d_values_out,
                                         NumItemsT num_items, int begin_bit = 0,
                                         int end_bit = sizeof(KeyT) * 8,
                                         cudaStream_t stream = 0) {
    (void)stream;
    const size_t n = num_items > 0 ? static_cast<size_t>(num_items) : 0;
    const size_t needed = (n == 0 ? 1 : n) * sizeof(uint32_t);
    if (d_temp_storage == nullptr) {
      temp_storage_bytes = needed;
      return cudaSuccess;
    }
    if (temp_storage_bytes < needed || begin_bit < 0 || end_bit > int(sizeof(KeyT) * 8) ||
        begin_bit >= end_bit) {
      return cudaErrorInvalidValue;
    }
    using U = typename detail_cpu::UnsignedBits<KeyT>::type;
    const int bits = end_bit - begin_bit;
    const U field = bits >= int(sizeof(U) * 8) ? U(~U(0)) : U((U(1) << bits) - 1);
    auto radix = [&](size_t i) { return U((detail_cpu::twiddled(d_keys_in[i]) >> begin_bit) & field); };
    // the permutation lives in the caller's temporary storage, so a short one is an overrun
    uint32_t* order = static_cast<uint32_t*>(d_temp_storage);
    for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
    std::stable_sort(order, order + n, [&](uint32_t a, uint32_t b) { return radix(a) > radix(b); });
    for (size_t i = 0; i < n; ++i) {
      d_keys_out[i] = d_keys_in[order[i]];
      d_values_out[i] = d_values_in[order[i]];
    }
    return cudaSuccess;
  }
};

}  // namespace cub
