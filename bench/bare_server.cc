// The yardstick for benchmark (b): a RESTinio server with the same traits and
// thread count as dfm's HTTP front that answers every request "200 {}" and
// does nothing else.
//
//   build/release/bench/bare_server PORT
#include <cstdlib>

#include "http/restinio_traits.h"

using Traits = dfm::HttpTraits;

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 8090;
  // dfm's per-peer connection count, uncapped here as for its loopback peers.
  auto guard = std::make_shared<dfm::ConnectionGuard>(
      std::make_shared<dfm::PeerConnections>(0, std::vector<std::string>{}));
  restinio::run(restinio::on_this_thread<Traits>()
                    .port(static_cast<std::uint16_t>(port))
                    .address("127.0.0.1")
                    .max_parallel_connections(4096)
                    .ip_blocker(guard)
                    .connection_state_listener(guard)
                    .request_handler([](auto req) {
                      req->create_response()
                          .append_header(restinio::http_field::content_type, "application/json")
                          .set_body("{}\n")
                          .done();
                      return restinio::request_accepted();
                    }));
  return 0;
}
