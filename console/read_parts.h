// A cluster read's answer too large for one NATS message (kMaxReadAnswer)
// travels in parts: the answering node parks the whole answer for a while
// and gives it out a part at a time; the asking node puts it together and
// answers its caller as a single node would. Pure but for the clock the
// caller passes in; ParkedAnswers is thread-safe.
//
// Grammar (JSON, version 2; version 1 is remote_read.h's whole answer):
//   part = {"v":2,"status":<int>,"content_type":<string>,"token":<string>,
//           "offset":<uint>,"total":<uint>,"body64":<base64>}
// `body64` is the answer's bytes [offset, offset + their length) of
// `total`, in base64 (RFC 4648, padded: the bytes as they are, whatever
// they hold). The next part is the read kReadPartRoute (params token,
// offset), asked of the tenant's node. A request asks for parts with
// "parts":true (RemoteRead::parts); without it, an answer too large is
// refused (503 answer_too_large), as a node before parts answers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "console/console.h"

namespace dfm {

inline constexpr char kReadPartRoute[] = "/v1/read#part";

struct ReadPart {
  int status = 0;
  std::string content_type, token, body;
  uint64_t offset = 0, total = 0;
};

// The part of `whole` from `offset` (< whole.body's size): as many bytes
// as keep it within `max_encoded` (at least 3; *length: how many).
std::string EncodeReadPart(const ApiResponse& whole, const std::string& token, uint64_t offset,
                           size_t max_encoded, size_t* length = nullptr);
// False when `data` is not a version-2 part, or its body does not fit
// within `total` from `offset`.
bool DecodeReadPart(std::string_view data, ReadPart* p);

// Answers parked for their parts to be read: each for `ttl_us` after it
// was last read (Expire, called every second, lets go of older ones),
// together at most `max_bytes` and a tenant's at most `tenant_max_bytes`
// (an answer that would pass either is not parked: one tenant's exports
// never take the whole room), and only to the tenant it was read for.
class ParkedAnswers {
 public:
  ParkedAnswers(size_t max_bytes, size_t tenant_max_bytes, int64_t ttl_us)
      : max_bytes_(max_bytes), tenant_max_bytes_(tenant_max_bytes), ttl_us_(ttl_us) {}

  // Parks `a`; its token, or "" when there is no room now.
  std::string Park(const std::string& tenant, ApiResponse a, int64_t now_us);
  // Whether an answer of `bytes` could ever be parked.
  bool Fits(size_t bytes) const { return bytes <= std::min(max_bytes_, tenant_max_bytes_); }
  // The encoded part of the parked answer `token` at `offset`; false when
  // none is parked under it for `tenant` (expired, given out whole, or
  // never), or `offset` is not where one of its parts begins. The answer
  // is let go once its last part is given out.
  bool Part(const std::string& token, const std::string& tenant, uint64_t offset, int64_t now_us,
            size_t max_encoded, std::string* encoded);
  size_t bytes() const;
  // Lets go of the answers not asked for `ttl_us`.
  void Expire(int64_t now_us);
  // Lets go of every answer of `tenant` (a person of it erased: no answer
  // read before gives them out after).
  void DropTenant(const std::string& tenant);

 private:
  struct Parked {
    std::string tenant;
    ApiResponse answer;
    int64_t expires_us = 0;
    uint64_t next = 0;  // where the next part begins
  };
  void ExpireLocked(int64_t now_us);  // holds mu_
  template <typename Pred>
  void EraseIf(Pred gone);  // holds mu_: lets go of the answers `gone` names
  // Holds mu_: lets go of `it`; the answer after it.
  std::map<std::string, Parked>::iterator LetGo(std::map<std::string, Parked>::iterator it);

  const size_t max_bytes_, tenant_max_bytes_;
  const int64_t ttl_us_;
  mutable std::mutex mu_;
  std::map<std::string, Parked> parked_;
  size_t bytes_ = 0;
  std::map<std::string, size_t> tenant_bytes_;  // a tenant's share of bytes_
};

}  // namespace dfm
