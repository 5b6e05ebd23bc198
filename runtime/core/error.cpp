#include "core/error.h"

namespace pipit {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return "InvalidArgument";
    case ErrorKind::kFormat:
      return "Format";
    case ErrorKind::kUnsupported:
      return "Unsupported";
    case ErrorKind::kContextOverflow:
      return "ContextOverflow";
    case ErrorKind::kOutOfMemory:
      return "OutOfMemory";
    case ErrorKind::kAborted:
      return "Aborted";
    case ErrorKind::kInternal:
      return "Internal";
  }
  return "Internal";
}

}  // namespace pipit
