#include "gguf_writer.h"

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "gguf/split.h"
#include "quant/quantize.h"

namespace pipit::gguf {
namespace {

[[noreturn]] void invalid(const std::string& message) {
  fail(ErrorKind::kInvalidArgument, message);
}

void put_le(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void put_string_bytes(std::vector<uint8_t>& out, std::string_view s) {
  for (char c : s) out.push_back(static_cast<uint8_t>(c));
}

void put_string(std::vector<uint8_t>& out, std::string_view s) {
  put_le(out, s.size(), 8);
  put_string_bytes(out, s);
}

uint64_t align_up(uint64_t v, uint64_t alignment) {
  return (v + alignment - 1) / alignment * alignment;
}

std::string shape_text(const std::vector<uint64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace

// ---- MetaValue ----

MetaValue MetaValue::scalar(ValueType type, uint64_t bits) {
  MetaValue v;
  v.type_ = type;
  v.bits_ = bits;
  return v;
}

// memcpy rather than std::bit_cast, which Emscripten 3.1.6's libc++ lacks.
MetaValue MetaValue::f32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return scalar(ValueType::kFloat32, bits);
}

MetaValue MetaValue::f64(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return scalar(ValueType::kFloat64, bits);
}

MetaValue MetaValue::string(std::string v) {
  MetaValue m;
  m.type_ = ValueType::kString;
  m.string_ = std::move(v);
  return m;
}

MetaValue MetaValue::array(ValueType element_type, std::vector<MetaValue> elements) {
  for (size_t i = 0; i < elements.size(); ++i) {
    if (elements[i].type_ != element_type) {
      invalid("array element " + std::to_string(i) + " is a " + value_type_name(elements[i].type_) +
              " in an array of " + value_type_name(element_type));
    }
  }
  MetaValue m;
  m.type_ = ValueType::kArray;
  m.element_type_ = element_type;
  m.elements_ = std::move(elements);
  return m;
}

MetaValue MetaValue::strings(const std::vector<std::string>& v) {
  std::vector<MetaValue> e;
  e.reserve(v.size());
  for (const std::string& s : v) e.push_back(string(s));
  return array(ValueType::kString, std::move(e));
}

MetaValue MetaValue::f32s(const std::vector<float>& v) {
  std::vector<MetaValue> e;
  e.reserve(v.size());
  for (float f : v) e.push_back(f32(f));
  return array(ValueType::kFloat32, std::move(e));
}

MetaValue MetaValue::i32s(const std::vector<int32_t>& v) {
  std::vector<MetaValue> e;
  e.reserve(v.size());
  for (int32_t i : v) e.push_back(i32(i));
  return array(ValueType::kInt32, std::move(e));
}

MetaValue MetaValue::from(const Value& value) {
  switch (value.type()) {
    case ValueType::kString:
      return string(std::string(value.as_string()));
    case ValueType::kArray: {
      std::vector<MetaValue> e;
      e.reserve(value.size());
      for (uint64_t i = 0; i < value.size(); ++i) e.push_back(from(value.at(i)));
      return array(value.element_type(), std::move(e));
    }
    case ValueType::kFloat32:
      return f32(static_cast<float>(value.as_f64()));
    case ValueType::kFloat64:
      return f64(value.as_f64());
    case ValueType::kBool:
      return boolean(value.as_bool());
    case ValueType::kInt8:
    case ValueType::kInt16:
    case ValueType::kInt32:
    case ValueType::kInt64:
      // Sign-extended, so the low bytes serialize() writes are the original ones.
      return scalar(value.type(), static_cast<uint64_t>(value.as_i64()));
    default:
      return scalar(value.type(), value.as_u64());
  }
}

void MetaValue::serialize(std::vector<uint8_t>& out) const {
  switch (type_) {
    case ValueType::kString:
      put_string(out, string_);
      break;
    case ValueType::kArray:
      put_le(out, static_cast<uint32_t>(element_type_), 4);
      put_le(out, elements_.size(), 8);
      // Elements of an array carry no type tag of their own; nested arrays do carry
      // their element type and count, which serialize() writes.
      for (const MetaValue& e : elements_) e.serialize(out);
      break;
    default:
      put_le(out, bits_, static_cast<int>(value_type_size(type_)));
      break;
  }
}

// ---- Writer ----

Writer::Writer(WriterOptions options) : options_(options) {}

void Writer::set(const std::string& key, MetaValue value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(value));
}

void Writer::add(const std::string& key, MetaValue value) {
  if (!options_.allow_duplicate_keys) {
    for (const auto& kv : metadata_) {
      if (kv.first == key) {
        invalid("metadata key '" + key + "' is already set (use set() to replace it)");
      }
    }
  }
  metadata_.emplace_back(key, std::move(value));
}

void Writer::set_alignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    invalid("GGUF alignment must be a power of two, not " + std::to_string(alignment));
  }
  alignment_ = alignment;
  set("general.alignment", MetaValue::u32(alignment));
}

Writer::Tensor& Writer::new_tensor(const std::string& name, TensorType type,
                                   std::vector<uint64_t> dims) {
  for (const Tensor& t : tensors_) {
    if (t.name == name) invalid("tensor '" + name + "' is already in the file");
  }
  const TypeTraits traits = type_traits(type);
  if (dims.empty() || dims.size() > 4) {
    invalid("tensor '" + name + "' has " + std::to_string(dims.size()) +
            " dimensions (1 to 4 allowed)");
  }
  uint64_t elements = 1;
  for (uint64_t d : dims) {
    if (d == 0) invalid("tensor '" + name + "' has a zero dimension " + shape_text(dims));
    elements *= d;
  }
  if (dims[0] % traits.block_elems != 0) {
    invalid("tensor '" + name + "' has rows of " + std::to_string(dims[0]) +
            " values, not a multiple of the " + std::to_string(traits.block_elems) +
            "-value blocks of " + traits.name);
  }
  Tensor& t = tensors_.emplace_back();
  t.name = name;
  t.type_id = static_cast<uint32_t>(type);
  t.dims = std::move(dims);
  t.nbytes = row_bytes(traits, elements);
  return t;
}

void Writer::add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> dims,
                        std::vector<uint8_t> data) {
  Tensor& t = new_tensor(name, type, std::move(dims));
  if (data.size() != t.nbytes) {
    const uint64_t want = t.nbytes;
    tensors_.pop_back();
    invalid("tensor '" + name + "' needs " + std::to_string(want) + " bytes of " +
            type_name(static_cast<uint32_t>(type)) + " data, got " + std::to_string(data.size()));
  }
  t.data = std::move(data);
}

void Writer::add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> dims,
                        std::span<const float> values) {
  Tensor& t = new_tensor(name, type, std::move(dims));
  const uint64_t row_len = t.dims[0];
  const uint64_t n_rows = t.nbytes / row_bytes(type_traits(type), row_len);
  if (values.size() != row_len * n_rows) {
    tensors_.pop_back();
    invalid("tensor '" + name + "' needs " + std::to_string(row_len * n_rows) + " values, got " +
            std::to_string(values.size()));
  }
  t.data.resize(t.nbytes);
  quantize_row(type, values.data(), t.data.data(), static_cast<int64_t>(values.size()));
}

void Writer::add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> dims,
                        RowGenerator rows) {
  if (!rows) invalid("tensor '" + name + "' has no row generator");
  Tensor& t = new_tensor(name, type, std::move(dims));
  t.rows = std::move(rows);
}

void Writer::add_tensor_info(const std::string& name, uint32_t type_id, std::vector<uint64_t> dims,
                             uint64_t offset) {
  Tensor& t = tensors_.emplace_back();
  t.name = name;
  t.type_id = type_id;
  t.dims = std::move(dims);
  t.offset = offset;
  t.info_only = true;
}

void Writer::write_to(const std::function<void(const uint8_t*, size_t)>& sink) const {
  // Lay out the data section first: the header records every tensor's offset.
  std::vector<uint64_t> offsets;
  offsets.reserve(tensors_.size());
  uint64_t data_end = 0;
  for (const Tensor& t : tensors_) {
    if (t.info_only) {
      offsets.push_back(t.offset);
    } else {
      offsets.push_back(data_end);
      data_end = align_up(data_end + t.nbytes, alignment_);
    }
  }

  std::vector<uint8_t> header;
  put_string_bytes(header, "GGUF");
  put_le(header, options_.version, 4);
  put_le(header, tensors_.size(), 8);
  put_le(header, metadata_.size(), 8);
  for (const auto& [key, value] : metadata_) {
    put_string(header, key);
    put_le(header, static_cast<uint32_t>(value.type()), 4);
    value.serialize(header);
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    put_string(header, t.name);
    put_le(header, t.dims.size(), 4);
    for (uint64_t d : t.dims) put_le(header, d, 8);
    put_le(header, t.type_id, 4);
    put_le(header, offsets[i], 8);
  }
  header.resize(align_up(header.size(), alignment_), 0);
  sink(header.data(), header.size());

  const std::vector<uint8_t> zeros(alignment_, 0);
  std::vector<float> row;
  std::vector<uint8_t> encoded;
  for (const Tensor& t : tensors_) {
    if (t.info_only) continue;
    if (t.rows) {
      const auto type = static_cast<TensorType>(t.type_id);
      const uint64_t row_len = t.dims[0];
      const uint64_t n_rows = t.nbytes / row_bytes(type_traits(type), row_len);
      row.resize(row_len);
      encoded.resize(t.nbytes / n_rows);
      for (uint64_t r = 0; r < n_rows; ++r) {
        t.rows(r, row.data());
        quantize_row(type, row.data(), encoded.data(), static_cast<int64_t>(row_len));
        sink(encoded.data(), encoded.size());
      }
    } else {
      sink(t.data.data(), t.data.size());
    }
    sink(zeros.data(), align_up(t.nbytes, alignment_) - t.nbytes);
  }
}

Writer Writer::copy_of(const File& file) {
  Writer writer;
  for (const auto& [key, value] : file.metadata()) writer.add(key, MetaValue::from(value));
  if (file.find("general.alignment")) writer.alignment_ = static_cast<uint32_t>(file.alignment());
  for (const TensorInfo& t : file.tensors()) {
    writer.add_tensor(t.name, static_cast<TensorType>(t.type_id), t.dims,
                      std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  return writer;
}

std::vector<Writer> Writer::split(uint32_t parts) const {
  if (parts == 0 || parts > tensors_.size() || parts > 0xFFFF) {
    invalid("cannot split a file of " + std::to_string(tensors_.size()) + " tensors into " +
            std::to_string(parts) + " parts (each part needs at least one tensor)");
  }
  uint64_t total_bytes = 0;
  for (const Tensor& t : tensors_) total_bytes += t.nbytes;

  std::vector<Writer> out(parts, Writer(options_));
  out[0].metadata_ = metadata_;
  out[0].alignment_ = alignment_;
  for (uint32_t i = 0; i < parts; ++i) {
    Writer& w = out[i];
    // Later parts repeat a non-default alignment: each part is read as a file of its own.
    if (i > 0 && alignment_ != 32) w.set_alignment(alignment_);
    w.set(std::string(kSplitNo), MetaValue::u16(static_cast<uint16_t>(i)));
    w.set(std::string(kSplitCount), MetaValue::u16(static_cast<uint16_t>(parts)));
    if (i == 0) {
      w.set(std::string(kSplitTensorsCount), MetaValue::i32(static_cast<int32_t>(tensors_.size())));
    }
  }
  // Part i ends once the bytes so far reach (i + 1) / parts of the total, as long as every
  // later part still gets a tensor.
  uint32_t part = 0;
  uint64_t bytes_so_far = 0;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const size_t left = tensors_.size() - k;
    const bool reached = bytes_so_far * parts >= (part + 1) * total_bytes;
    if (part + 1 < parts && !out[part].tensors_.empty() && (reached || left == parts - part - 1)) {
      ++part;
    }
    out[part].tensors_.push_back(tensors_[k]);
    bytes_so_far += tensors_[k].nbytes;
  }
  return out;
}

std::vector<std::string> Writer::write_split_files(const std::string& prefix,
                                                   uint32_t parts) const {
  std::vector<std::string> paths;
  const std::vector<Writer> writers = split(parts);
  for (uint32_t i = 0; i < parts; ++i) {
    paths.push_back(split_path(prefix, i, parts));
    writers[i].write_file(paths.back());
  }
  return paths;
}

std::vector<uint8_t> Writer::bytes() const {
  std::vector<uint8_t> out;
  write_to([&](const uint8_t* p, size_t n) { out.insert(out.end(), p, p + n); });
  return out;
}

void Writer::write(std::ostream& out) const {
  write_to([&](const uint8_t* p, size_t n) {
    out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n));
  });
}

void Writer::write_file(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) invalid("cannot open '" + path + "' for writing");
  write(out);
  out.close();
  if (!out) invalid("writing '" + path + "' failed (disk full?)");
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) invalid("cannot open '" + path + "' for reading");
  const std::streamoff size = in.tellg();
  if (size < 0) invalid("cannot tell the size of '" + path + "'");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  if (!in) invalid("reading '" + path + "' failed");
  return bytes;
}

}  // namespace pipit::gguf
