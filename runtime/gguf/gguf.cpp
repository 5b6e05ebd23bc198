#include "gguf/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "core/error.h"

namespace pipit::gguf {
namespace {

constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;
// Up-front reservations from counts read in the file stop here; past it vectors grow as
// entries are actually read.
constexpr uint64_t kMaxReserve = 1 << 16;

[[noreturn]] void format_error(const std::string& message) {
  fail(ErrorKind::kFormat, message);
}

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

bool valid_value_type(uint32_t t) {
  return t <= static_cast<uint32_t>(ValueType::kFloat64);
}

uint64_t load_le(const uint8_t* p, uint64_t n) {
  uint64_t v = 0;
  for (uint64_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// Every tensor owns its bytes: the loader rearranges weights in place and remembers them by
// address, so two tensors sharing bytes would be rewritten twice or handed out with each
// other's shape. A writer never produces that; a hostile or damaged file can.
void refuse_overlapping_tensors(const std::vector<TensorInfo>& tensors) {
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(tensors.size());
  for (const TensorInfo& t : tensors) {
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  const TensorInfo* furthest = nullptr;  // of those before, the one whose bytes end last
  for (const TensorInfo* t : by_offset) {
    if (furthest && t->offset < furthest->offset + furthest->nbytes) {
      const auto range = [](const TensorInfo& x) {
        return "bytes " + std::to_string(x.offset) + " to " + std::to_string(x.offset + x.nbytes);
      };
      format_error("tensors " + quoted(furthest->name) + " (" + range(*furthest) + ") and " +
                   quoted(t->name) + " (" + range(*t) +
                   ") share bytes of the data section; each tensor needs its own");
    }
    if (!furthest || t->offset + t->nbytes > furthest->offset + furthest->nbytes) furthest = t;
  }
}

}  // namespace

uint64_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::kUInt8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUInt16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUInt32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUInt64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
      return 8;
    case ValueType::kString:
    case ValueType::kArray:
      return 0;
  }
  return 0;
}

const char* value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kUInt8:
      return "uint8";
    case ValueType::kInt8:
      return "int8";
    case ValueType::kUInt16:
      return "uint16";
    case ValueType::kInt16:
      return "int16";
    case ValueType::kUInt32:
      return "uint32";
    case ValueType::kInt32:
      return "int32";
    case ValueType::kFloat32:
      return "float32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kArray:
      return "array";
    case ValueType::kUInt64:
      return "uint64";
    case ValueType::kInt64:
      return "int64";
    case ValueType::kFloat64:
      return "float64";
  }
  return "invalid";
}

// Reads the byte stream front to back; every read is bounds-checked and says what it was
// reading when the bytes run out.
class Parser {
 public:
  explicit Parser(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  uint64_t pos() const { return pos_; }
  uint64_t size() const { return bytes_.size(); }

  void need(uint64_t n, const std::string& what) const {
    if (n > bytes_.size() - pos_) {
      format_error("GGUF file is truncated: reading " + what + " needs " + std::to_string(n) +
                   " bytes at offset " + std::to_string(pos_) + ", but the file has " +
                   std::to_string(bytes_.size()) + " bytes");
    }
  }
  uint64_t read_uint(uint64_t n, const std::string& what) {
    need(n, what);
    uint64_t v = load_le(bytes_.data() + pos_, n);
    pos_ += n;
    return v;
  }
  std::string_view read_string(const std::string& what) {
    uint64_t len = read_uint(8, what + " length");
    need(len, what + " (" + std::to_string(len) + " bytes)");
    std::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
    pos_ += len;
    return s;
  }
  ValueType read_value_type(const std::string& what) {
    uint32_t t = static_cast<uint32_t>(read_uint(4, what + " type"));
    if (!valid_value_type(t)) {
      format_error("invalid metadata value type " + std::to_string(t) + " for " + what);
    }
    return static_cast<ValueType>(t);
  }

  Value read_value(ValueType type, std::string_view key, int depth) {
    Value v;
    v.type_ = type;
    v.key_ = key;
    const std::string what = "metadata " + quoted(key);
    if (type == ValueType::kString) {
      v.string_ = read_string(what);
    } else if (type == ValueType::kArray) {
      if (depth >= kMaxArrayDepth) format_error(what + " nests arrays too deeply");
      v.elem_type_ = read_value_type(what + " array element");
      v.count_ = read_uint(8, what + " array length");
      uint64_t start = pos_;
      uint64_t elem = value_type_size(v.elem_type_);
      if (elem != 0) {
        if (v.count_ > (bytes_.size() - pos_) / elem) {
          format_error("GGUF file is truncated or corrupt: " + what + " claims " +
                       std::to_string(v.count_) + " " + value_type_name(v.elem_type_) +
                       " elements, more than the " + std::to_string(bytes_.size() - pos_) +
                       " bytes left in the file");
        }
        pos_ += v.count_ * elem;
      } else {
        // Strings take at least 8 bytes and arrays 12, so a count beyond that is a lie.
        uint64_t min_elem = v.elem_type_ == ValueType::kString ? 8 : 12;
        if (v.count_ > (bytes_.size() - pos_) / min_elem) {
          format_error("GGUF file is truncated or corrupt: " + what + " claims " +
                       std::to_string(v.count_) + " " + value_type_name(v.elem_type_) +
                       " elements, more than the file can hold");
        }
        auto offsets = std::make_shared<std::vector<uint64_t>>();
        offsets->reserve(std::min<uint64_t>(v.count_, kMaxReserve));
        for (uint64_t i = 0; i < v.count_; ++i) {
          offsets->push_back(pos_ - start);
          if (v.elem_type_ == ValueType::kString) {
            read_string(what + " element " + std::to_string(i));
          } else {
            // An element of an array of arrays is itself {element type, count, elements}.
            read_value(ValueType::kArray, key, depth + 1);
          }
        }
        v.offsets_ = std::move(offsets);
      }
      v.raw_ = bytes_.subspan(start, pos_ - start);
    } else {
      uint64_t n = value_type_size(type);
      v.bits_ = read_uint(n, what);
    }
    return v;
  }

  File parse(const ParseOptions& options);

 private:
  std::span<const uint8_t> bytes_;
  uint64_t pos_ = 0;
};

File Parser::parse(const ParseOptions& options) {
  File file;
  need(4, "the magic number");
  if (std::memcmp(bytes_.data(), "GGUF", 4) != 0) {
    format_error("not a GGUF file: it does not start with the bytes 'GGUF' (" +
                 std::to_string(bytes_.size()) + " bytes)");
  }
  pos_ = 4;
  uint32_t version = static_cast<uint32_t>(read_uint(4, "the version"));
  if (version == 1) {
    fail(ErrorKind::kUnsupported,
         "GGUF version 1 is not supported (only 2 and 3); re-convert "
         "the model with a current llama.cpp");
  }
  if (version != 2 && version != 3) {
    // A big-endian writer stores 2 or 3 with its bytes reversed; 0 is just an invalid file.
    if (version == 0x02000000 || version == 0x03000000) {
      fail(ErrorKind::kUnsupported, "big-endian GGUF files are not supported");
    }
    format_error("unknown GGUF version " + std::to_string(version));
  }
  file.version_ = version;
  uint64_t n_tensors = read_uint(8, "the tensor count");
  uint64_t n_kv = read_uint(8, "the metadata count");
  // Each metadata entry takes at least 12 bytes and each tensor info at least 28.
  if (n_kv > size() / 12) {
    format_error("GGUF header claims " + std::to_string(n_kv) + " metadata entries, more than a " +
                 std::to_string(size()) + "-byte file can hold");
  }
  if (n_tensors > size() / 28) {
    format_error("GGUF header claims " + std::to_string(n_tensors) + " tensors, more than a " +
                 std::to_string(size()) + "-byte file can hold");
  }

  std::unordered_set<std::string_view> seen;
  // The counts are only bounded by the file size so far, and an entry in memory is several
  // times larger than its minimum on disk: reserving for a lying count could take gigabytes.
  file.metadata_.reserve(std::min<uint64_t>(n_kv, kMaxReserve));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string_view key = read_string("metadata key " + std::to_string(i));
    ValueType type = read_value_type("metadata " + quoted(key));
    Value value = read_value(type, key, 0);
    if (!seen.insert(key).second) {
      if (!options.allow_duplicate_keys) {
        format_error("metadata key " + quoted(key) +
                     " appears more than once (a malformed file); load it with "
                     "allowDuplicateKeys to accept it, keeping the first value");
      }
      file.warnings_.push_back("metadata key " + quoted(key) +
                               " appears more than once; the first value is used");
      continue;
    }
    file.metadata_.emplace_back(std::string(key), std::move(value));
  }

  if (const Value* a = file.find("general.alignment")) {
    if (a->type() != ValueType::kUInt32) {
      format_error("general.alignment must be a uint32, not " +
                   std::string(value_type_name(a->type())));
    }
    uint64_t align = a->as_u64();
    if (align == 0 || (align & (align - 1)) != 0) {
      format_error("general.alignment is " + std::to_string(align) + ", not a power of two");
    }
    // Tensors are used where they lie: norm weights and biases as floats, which must start on a
    // 4-byte boundary. Writers use 32.
    if (align < 4) {
      format_error("general.alignment is " + std::to_string(align) +
                   "; pipit needs tensor data aligned to at least 4 bytes");
    }
    file.alignment_ = align;
  }

  file.tensors_.reserve(std::min<uint64_t>(n_tensors, kMaxReserve));
  std::unordered_set<std::string_view> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    std::string_view name = read_string("tensor info " + std::to_string(i) + " name");
    t.name = std::string(name);
    const std::string what = "tensor " + quoted(name);
    if (!names.insert(name).second) format_error(what + " appears more than once");
    uint32_t n_dims = static_cast<uint32_t>(read_uint(4, what + " dimension count"));
    if (n_dims == 0 || n_dims > kMaxDims) {
      format_error(what + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    }
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim = read_uint(8, what + " dimension " + std::to_string(d));
      if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim) {
        format_error(what + " has an impossible dimension " + std::to_string(dim));
      }
      elements *= dim;
      t.dims.push_back(dim);
    }
    t.type_id = static_cast<uint32_t>(read_uint(4, what + " type"));
    auto traits = type_traits(t.type_id);
    if (!traits) {
      fail(ErrorKind::kUnsupported,
           what + " has tensor type id " + std::to_string(t.type_id) + ", which is unknown");
    }
    if (t.dims[0] % traits->block_elems != 0) {
      format_error(what + " has rows of " + std::to_string(t.dims[0]) + " values, which is not " +
                   "a multiple of the " + std::to_string(traits->block_elems) +
                   "-value blocks of " + traits->name);
    }
    t.nbytes = elements / traits->block_elems * traits->block_bytes;
    t.offset = read_uint(8, what + " offset");
    if (t.offset % file.alignment_ != 0) {
      format_error(what + " data offset " + std::to_string(t.offset) +
                   " is not a multiple of the " + "alignment " + std::to_string(file.alignment_));
    }
    file.tensors_.push_back(std::move(t));
  }

  uint64_t data_offset = (pos_ + file.alignment_ - 1) / file.alignment_ * file.alignment_;
  if (n_tensors > 0 && data_offset > size()) {
    format_error("GGUF file is truncated: tensor data would start at byte " +
                 std::to_string(data_offset) + " but the file has " + std::to_string(size()) +
                 " bytes");
  }
  file.data_offset_ = data_offset;
  const uint64_t data_size = n_tensors > 0 ? size() - data_offset : 0;
  for (TensorInfo& t : file.tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      format_error("tensor " + quoted(t.name) + " (" + type_name(t.type_id) + ", " +
                   std::to_string(t.nbytes) + " bytes at data offset " + std::to_string(t.offset) +
                   ") extends past the end of the file: the data section holds " +
                   std::to_string(data_size) + " bytes (file size " + std::to_string(size()) +
                   ", data starts at " + std::to_string(data_offset) + ")");
    }
    t.data = bytes_.data() + data_offset + t.offset;
  }
  refuse_overlapping_tensors(file.tensors_);
  return file;
}

File File::parse(std::span<const uint8_t> bytes, const ParseOptions& options) {
  return Parser(bytes).parse(options);
}

const Value* File::find(std::string_view key) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Value& File::require(std::string_view key) const {
  const Value* v = find(key);
  if (!v) format_error("the model file has no metadata key " + quoted(key));
  return *v;
}

std::string_view File::get_string(std::string_view key, std::string_view fallback) const {
  const Value* v = find(key);
  return v ? v->as_string() : fallback;
}

uint64_t File::get_u64(std::string_view key, uint64_t fallback) const {
  const Value* v = find(key);
  return v ? v->as_u64() : fallback;
}

double File::get_f64(std::string_view key, double fallback) const {
  const Value* v = find(key);
  return v ? v->as_f64() : fallback;
}

bool File::get_bool(std::string_view key, bool fallback) const {
  const Value* v = find(key);
  return v ? v->as_bool() : fallback;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

uint64_t TensorInfo::elements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

// ---- Value ----

namespace {

[[noreturn]] void wrong_type(std::string_view key, ValueType have, const char* want) {
  format_error("metadata " + quoted(key) + " is a " + value_type_name(have) + ", expected " + want);
}

bool is_signed(ValueType t) {
  return t == ValueType::kInt8 || t == ValueType::kInt16 || t == ValueType::kInt32 ||
         t == ValueType::kInt64;
}

int64_t sign_extend(uint64_t bits, uint64_t bytes) {
  if (bytes == 8) return static_cast<int64_t>(bits);
  uint64_t sign = uint64_t{1} << (bytes * 8 - 1);
  return static_cast<int64_t>((bits ^ sign) - sign);
}

}  // namespace

bool Value::is_integer() const {
  switch (type_) {
    case ValueType::kUInt8:
    case ValueType::kInt8:
    case ValueType::kUInt16:
    case ValueType::kInt16:
    case ValueType::kUInt32:
    case ValueType::kInt32:
    case ValueType::kUInt64:
    case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

uint64_t Value::as_u64() const {
  if (type_ == ValueType::kBool) return bits_ != 0;
  if (!is_integer()) wrong_type(key_, type_, "an unsigned integer");
  if (is_signed(type_) && sign_extend(bits_, value_type_size(type_)) < 0) {
    format_error("metadata " + quoted(key_) + " is negative, expected an unsigned integer");
  }
  return bits_;
}

int64_t Value::as_i64() const {
  if (!is_integer()) wrong_type(key_, type_, "an integer");
  if (is_signed(type_)) return sign_extend(bits_, value_type_size(type_));
  if (bits_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    format_error("metadata " + quoted(key_) + " is too large for a signed integer");
  }
  return static_cast<int64_t>(bits_);
}

double Value::as_f64() const {
  if (type_ == ValueType::kFloat32) {
    float f;
    uint32_t b = static_cast<uint32_t>(bits_);
    std::memcpy(&f, &b, 4);
    return f;
  }
  if (type_ == ValueType::kFloat64) {
    double d;
    std::memcpy(&d, &bits_, 8);
    return d;
  }
  if (is_integer()) {
    return is_signed(type_) ? static_cast<double>(sign_extend(bits_, value_type_size(type_)))
                            : static_cast<double>(bits_);
  }
  wrong_type(key_, type_, "a number");
}

bool Value::as_bool() const {
  if (type_ == ValueType::kBool) return bits_ != 0;
  wrong_type(key_, type_, "a bool");
}

std::string_view Value::as_string() const {
  if (type_ != ValueType::kString) wrong_type(key_, type_, "a string");
  return string_;
}

ValueType Value::element_type() const {
  if (type_ != ValueType::kArray) wrong_type(key_, type_, "an array");
  return elem_type_;
}

uint64_t Value::size() const {
  if (type_ != ValueType::kArray) wrong_type(key_, type_, "an array");
  return count_;
}

Value Value::at(uint64_t index) const {
  if (type_ != ValueType::kArray) wrong_type(key_, type_, "an array");
  if (index >= count_) {
    format_error("metadata " + quoted(key_) + " has " + std::to_string(count_) +
                 " elements; index " + std::to_string(index) + " is out of range");
  }
  uint64_t elem = value_type_size(elem_type_);
  if (elem != 0) {
    Value v;
    v.type_ = elem_type_;
    v.key_ = key_;
    v.bits_ = load_le(raw_.data() + index * elem, elem);
    return v;
  }
  // Re-parse the element from its recorded start; it was validated when the file was read.
  Parser p(raw_.subspan((*offsets_)[index]));
  if (elem_type_ == ValueType::kString) return p.read_value(ValueType::kString, key_, 0);
  return p.read_value(ValueType::kArray, key_, 1);
}

std::vector<std::string_view> Value::as_strings() const {
  if (element_type() != ValueType::kString) wrong_type(key_, elem_type_, "an array of strings");
  std::vector<std::string_view> out;
  out.reserve(count_);
  for (uint64_t i = 0; i < count_; ++i) {
    const uint8_t* p = raw_.data() + (*offsets_)[i];
    uint64_t len = load_le(p, 8);
    out.emplace_back(reinterpret_cast<const char*>(p + 8), len);
  }
  return out;
}

std::vector<float> Value::as_f32s() const {
  ValueType et = element_type();
  if (value_type_size(et) == 0 || et == ValueType::kBool) {
    wrong_type(key_, et, "an array of numbers");
  }
  std::vector<float> out;
  out.reserve(count_);
  for (uint64_t i = 0; i < count_; ++i) out.push_back(static_cast<float>(at(i).as_f64()));
  return out;
}

std::vector<int32_t> Value::as_i32s() const {
  ValueType et = element_type();
  Value probe;
  probe.type_ = et;
  if (!probe.is_integer()) wrong_type(key_, et, "an array of integers");
  std::vector<int32_t> out;
  out.reserve(count_);
  for (uint64_t i = 0; i < count_; ++i) {
    int64_t v = at(i).as_i64();
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
      format_error("metadata " + quoted(key_) + " element " + std::to_string(i) +
                   " does not fit in 32 bits");
    }
    out.push_back(static_cast<int32_t>(v));
  }
  return out;
}

}  // namespace pipit::gguf
