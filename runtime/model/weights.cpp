#include "model/weights.h"

#include "core/error.h"

namespace pipit {
namespace {

std::string shape_string(const std::vector<uint64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace

const gguf::TensorInfo& WeightLoader::require(const std::string& name) const {
  const gguf::TensorInfo* t = file_.find_tensor(name);
  if (!t) fail(ErrorKind::kFormat, "the model file has no tensor '" + name + "'");
  return *t;
}

const gguf::TensorInfo& WeightLoader::require_shape(const std::string& name,
                                                    const std::vector<uint64_t>& dims) const {
  const gguf::TensorInfo& t = require(name);
  if (t.dims != dims) {
    fail(ErrorKind::kFormat, "tensor '" + name + "' has shape " + shape_string(t.dims) +
                                 ", expected " + shape_string(dims));
  }
  if (!kernels::is_supported(static_cast<TensorType>(t.type_id))) {
    fail(ErrorKind::kUnsupported, "tensor '" + name + "' uses type " + type_name(t.type_id) +
                                      ", which pipit cannot compute with yet");
  }
  return t;
}

kernels::Matrix WeightLoader::matrix(const std::string& name, int64_t cols, int64_t rows) const {
  const gguf::TensorInfo& t =
      require_shape(name, {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)});
  kernels::Matrix m;
  m.type = static_cast<TensorType>(t.type_id);
  m.data = t.data;
  m.cols = cols;
  m.rows = rows;
  m.row_bytes = t.nbytes / static_cast<uint64_t>(rows);
  return prepared(m);
}

kernels::Matrix WeightLoader::prepared(kernels::Matrix m) const {
  auto [it, inserted] = prepared_.emplace(m.data, m);
  if (inserted) {
    // The model owns these bytes and nothing else reads them as a file again.
    kernels::interleave_rows_of_4(it->second, const_cast<uint8_t*>(m.data));
  }
  return it->second;
}

std::vector<kernels::Matrix> WeightLoader::experts(const std::string& name, int64_t cols,
                                                   int64_t rows, int64_t n_expert) const {
  const gguf::TensorInfo& t = require_shape(
      name,
      {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows), static_cast<uint64_t>(n_expert)});
  std::vector<kernels::Matrix> out;
  const size_t row_bytes = t.nbytes / static_cast<uint64_t>(rows * n_expert);
  for (int64_t e = 0; e < n_expert; ++e) {
    kernels::Matrix m;
    m.type = static_cast<TensorType>(t.type_id);
    m.data = t.data + static_cast<size_t>(e * rows) * row_bytes;
    m.cols = cols;
    m.rows = rows;
    m.row_bytes = row_bytes;
    out.push_back(prepared(m));
  }
  return out;
}

const float* WeightLoader::vector(const std::string& name, int64_t n) const {
  const gguf::TensorInfo& t = require(name);
  if (t.dims != std::vector<uint64_t>{static_cast<uint64_t>(n)}) {
    fail(ErrorKind::kFormat, "tensor '" + name + "' has shape " + shape_string(t.dims) +
                                 ", expected [" + std::to_string(n) + "]");
  }
  if (t.type_id != static_cast<uint32_t>(TensorType::F32)) {
    fail(ErrorKind::kUnsupported, "tensor '" + name + "' is " + type_name(t.type_id) +
                                      "; pipit expects F32 for norm weights and biases");
  }
  return reinterpret_cast<const float*>(t.data);
}

}  // namespace pipit
