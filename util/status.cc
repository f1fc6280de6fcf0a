#include "util/status.h"

namespace dfm {

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::kOk: return "OK";
    case Code::kNotFound: name = "NotFound"; break;
    case Code::kCorruption: name = "Corruption"; break;
    case Code::kInvalidArgument: name = "InvalidArgument"; break;
    case Code::kIOError: name = "IOError"; break;
    case Code::kUnavailable: name = "Unavailable"; break;
    case Code::kAlreadyExists: name = "AlreadyExists"; break;
    case Code::kUnauthenticated: name = "Unauthenticated"; break;
    case Code::kTooLarge: name = "TooLarge"; break;
    case Code::kResourceExhausted: name = "ResourceExhausted"; break;
    case Code::kFailedPrecondition:
      name = "FailedPrecondition";
      break;
  }
  return std::string(name) + ": " + msg_;
}

}  // namespace dfm
