// The RESTinio traits of dfm's HTTP front. The ingest benchmark's bare
// server uses the same header, so the two are compared on equal terms.
//
// Bodies over the limit. RESTinio either buffers a body whole or, past its
// incoming_http_msg_limits_t::max_body_size, closes the connection without
// an answer. dfm wants neither: its parser callbacks (below) mark a request
// whose body goes past max_body_size with the kBodyTooLargeMarker field and
// discard the body's bytes as they arrive, so a connection never holds more
// than the limit and the handler still answers 413. The client's time to
// send the rest is bounded by the read timeout. RESTinio 0.6 (Debian 12's
// 0.6.16) builds its parser settings in impl::create_parser_settings<>,
// specialised here for dfm's methods-mapper type.
#pragma once

#include <restinio/all.hpp>

#include <memory>
#include <string>

#include "http/client_limits.h"

namespace dfm {

// Set on a request whose body was over the limit, with the declared length
// (or "chunked"); its body is then empty. A client that sends the field
// itself gets the same 413: nothing else reads it.
inline constexpr char kBodyTooLargeMarker[] = "X-Dfm-Body-Too-Large";

// RESTinio's default method mapping, as a type of dfm's own for the
// specialisation below.
class BodyCappedHttpMethods : public restinio::default_http_methods_t {};

// PeerConnections (http/client_limits.h) as RESTinio asks for it: its IP
// blocker refuses a peer's connection past the cap (the kernel's accept
// queue does not hold it: it is closed), and its connection-state listener
// counts them.
class ConnectionGuard {
 public:
  explicit ConnectionGuard(std::shared_ptr<PeerConnections> peers) : peers_(std::move(peers)) {}

  restinio::ip_blocker::inspection_result_t inspect(
      const restinio::ip_blocker::incoming_info_t& info) noexcept {
    try {
      return peers_->MayOpen(info.remote_endpoint().address().to_string())
                 ? restinio::ip_blocker::allow()
                 : restinio::ip_blocker::deny();
    } catch (...) {
      return restinio::ip_blocker::allow();
    }
  }

  void state_changed(const restinio::connection_state::notice_t& notice) noexcept {
    try {
      const std::string peer = notice.remote_endpoint().address().to_string();
      const auto cause = notice.cause();
      if (restinio::holds_alternative<restinio::connection_state::accepted_t>(cause)) {
        peers_->Opened(peer);
      } else if (restinio::holds_alternative<restinio::connection_state::closed_t>(cause)) {
        peers_->Closed(peer);
      }
    } catch (...) {
    }
  }

 private:
  std::shared_ptr<PeerConnections> peers_;
};

struct HttpTraits : public restinio::default_traits_t {
  // Refuse to accept past server.max_connections (the rest wait in the
  // kernel's accept queue).
  static constexpr bool use_connection_count_limiter = true;
  using http_methods_mapper_t = BodyCappedHttpMethods;
  using ip_blocker_t = ConnectionGuard;
  using connection_state_listener_t = ConnectionGuard;
};

}  // namespace dfm

namespace restinio::impl {

template <>
inline http_parser_settings create_parser_settings<dfm::BodyCappedHttpMethods>() noexcept {
  http_parser_settings s = create_parser_settings<restinio::default_http_methods_t>();
  s.on_headers_complete = [](http_parser* p) -> int {
    auto* ctx = reinterpret_cast<http_parser_ctx_t*>(p->data);
    if (p->content_length != ULLONG_MAX && p->content_length > ctx->m_limits.max_body_size()) {
      ctx->m_leading_headers_completed = true;
      try {
        ctx->m_header.set_field(dfm::kBodyTooLargeMarker, std::to_string(p->content_length));
      } catch (const std::exception&) {
        return -1;
      }
      return 0;  // nothing reserved: the body is discarded as it comes
    }
    return restinio_headers_complete_cb(p);
  };
  s.on_body = [](http_parser* p, const char* at, size_t length) -> int {
    auto* ctx = reinterpret_cast<http_parser_ctx_t*>(p->data);
    if (ctx->m_header.has_field(dfm::kBodyTooLargeMarker)) return 0;
    if (ctx->m_body.size() + length > ctx->m_limits.max_body_size()) {  // chunked, past it
      try {
        ctx->m_header.set_field(dfm::kBodyTooLargeMarker, "chunked");
      } catch (const std::exception&) {
        return -1;
      }
      std::string().swap(ctx->m_body);
      return 0;
    }
    return restinio_body_cb(p, at, length);
  };
  s.on_chunk_header = [](http_parser* p) -> int {
    auto* ctx = reinterpret_cast<http_parser_ctx_t*>(p->data);
    if (ctx->m_header.has_field(dfm::kBodyTooLargeMarker)) return 0;
    return restinio_chunk_header_cb(p);
  };
  return s;
}

}  // namespace restinio::impl
