// GGUF v2/v3 reader over bytes the caller keeps alive. Nothing is copied: strings and
// tensor data point into the buffer. Every offset and count is checked against the buffer
// before it is used, so a truncated or hostile file ends in pipit::Error(kFormat).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quant/types.h"

namespace pipit::gguf {

enum class ValueType : uint32_t {
  kUInt8 = 0,
  kInt8 = 1,
  kUInt16 = 2,
  kInt16 = 3,
  kUInt32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUInt64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* value_type_name(ValueType type);
// Bytes of one value of a fixed-size type; 0 for strings and arrays.
uint64_t value_type_size(ValueType type);

// One metadata value. Scalars are widened on read; arrays of scalars keep their raw bytes
// (a 100k-entry score array stays a view), arrays of strings and nested arrays are indexed.
class Value {
 public:
  ValueType type() const { return type_; }
  bool is_integer() const;
  bool is_float() const { return type_ == ValueType::kFloat32 || type_ == ValueType::kFloat64; }

  // Each throws Error(kFormat) naming `key_` when the stored type does not convert.
  uint64_t as_u64() const;  // any non-negative integer or bool
  int64_t as_i64() const;   // any integer that fits
  double as_f64() const;    // any integer or float
  bool as_bool() const;
  std::string_view as_string() const;

  // Arrays.
  ValueType element_type() const;  // only for kArray
  uint64_t size() const;           // element count, only for kArray
  Value at(uint64_t index) const;  // bounds-checked
  std::vector<std::string_view> as_strings() const;
  std::vector<float> as_f32s() const;    // from float32/float64/integer elements
  std::vector<int32_t> as_i32s() const;  // from any integer element type that fits

  std::string_view key() const { return key_; }

 private:
  friend class File;
  friend class Parser;
  ValueType type_ = ValueType::kUInt8;
  std::string_view key_;     // for error messages; points into the file bytes
  uint64_t bits_ = 0;        // scalar payload (raw little-endian bits)
  std::string_view string_;  // kString payload
  // kArray payload: element type, count, and the raw bytes of the elements. For strings and
  // nested arrays `offsets_` holds each element's start within `raw_`.
  ValueType elem_type_ = ValueType::kUInt8;
  uint64_t count_ = 0;
  std::span<const uint8_t> raw_;
  std::shared_ptr<const std::vector<uint64_t>> offsets_;
};

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ggml "ne" order: dims[0] is the row length
  uint32_t type_id = 0;
  uint64_t offset = 0;  // from the start of the data section, as stored
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;

  uint64_t elements() const;
  uint64_t rows() const { return dims.empty() ? 0 : elements() / dims[0]; }
};

struct ParseOptions {
  // A key that appears twice is an error unless this is set; then the first value wins and
  // a warning names the key (llama.cpp's dbrx vocab file has such a duplicate).
  bool allow_duplicate_keys = false;
};

class File {
 public:
  static File parse(std::span<const uint8_t> bytes, const ParseOptions& options = {});
  // One model from the parts of a split set (split.h); a single unsplit file comes back as is.
  static File join_split(std::vector<File> parts);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  const Value* find(std::string_view key) const;
  const Value& require(std::string_view key) const;  // Error(kFormat) naming a missing key
  std::string_view get_string(std::string_view key, std::string_view fallback) const;
  uint64_t get_u64(std::string_view key, uint64_t fallback) const;
  double get_f64(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  friend class Parser;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<TensorInfo> tensors_;
  std::vector<std::string> warnings_;
};

}  // namespace pipit::gguf
