// WhatsApp -> Genesys benchmark (issue 30). It plays both ends around a
// running `dfm serve` configured with --tenants tenants t0..t<N-1> (each
// with its own WhatsApp app secret "bench-wa-secret-<k>", phone number id
// "90000<k>" and Genesys integration "int-<k>"; bench/run_bridge.sh writes
// that configuration):
// - Genesys Cloud, in C++ (RESTinio, one thread): POST /oauth/token grants
//   a day-long token, POST .../{integration}/inbound/open/message answers
//   200 {id, conversationId} at once and notes when each message arrived
//   (by channel.messageId, "whatsapp:<wamid>").
// - Meta: signed WhatsApp notifications (X-Hub-Signature-256, each tenant's
//   app secret), one text each, round robin over the tenants and over
//   --people customers per tenant, sent open loop at --rate over keep-alive
//   connections; latency counts from when each was due.
//
// Reported: notification due -> Genesys inbound call received, p50/p99/max
// over the measured window (after --warmup), and any message missing or
// out of order per customer.
//
//   bridge_bench --dfm-port P --vendor-port V [--tenants 50] [--people 20]
//                [--rate 500] [--seconds 10] [--warmup 2] [--connections 8]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/http_conn.h"
#include "bench/latency.h"
#include "http/restinio_traits.h"
#include "util/crypto.h"

namespace {

using dfm::bench::Conn;
using dfm::bench::Ready;
using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct GenesysLog {
  std::mutex mu;
  std::unordered_map<int64_t, int64_t> arrived_ns;  // message index -> first arrival
  std::map<std::string, std::vector<int64_t>> order;  // person -> message indices as they came
  std::atomic<int64_t> tokens{0}, messages{0}, duplicates{0};
};

auto RunGenesys(int port, GenesysLog* glog) {
  using Traits = dfm::HttpTraits;
  auto guard = std::make_shared<dfm::ConnectionGuard>(
      std::make_shared<dfm::PeerConnections>(0, std::vector<std::string>{}));
  return restinio::run_async<Traits>(
      restinio::own_io_context(),
      restinio::server_settings_t<Traits>{}
          .port(static_cast<std::uint16_t>(port))
          .address("127.0.0.1")
          .max_parallel_connections(4096)
          .ip_blocker(guard)
          .connection_state_listener(guard)
          .request_handler([glog](auto req) {
            std::string target(req->header().path());
            std::string body = "{}";
            int status = 200;
            if (target == "/oauth/token") {
              glog->tokens++;
              body = R"({"access_token":"bench-token","token_type":"bearer","expires_in":86400})";
            } else if (target.find("/inbound/open/message") != std::string::npos) {
              const int64_t now = NowNs();
              glog->messages++;
              simdjson::dom::parser parser;
              simdjson::dom::element doc;
              std::string_view mid, from;
              std::string raw(req->body());
              if (!parser.parse(raw).get(doc) && !doc["channel"]["messageId"].get(mid) &&
                  !doc["channel"]["from"]["id"].get(from)) {
                // "whatsapp:wamid.bench<index>"
                const size_t at = mid.rfind("bench");
                const int64_t idx = at == std::string_view::npos ? -1 : std::stoll(std::string(mid.substr(at + 5)));
                std::lock_guard<std::mutex> lk(glog->mu);
                if (!glog->arrived_ns.emplace(idx, now).second) glog->duplicates++;
                glog->order[std::string(from)].push_back(idx);
                body = R"({"id":"g)" + std::to_string(idx) + R"(","conversationId":"conv-)" +
                       std::string(from) + R"(","type":"Text","direction":"Inbound"})";
              } else {
                status = 400;
                body = R"({"message":"bad body","code":"bad.request","status":400})";
              }
            } else {
              status = 404;
            }
            req->create_response(restinio::http_status_line_t{
                                     restinio::http_status_code_t{static_cast<std::uint16_t>(status)},
                                     status == 200 ? "OK" : "Error"})
                .append_header(restinio::http_field::content_type, "application/json")
                .set_body(body)
                .done();
            return restinio::request_accepted();
          }),
      1);
}


// Message `idx`: tenant idx % tenants, customer (idx / tenants) % people.
std::string Notification(int64_t idx, int tenants, int people, const std::deque<dfm::HmacKey>& keys) {
  const int t = static_cast<int>(idx % tenants);
  const int64_t person = (idx / tenants) % people;
  // +44 7700 900xxx (Ofcom's drama range): tenants x people up to 1,000.
  const std::string wa = std::to_string(447700900000LL + t * people + person);
  const std::string ts = std::to_string(std::time(nullptr));
  std::string body =
      R"({"object":"whatsapp_business_account","entry":[{"id":"waba-)" + std::to_string(t) +
      R"(","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1555000)" +
      std::to_string(1000 + t) + R"(","phone_number_id":"90000)" + std::to_string(t) +
      R"("},"contacts":[{"profile":{"name":"Bench"},"wa_id":")" + wa +
      R"("}],"messages":[{"from":")" + wa + R"(","id":"wamid.bench)" + std::to_string(idx) +
      R"(","timestamp":")" + ts + R"(","type":"text","text":{"body":"Where is my order?"}}]}}]}]})";
  return "POST /t/t" + std::to_string(t) +
         "/webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "X-Hub-Signature-256: sha256=" +
         dfm::HexEncode(keys[static_cast<size_t>(t)].Mac(body)) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}


}  // namespace

int main(int argc, char** argv) {
  int dfm_port = 18080, vendor_port = 18191, connections = 8, tenants = 50, people = 20;
  double rate = 500, seconds = 10, warmup = 2, wait_s = 60, vendor_only = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--dfm-port") dfm_port = std::atoi(v);
    if (a == "--vendor-port") vendor_port = std::atoi(v);
    if (a == "--rate") rate = std::atof(v);
    if (a == "--seconds") seconds = std::atof(v);
    if (a == "--warmup") warmup = std::atof(v);
    if (a == "--connections") connections = std::atoi(v);
    if (a == "--tenants") tenants = std::atoi(v);
    if (a == "--people") people = std::atoi(v);
    if (a == "--wait-s") wait_s = std::atof(v);
    if (a == "--vendor-only") vendor_only = std::atof(v);
  }
  GenesysLog glog;
  auto genesys = RunGenesys(vendor_port, &glog);
  if (vendor_only > 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(vendor_only));
    return 0;
  }
  for (int i = 0; i < 200 && !Ready(dfm_port); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::deque<dfm::HmacKey> keys;  // not movable: a deque keeps them in place
  for (int t = 0; t < tenants; ++t)
    keys.emplace_back(dfm::HmacKey::Digest::kSha256, "bench-wa-secret-" + std::to_string(t));

  const int64_t total = static_cast<int64_t>((warmup + seconds) * rate);
  const int64_t measured_from = static_cast<int64_t>(warmup * rate);
  const int64_t interval_ns = static_cast<int64_t>(1e9 / rate);
  std::vector<int64_t> due(static_cast<size_t>(total));
  std::atomic<int64_t> failures{0};
  const int64_t start = NowNs() + 50000000;
  std::vector<std::thread> threads;
  // One customer's messages go over one connection, in order (Meta sends a
  // number's notifications in order too): connection = customer % connections.
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      Conn conn(dfm_port);
      if (!conn.connected()) {
        std::perror("connect to dfm");
        std::exit(2);
      }
      for (int64_t k = 0; k < total; ++k) {
        const int64_t customer = (k % tenants) * people + (k / tenants) % people;
        if (customer % connections != c) continue;
        const int64_t when = start + k * interval_ns;
        due[static_cast<size_t>(k)] = when;
        const int64_t now = NowNs();
        if (when > now) std::this_thread::sleep_for(std::chrono::nanoseconds(when - now));
        if (conn.RoundTrip(Notification(k, tenants, people, keys)) / 100 != 2) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  const int64_t deadline = NowNs() + static_cast<int64_t>(wait_s * 1e9);
  while (NowNs() < deadline) {
    {
      std::lock_guard<std::mutex> lk(glog.mu);
      if (static_cast<int64_t>(glog.arrived_ns.size()) >= total) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::vector<int64_t> lat;
  int64_t missing = 0, out_of_order = 0;
  {
    std::lock_guard<std::mutex> lk(glog.mu);
    for (int64_t k = measured_from; k < total; ++k) {
      auto it = glog.arrived_ns.find(k);
      if (it == glog.arrived_ns.end()) {
        missing++;
        continue;
      }
      lat.push_back(it->second - due[static_cast<size_t>(k)]);
    }
    for (const auto& [person, seen] : glog.order)
      for (size_t i = 1; i < seen.size(); ++i)
        if (seen[i] < seen[i - 1]) out_of_order++;
  }
  std::vector<int64_t> sorted = lat;
  double p50 = dfm::bench::Percentile(sorted, 50), p99 = dfm::bench::Percentile(sorted, 99);
  double mx = lat.empty() ? 0 : static_cast<double>(*std::max_element(lat.begin(), lat.end())) / 1000.0;
  std::printf(
      "tenants=%d people_per_tenant=%d rate=%.0f/s measured=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
      "missing=%lld duplicates=%lld out_of_order=%lld webhook_failures=%lld tokens=%lld\n",
      tenants, people, rate, lat.size(), p50 / 1000, p99 / 1000, mx / 1000,
      static_cast<long long>(missing), static_cast<long long>(glog.duplicates.load()),
      static_cast<long long>(out_of_order), static_cast<long long>(failures.load()),
      static_cast<long long>(glog.tokens.load()));
  return missing == 0 && failures.load() == 0 ? 0 : 1;
}
