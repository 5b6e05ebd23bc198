// Looks up the tensors an architecture needs and checks their shapes and types, so a
// malformed file fails at load with the tensor's name instead of misbehaving later.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "quant/kernels.h"

namespace pipit {

class WeightLoader {
 public:
  explicit WeightLoader(const gguf::File& file) : file_(file) {}

  bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }
  // A [rows x cols] matrix (GGUF ne = {cols, rows}) of a type the kernels compute with,
  // rearranged in place into the fastest layout its kernels have (so each tensor is handed
  // out once and then remembered).
  kernels::Matrix matrix(const std::string& name, int64_t cols, int64_t rows) const;
  // A [n_expert x rows x cols] stack (GGUF ne = {cols, rows, n_expert}), one matrix per expert.
  std::vector<kernels::Matrix> experts(const std::string& name, int64_t cols, int64_t rows,
                                       int64_t n_expert) const;
  // An f32 vector of n values (norm weights, biases).
  const float* vector(const std::string& name, int64_t n) const;

 private:
  const gguf::TensorInfo& require(const std::string& name) const;
  const gguf::TensorInfo& require_shape(const std::string& name,
                                        const std::vector<uint64_t>& dims) const;
  kernels::Matrix prepared(kernels::Matrix m) const;
  const gguf::File& file_;
  mutable std::map<const uint8_t*, kernels::Matrix> prepared_;
};

}  // namespace pipit
