// Looks up the tensors an architecture needs and checks their shapes and types, so a
// malformed file fails at load with the tensor's name instead of misbehaving later.
#pragma once

#include <cstdint>
#include <string>

#include "gguf/gguf.h"
#include "quant/kernels.h"

namespace pipit {

class WeightLoader {
 public:
  explicit WeightLoader(const gguf::File& file) : file_(file) {}

  bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }
  // A [rows x cols] matrix (GGUF ne = {cols, rows}) of a type the kernels compute with.
  kernels::Matrix matrix(const std::string& name, int64_t cols, int64_t rows) const;
  // An f32 vector of n values (norm weights, biases).
  const float* vector(const std::string& name, int64_t n) const;

 private:
  const gguf::TensorInfo& require(const std::string& name) const;
  const gguf::File& file_;
};

}  // namespace pipit
