// GGUF v3 writer: pipit's own way to make model files for tests and benchmarks (synthetic
// models, hostile files for the reader's tests). Metadata is kept in memory; tensor data can
// be generated row by row while the file is written, so a model of hundreds of MB never
// exists in memory as a whole.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "quant/types.h"

namespace pipit::gguf {

// A metadata value to write: a scalar, a string, or an array whose elements all have the
// declared element type (arrays of arrays may differ in their inner element types, as GGUF
// allows).
class MetaValue {
 public:
  static MetaValue u8(uint8_t v) { return scalar(ValueType::kUInt8, v); }
  static MetaValue i8(int8_t v) { return scalar(ValueType::kInt8, static_cast<uint8_t>(v)); }
  static MetaValue u16(uint16_t v) { return scalar(ValueType::kUInt16, v); }
  static MetaValue i16(int16_t v) { return scalar(ValueType::kInt16, static_cast<uint16_t>(v)); }
  static MetaValue u32(uint32_t v) { return scalar(ValueType::kUInt32, v); }
  static MetaValue i32(int32_t v) { return scalar(ValueType::kInt32, static_cast<uint32_t>(v)); }
  static MetaValue u64(uint64_t v) { return scalar(ValueType::kUInt64, v); }
  static MetaValue i64(int64_t v) { return scalar(ValueType::kInt64, static_cast<uint64_t>(v)); }
  static MetaValue f32(float v);
  static MetaValue f64(double v);
  static MetaValue boolean(bool v) { return scalar(ValueType::kBool, v ? 1 : 0); }
  static MetaValue string(std::string v);
  // Error(kInvalidArgument) when an element's type differs from `element_type`.
  static MetaValue array(ValueType element_type, std::vector<MetaValue> elements);
  static MetaValue strings(const std::vector<std::string>& v);
  static MetaValue f32s(const std::vector<float>& v);
  static MetaValue i32s(const std::vector<int32_t>& v);

  // A copy of a value read from another file (e.g. a tokenizer taken from a vocab file).
  static MetaValue from(const Value& value);

  ValueType type() const { return type_; }
  ValueType element_type() const { return element_type_; }
  const std::vector<MetaValue>& elements() const { return elements_; }

 private:
  friend class Writer;
  static MetaValue scalar(ValueType type, uint64_t bits);
  void serialize(std::vector<uint8_t>& out) const;  // the value without its type tag

  ValueType type_ = ValueType::kUInt8;
  uint64_t bits_ = 0;  // scalars, little-endian bit pattern
  std::string string_;
  ValueType element_type_ = ValueType::kUInt8;
  std::vector<MetaValue> elements_;
};

// Knobs for writing deliberately unusual files; the defaults write a file llama.cpp accepts.
struct WriterOptions {
  uint32_t version = 3;               // written as is, so tests can make v1/v2/unknown files
  bool allow_duplicate_keys = false;  // lets add() write a key a second time
};

// Fills `n` floats of row `row` of a tensor; must give the same values whenever called with
// the same row, since writing twice (bytes() then write_file()) regenerates the data.
using RowGenerator = std::function<void(uint64_t row, float* out)>;

class Writer {
 public:
  explicit Writer(WriterOptions options = {});

  // Adds a key, or replaces the value of an existing one in place.
  void set(const std::string& key, MetaValue value);
  // Appends a key; a key already present is Error(kInvalidArgument) unless
  // options.allow_duplicate_keys.
  void add(const std::string& key, MetaValue value);

  // Data alignment (a power of two), recorded as general.alignment (uint32). Without a call
  // the file is laid out for GGUF's default of 32 and carries no alignment key.
  void set_alignment(uint32_t alignment);
  uint32_t alignment() const { return alignment_; }

  // dims in ggml "ne" order (dims[0] is the row length). Data must be exactly the size the
  // type and dims imply.
  void add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> dims,
                  std::vector<uint8_t> data);
  // Quantizes `values` (row-major, dims[0] per row) to `type` right away.
  void add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> dims,
                  std::span<const float> values);
  // Data produced row by row while the file is written, quantized one row at a time.
  void add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> dims,
                  RowGenerator rows);
  // A tensor info entry with exactly these fields and no data of its own, unchecked: for
  // files that test how readers cope with bad type ids, shapes or offsets.
  void add_tensor_info(const std::string& name, uint32_t type_id, std::vector<uint64_t> dims,
                       uint64_t offset);

  // A writer holding everything `file` holds (metadata, alignment, tensor bytes copied).
  static Writer copy_of(const File& file);

  // This file as a split set of `parts` files the way llama.cpp's gguf-split lays one out
  // (gguf/split.h): consecutive runs of tensors of about equal bytes, all metadata in the
  // first. Error(kInvalidArgument) unless 1 <= parts <= the number of tensors.
  std::vector<Writer> split(uint32_t parts) const;
  // Writes split(parts) as PREFIX-00001-of-0000N.gguf ...; returns the paths written.
  std::vector<std::string> write_split_files(const std::string& prefix, uint32_t parts) const;

  std::vector<uint8_t> bytes() const;
  void write(std::ostream& out) const;
  void write_file(const std::string& path) const;  // Error(kInvalidArgument) if it fails

 private:
  struct Tensor {
    std::string name;
    uint32_t type_id = 0;
    std::vector<uint64_t> dims;
    uint64_t nbytes = 0;
    uint64_t offset = 0;  // only for info_only tensors; the others are laid out on writing
    bool info_only = false;
    std::vector<uint8_t> data;
    RowGenerator rows;
  };
  Tensor& new_tensor(const std::string& name, TensorType type, std::vector<uint64_t> dims);
  void write_to(const std::function<void(const uint8_t*, size_t)>& sink) const;

  WriterOptions options_;
  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, MetaValue>> metadata_;
  std::vector<Tensor> tensors_;
};

// The whole file, for reading small files and vocab files (Error(kInvalidArgument) naming
// the path if it cannot be read).
std::vector<uint8_t> read_file(const std::string& path);

}  // namespace pipit::gguf
