// The RESTinio traits of dfm's HTTP front. The ingest benchmark's bare
// server uses the same header, so the two are compared on equal terms.
#pragma once

#include <restinio/all.hpp>

namespace dfm {

struct HttpTraits : public restinio::default_traits_t {
  // Refuse to accept past server.max_connections (the rest wait in the
  // kernel's accept queue).
  static constexpr bool use_connection_count_limiter = true;
};

}  // namespace dfm
