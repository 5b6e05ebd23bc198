// One exception type for everything the runtime refuses. The kind survives the trip to
// JavaScript, where it selects the Error subclass a caller can test with instanceof.
#pragma once

#include <stdexcept>
#include <string>

namespace pipit {

enum class ErrorKind {
  kInvalidArgument,  // the caller passed a bad option or value
  kFormat,           // the file is not a valid GGUF or is internally inconsistent
  kUnsupported,      // valid, but uses something pipit does not implement
  kContextOverflow,  // the tokens do not fit the context window
  kOutOfMemory,      // an allocation would exceed what is available
  kAborted,          // the caller cancelled
  kInternal,         // a bug in pipit
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] inline void fail(ErrorKind kind, const std::string& message) {
  throw Error(kind, message);
}

}  // namespace pipit
