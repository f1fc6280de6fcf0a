// Contact-sync benchmark driver (issue 3). It plays both ends around a
// running `dfm serve`:
// - a vendor: a GoHighLevel API stand-in that answers at once (RESTinio, one
//   thread): duplicate search finds nothing, upsert creates, PUT updates. It
//   notes when each contact's write arrives.
// - the other vendor's webhooks: Aloware contact webhooks (Bearer auth), each
//   a new contact with its own phone, sent open loop at a fixed rate over
//   keep-alive connections; latency counts from when each was due.
//
// Reported: webhook due -> upsert received at the vendor, p50/p99/max, for
// the measured window (after a warm-up); with --update, webhooks that change
// the city of contacts created earlier and the count of PUTs that arrive.
//
//   sync_bench --dfm-port P --vendor-port V [--rate 1000] [--seconds 10]
//              [--warmup 2] [--connections 8] [--token T] [--first N]
//              [--update N] [--wait-s 60] [--vendor-only S]
//
// --first: the index of the first phone (so runs do not collide).
// --phone-base B: phone index i is +1 (B + i) (default 2055000000).
// --texts N [--text-stride S]: only send N signed Verity texts, from the
// phones of indices first + j * S, at --rate (issue 36's memory run).
// --vendor-only S: serve as the vendor for S seconds, send nothing.
//
// --optouts N (issue 4): the stand-in also plays Aloware (same port, its
// paths), and while the ordinary load runs, N Verity "STOP" texts (signed
// with --verity-secret) arrive at --optout-rate for contacts created during
// the warm-up. Reported: STOP due -> the last system told (GoHighLevel's
// dndSettings and Aloware's is_dnc both received), p50/p99/max.
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

int64_t phone_base = 2055000000;  // +1 205 500 0000: index 0 (--phone-base)

std::string Phone(int64_t i) { return "+1" + std::to_string(phone_base + i); }

// What the vendor received: upsert arrival time per phone index.
struct VendorLog {
  std::mutex mu;
  std::unordered_map<int64_t, int64_t> upsert_ns;  // index -> first arrival
  // Opt-outs: index -> first arrival of GoHighLevel dndSettings / Aloware is_dnc 1.
  std::unordered_map<int64_t, int64_t> ghl_dnd_ns, alo_dnc_ns;
  std::atomic<int64_t> puts{0}, searches{0}, upserts{0}, alo_writes{0};
};

int64_t IndexOf(std::string_view phone) {
  return phone.size() > 2 ? std::stoll(std::string(phone.substr(2))) - phone_base : -1;
}

auto RunVendor(int port, VendorLog* vlog) {
  using Traits = dfm::HttpTraits;
  auto guard = std::make_shared<dfm::ConnectionGuard>(
      std::make_shared<dfm::PeerConnections>(0, std::vector<std::string>{}));
  return restinio::run_async<Traits>(
      restinio::own_io_context(),
      restinio::server_settings_t<Traits>{}
          .port(static_cast<std::uint16_t>(port))
          .address("127.0.0.1")
          .max_parallel_connections(1024)
          .ip_blocker(guard)
          .connection_state_listener(guard)
          .request_handler([vlog](auto req) {
            std::string target(req->header().path());
            auto method = req->header().method();
            std::string body = "{}";
            int status = 200;
            if (method == restinio::http_method_get() && target == "/contacts/search/duplicate") {
              vlog->searches++;
              body = R"({"contact":null})";
            } else if (method == restinio::http_method_post() && target == "/contacts/upsert") {
              int64_t now = NowNs();
              vlog->upserts++;
              simdjson::dom::parser parser;
              simdjson::dom::element doc;
              std::string_view phone;
              std::string raw(req->body());
              if (!parser.parse(raw).get(doc) && !doc["phone"].get(phone) && phone.size() > 2) {
                int64_t idx = std::stoll(std::string(phone.substr(2))) - phone_base;
                std::lock_guard<std::mutex> lk(vlog->mu);
                vlog->upsert_ns.emplace(idx, now);
                body = R"({"new":true,"contact":{"id":"g)" + std::to_string(idx) + R"("}})";
              } else {
                status = 422;
                body = R"({"statusCode":422,"message":["phone missing"]})";
              }
            } else if (method == restinio::http_method_put() &&
                       target.rfind("/contacts/", 0) == 0) {
              vlog->puts++;
              if (req->body().find("dndSettings") != std::string::npos && target.size() > 11) {
                int64_t now = NowNs();
                std::lock_guard<std::mutex> lk(vlog->mu);
                vlog->ghl_dnd_ns.emplace(std::stoll(target.substr(11)), now);  // "/contacts/g<idx>"
              }
              body = R"({"succeded":true,"contact":{"id":")" + target.substr(10) + R"("}})";
            } else if (method == restinio::http_method_post() && target == "/api/v1/webhook/forms") {
              // Aloware's Lead API: is_dnc 1 is an opt-out arriving.
              int64_t now = NowNs();
              vlog->alo_writes++;
              simdjson::dom::parser parser;
              simdjson::dom::element doc;
              std::string_view phone;
              int64_t dnc = 0;
              std::string raw(req->body());
              if (!parser.parse(raw).get(doc) && !doc["phone_number"].get(phone) &&
                  !doc["is_dnc"].get(dnc) && dnc == 1) {
                std::lock_guard<std::mutex> lk(vlog->mu);
                vlog->alo_dnc_ns.emplace(IndexOf(phone), now);
              }
              body = R"({"message":"Contact updated."})";
            } else if (method == restinio::http_method_get() &&
                       target == "/api/v1/webhook/contact/phone-number") {
              const auto qp = restinio::parse_query(req->header().query());
              std::string phone = qp.has("phone_number")
                                      ? restinio::cast_to<std::string>(qp["phone_number"])
                                      : std::string();
              body = R"({"id":)" + std::to_string(1000000 + IndexOf(phone)) + "}";
            } else {
              status = 404;
            }
            req
                ->create_response(restinio::http_status_line_t{
                    restinio::http_status_code_t{static_cast<std::uint16_t>(status)},
                    status == 200 ? "OK" : "Error"})
                .append_header(restinio::http_field::content_type, "application/json")
                .set_body(body)
                .done();
            return restinio::request_accepted();
          }),
      1);
}


std::string AlowareWebhook(int64_t idx, const std::string& token, const std::string& city,
                           const std::string& updated_at) {
  std::string body = R"({"event":"Contact Updated","body":{"id":)" + std::to_string(1000000 + idx) +
                     R"(,"first_name":"Bench","last_name":"Contact)" + std::to_string(idx) +
                     R"(","phone_number":")" + Phone(idx) + R"(","city":")" + city +
                     R"(","updated_at":")" + updated_at + R"("}})";
  return "POST /webhooks/aloware HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "Authorization: Bearer " +
         token + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// A signed Verity text `text` from phone index `idx`, message id `id`.
std::string VerityText(int64_t idx, const std::string& id, const std::string& text,
                       const dfm::HmacKey& key) {
  std::string body = R"({"eventType":"message.received","messageId":")" + id +
                     R"(","direction":"inbound","from":")" + Phone(idx) +
                     R"(","to":"+12055550100","body":")" + text +
                     R"(","timestamp":"2026-11-21T09:00:00.000Z"})";
  return "POST /webhooks/verity HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "X-Texting-Signature: " +
         dfm::HexEncode(key.Mac(body)) + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

// The command line (the header comment says each flag).
struct Options {
  int dfm_port = 18080, vendor_port = 18191, connections = 8;
  double rate = 1000, seconds = 10, warmup = 2, wait_s = 60, vendor_only = 0;
  int64_t first = 0, update = 0, optouts = 0, texts = 0, text_stride = 1;
  double optout_rate = 10;
  std::string token = "bench-aloware-token", verity_secret = "bench-verity-secret";
};

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--dfm-port") o.dfm_port = std::atoi(v);
    if (a == "--vendor-port") o.vendor_port = std::atoi(v);
    if (a == "--rate") o.rate = std::atof(v);
    if (a == "--seconds") o.seconds = std::atof(v);
    if (a == "--warmup") o.warmup = std::atof(v);
    if (a == "--connections") o.connections = std::atoi(v);
    if (a == "--token") o.token = v;
    if (a == "--first") o.first = std::atoll(v);
    if (a == "--update") o.update = std::atoll(v);
    if (a == "--wait-s") o.wait_s = std::atof(v);
    if (a == "--vendor-only") o.vendor_only = std::atof(v);
    if (a == "--optouts") o.optouts = std::atoll(v);
    if (a == "--optout-rate") o.optout_rate = std::atof(v);
    if (a == "--verity-secret") o.verity_secret = v;
    if (a == "--phone-base") phone_base = std::atoll(v);
    if (a == "--texts") o.texts = std::atoll(v);
    if (a == "--text-stride") o.text_stride = std::atoll(v);
  }
  return o;
}

// --texts N: a Verity text from each of N known contacts (phone indices
// first, first + stride, ...), at --rate; nothing is waited for. The exit
// code.
int SendTexts(const Options& o) {
  std::atomic<int64_t> failed{0};
  const int64_t begin = NowNs(), every = static_cast<int64_t>(1e9 / o.rate);
  std::vector<std::thread> senders;
  for (int t = 0; t < o.connections; ++t) {
    senders.emplace_back([&, t] {
      dfm::HmacKey key(dfm::HmacKey::Digest::kSha256, o.verity_secret);
      Conn c(o.dfm_port);
      for (int64_t j = t; j < o.texts; j += o.connections) {
        int64_t when = begin + j * every, now = NowNs();
        if (when > now) std::this_thread::sleep_for(std::chrono::nanoseconds(when - now));
        if (c.RoundTrip(VerityText(o.first + j * o.text_stride, "bench-text-" + std::to_string(j),
                                   "See you at 3", key)) /
                100 !=
            2)
          failed++;
      }
    });
  }
  for (auto& th : senders) th.join();
  std::printf("texts=%lld sent_in_s=%.1f webhook_failures=%lld\n", static_cast<long long>(o.texts),
              static_cast<double>(NowNs() - begin) / 1e9, static_cast<long long>(failed.load()));
  return failed.load() == 0 ? 0 : 1;
}

// One run's load: the contact webhooks (new contacts, or --update's
// changes), and --optouts' STOPs for contacts of the warm-up meanwhile.
struct Load {
  bool updating = false;
  int64_t total = 0, measured_from = 0;
  std::vector<int64_t> due, stop_due;  // when each was due (ns)
  std::atomic<int64_t> failures{0};
  double send_s = 0;
};

void SendLoad(const Options& o, Load* load) {
  load->updating = o.update > 0;
  load->total = load->updating ? o.update : static_cast<int64_t>((o.warmup + o.seconds) * o.rate);
  load->measured_from = load->updating ? 0 : static_cast<int64_t>(o.warmup * o.rate);
  const int64_t interval_ns = static_cast<int64_t>(1e9 / o.rate);
  load->due.assign(static_cast<size_t>(load->total), 0);
  const int64_t start = NowNs() + 50000000;
  std::vector<std::thread> threads;
  for (int t = 0; t < o.connections; ++t) {
    threads.emplace_back([&, t] {
      Conn c(o.dfm_port);
      if (!c.connected()) {
        std::perror("connect to dfm");
        std::exit(2);
      }
      for (int64_t k = t; k < load->total; k += o.connections) {
        int64_t when = start + k * interval_ns;
        load->due[static_cast<size_t>(k)] = when;
        int64_t now = NowNs();
        if (when > now) std::this_thread::sleep_for(std::chrono::nanoseconds(when - now));
        std::string req =
            load->updating ? AlowareWebhook(o.first + k, o.token, "Updated", "2026-11-21 09:00:00")
                           : AlowareWebhook(o.first + k, o.token, "", "2026-11-21 08:00:00");
        int st = c.RoundTrip(req);
        if (st / 100 != 2) load->failures++;
      }
    });
  }
  // Opt-outs for contacts of the warm-up, while the load runs.
  load->stop_due.assign(static_cast<size_t>(o.optouts), 0);
  if (o.optouts > 0) {
    threads.emplace_back([&] {
      dfm::HmacKey key(dfm::HmacKey::Digest::kSha256, o.verity_secret);
      Conn c(o.dfm_port);
      const int64_t stop_start = start + static_cast<int64_t>(o.warmup * 1e9);
      const int64_t every = static_cast<int64_t>(1e9 / o.optout_rate);
      for (int64_t j = 0; j < o.optouts; ++j) {
        int64_t when = stop_start + j * every;
        load->stop_due[static_cast<size_t>(j)] = when;
        int64_t now = NowNs();
        if (when > now) std::this_thread::sleep_for(std::chrono::nanoseconds(when - now));
        if (c.RoundTrip(VerityText(o.first + j, "bench-stop-" + std::to_string(j), "STOP", key)) /
                100 !=
            2)
          load->failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  load->send_s = static_cast<double>(NowNs() - start) / 1e9;
}

// Waits, up to --wait-s, until every push the load asks for has reached
// the vendor (`puts_before`: its count of PUTs before the load).
void WaitForPushes(const Options& o, const Load& load, VendorLog& vlog, int64_t puts_before) {
  const int64_t deadline = NowNs() + static_cast<int64_t>(o.wait_s * 1e9);
  for (;;) {
    size_t got = 0;
    size_t told = 0;
    if (load.updating) {
      got = static_cast<size_t>(vlog.puts.load() - puts_before);
    } else {
      std::lock_guard<std::mutex> lk(vlog.mu);
      got = vlog.upsert_ns.size();
      for (int64_t j = 0; j < o.optouts; ++j)
        told += vlog.ghl_dnd_ns.count(o.first + j) && vlog.alo_dnc_ns.count(o.first + j);
    }
    if ((got >= static_cast<size_t>(load.total) && told >= static_cast<size_t>(o.optouts)) ||
        NowNs() > deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// STOP due -> both systems told, printed; false when someone was not.
bool ReportOptOuts(const Options& o, const Load& load, VendorLog& vlog) {
  std::vector<int64_t> olat;
  int64_t untold = 0;
  std::lock_guard<std::mutex> lk(vlog.mu);
  for (int64_t j = 0; j < o.optouts; ++j) {
    auto g = vlog.ghl_dnd_ns.find(o.first + j);
    auto a = vlog.alo_dnc_ns.find(o.first + j);
    if (g == vlog.ghl_dnd_ns.end() || a == vlog.alo_dnc_ns.end()) {
      untold++;
      continue;
    }
    olat.push_back(std::max(g->second, a->second) - load.stop_due[static_cast<size_t>(j)]);
  }
  std::printf(
      "optouts=%lld at %.0f/s untold=%lld everyone_told_p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
      static_cast<long long>(o.optouts), o.optout_rate, static_cast<long long>(untold),
      dfm::bench::Percentile(olat, 50) / 1000, dfm::bench::Percentile(olat, 99) / 1000,
      dfm::bench::Percentile(olat, 100) / 1000);
  return untold == 0;
}

// Webhook due -> upsert received, over the measured window, printed; the
// exit code.
int ReportLatency(const Options& o, const Load& load, VendorLog& vlog) {
  std::vector<int64_t> lat;
  int64_t missing = 0;
  {
    std::lock_guard<std::mutex> lk(vlog.mu);
    for (int64_t k = load.measured_from; k < load.total; ++k) {
      auto it = vlog.upsert_ns.find(o.first + k);
      if (it == vlog.upsert_ns.end()) {
        missing++;
        continue;
      }
      lat.push_back(it->second - load.due[static_cast<size_t>(k)]);
    }
  }
  double p50 = dfm::bench::Percentile(lat, 50), p99 = dfm::bench::Percentile(lat, 99),
         max = dfm::bench::Percentile(lat, 100);
  std::printf(
      "rate=%.0f/s measured=%zu missing=%lld webhook_failures=%lld p50_ms=%.2f p99_ms=%.2f "
      "max_ms=%.2f vendor_requests=%lld\n",
      o.rate, lat.size(), static_cast<long long>(missing),
      static_cast<long long>(load.failures.load()), p50 / 1000, p99 / 1000, max / 1000,
      static_cast<long long>(vlog.searches.load() + vlog.upserts.load() + vlog.puts.load()));
  return missing == 0 && load.failures.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  VendorLog vlog;
  auto vendor = RunVendor(o.vendor_port, &vlog);
  if (o.vendor_only > 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(o.vendor_only));
    return 0;
  }
  for (int i = 0; i < 200 && !Ready(o.dfm_port); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (o.texts > 0) return SendTexts(o);
  Load load;
  const int64_t puts_before = vlog.puts.load();
  SendLoad(o, &load);
  WaitForPushes(o, load, vlog, puts_before);
  if (load.updating) {
    std::printf("updates=%lld sent_in_s=%.1f webhook_failures=%lld puts_received=%lld\n",
                static_cast<long long>(load.total), load.send_s,
                static_cast<long long>(load.failures.load()),
                static_cast<long long>(vlog.puts.load() - puts_before));
    return load.failures.load() == 0 && vlog.puts.load() - puts_before >= load.total ? 0 : 1;
  }
  if (o.optouts > 0 && !ReportOptOuts(o, load, vlog)) load.failures++;
  return ReportLatency(o, load, vlog);
}
