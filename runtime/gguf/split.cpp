#include "gguf/split.h"

#include <cstdio>
#include <unordered_map>

#include "core/error.h"
#include "gguf/gguf.h"

namespace pipit::gguf {
namespace {

[[noreturn]] void split_error(const std::string& message) {
  fail(ErrorKind::kFormat, message);
}

std::string part_name(size_t index, size_t count) {
  return "part " + std::to_string(index + 1) + " of " + std::to_string(count);
}

// gguf-split writes the indices as uint16; any non-negative integer is accepted here, so a
// file from another writer is judged by its value.
uint64_t split_key(const File& part, std::string_view key, const std::string& which) {
  const Value* v = part.find(key);
  if (!v) {
    split_error(which + " has no '" + std::string(key) +
                "' metadata: it is not part of a split GGUF set (or not of this one)");
  }
  return v->as_u64();
}

}  // namespace

std::string split_path(const std::string& prefix, uint32_t index, uint32_t count) {
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "-%05u-of-%05u.gguf", index + 1, count);
  return prefix + suffix;
}

File File::join_split(std::vector<File> parts) {
  if (parts.empty()) fail(ErrorKind::kInvalidArgument, "no model file was given");
  const size_t given = parts.size();
  File& first = parts[0];
  if (!first.find(kSplitCount)) {
    if (given == 1) return std::move(first);
    split_error(std::to_string(given) + " files were given, but the first has no 'split.count' " +
                "metadata: it is not the first part of a split GGUF set");
  }
  const uint64_t count = split_key(first, kSplitCount, part_name(0, given));
  if (count == 0 || count > 0xFFFF) {
    split_error("the first part says split.count is " + std::to_string(count) +
                ", outside the range 1..65535");
  }
  if (count != given) {
    if (given < count) {
      const auto n = static_cast<uint32_t>(count);
      split_error("the model is split into " + std::to_string(count) + " files (split.count) but " +
                  std::to_string(given) + (given == 1 ? " was" : " were") + " given, so " +
                  part_name(given, count) + " is missing: load all the parts together (" +
                  split_path("NAME", 0, n) + " to " + split_path("NAME", n - 1, n) + ")");
    }
    split_error(std::to_string(given) + " files were given but the model is split into " +
                std::to_string(count) + " (split.count of the first part)");
  }

  std::unordered_map<std::string_view, size_t> owner;  // tensor name -> part index
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string which = part_name(i, count);
    const uint64_t no = split_key(parts[i], kSplitNo, which);
    if (no != i) {
      split_error(which + " has split.no " + std::to_string(no) + " (it is part " +
                  std::to_string(no + 1) + "): the parts are given out of order or one is " +
                  "from another set");
    }
    const uint64_t part_count = split_key(parts[i], kSplitCount, which);
    if (part_count != count) {
      split_error(which + " says split.count is " + std::to_string(part_count) +
                  ", but the first part says " + std::to_string(count) +
                  ": the parts come from different split sets");
    }
    for (const TensorInfo& t : parts[i].tensors()) {
      const auto [it, inserted] = owner.emplace(t.name, i);
      if (!inserted) {
        split_error("tensor '" + t.name + "' is in both " + part_name(it->second, count) + " and " +
                    which + ": the parts come from different split sets");
      }
    }
  }
  const uint64_t total = split_key(first, kSplitTensorsCount, part_name(0, count));
  if (owner.size() != total) {
    split_error("the first part says the set holds " + std::to_string(total) +
                " tensors (split.tensors.count), but the " + std::to_string(count) +
                " parts hold " + std::to_string(owner.size()));
  }

  File joined = std::move(first);
  for (size_t i = 1; i < parts.size(); ++i) {
    for (TensorInfo& t : parts[i].tensors_) joined.tensors_.push_back(std::move(t));
    for (std::string& w : parts[i].warnings_) {
      joined.warnings_.push_back(part_name(i, count) + ": " + std::move(w));
    }
  }
  return joined;
}

}  // namespace pipit::gguf
