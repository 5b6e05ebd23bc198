// The tensor element types a GGUF file can name (ggml's numbering), and how many bytes a
// row of each takes. Knowing every type's size lets the reader validate any file, even one
// whose types pipit cannot compute with yet.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace pipit {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct TypeTraits {
  const char* name;      // ggml's spelling, e.g. "Q4_K"
  uint32_t block_elems;  // values per block
  uint32_t block_bytes;  // bytes per block
};

// nullopt for an id ggml never assigned (or retired); such a file cannot be sized.
std::optional<TypeTraits> type_traits(uint32_t type_id);
TypeTraits type_traits(TensorType type);
std::string type_name(uint32_t type_id);  // "Q4_K", or "unknown type 77"

// Bytes of `elems` consecutive values; elems must be a multiple of the block size.
inline uint64_t row_bytes(const TypeTraits& t, uint64_t elems) {
  return elems / t.block_elems * t.block_bytes;
}

}  // namespace pipit
