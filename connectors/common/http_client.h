// Outbound HTTP for the connectors: libcurl's multi interface driven by one
// thread of its own, so no actor worker ever waits on a vendor.
//
// Contract: Send() may be called from any thread and returns at once; the
// callback runs exactly once, on the client's thread, with the response or a
// transport error (status 0). It must not block. Destroying the client
// answers every request still in flight with status 0 ("shutting down"),
// on the destroying thread.
//
// What it refuses to do (a transport error, nothing sent): plain http to
// anything but loopback, a header with CR, LF or NUL in it (a vendor's
// token could otherwise add headers of its choosing), and reading a
// response body past max_response_bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace dfm {

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT, DELETE
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int64_t timeout_ms = 10000;
};

struct HttpResponse {
  int status = 0;             // 0: no HTTP answer (see `error`)
  std::string error;          // transport error, when status == 0
  // status 0 and the request never reached the server (the name did not
  // resolve, the connection was refused, TLS did not start, or it was
  // refused before sending): nothing can have been done.
  bool not_sent = false;
  std::map<std::string, std::string> headers;  // lower-case names; last value wins
  std::string body;
  int64_t elapsed_us = 0;

  // The header's value, or empty.
  std::string Header(const std::string& lower_name) const;
};

using HttpCallback = std::function<void(HttpResponse)>;

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual void Send(HttpRequest req, HttpCallback cb) = 0;
};

// Why `req` may not be sent (see above), or empty when it may.
std::string RefusalOf(const HttpRequest& req);
// Whether a URL's host is this machine: 127.0.0.0/8, ::1 or localhost.
bool IsLoopbackUrl(std::string_view url);

// The libcurl implementation. `max_connections_per_host` bounds the
// connections open to one host (keep-alive is used); a request beyond it
// waits inside libcurl for one to free. 0: no bound.
class CurlHttpClient final : public HttpClient {
 public:
  static constexpr size_t kDefaultMaxResponseBytes = 8 << 20;
  explicit CurlHttpClient(int max_connections_per_host = 8,
                          size_t max_response_bytes = kDefaultMaxResponseBytes);
  ~CurlHttpClient() override;
  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  void Send(HttpRequest req, HttpCallback cb) override;

  struct Transfer;  // one request under way (http_client.cc)

 private:
  void Run();
  void StartQueued();
  void Finish(void* easy, int curl_code);

  const size_t max_response_bytes_;
  void* multi_ = nullptr;  // CURLM*
  std::mutex mu_;
  std::deque<std::unique_ptr<Transfer>> queued_;  // guarded by mu_
  std::map<void*, std::unique_ptr<Transfer>> running_;  // client thread only
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The connectors' shared client bounds nothing per host: each connector's
// `concurrency` bounds its requests, and a request handed over must go at
// once. One waiting inside libcurl could not be withdrawn: an opt-out
// cancels a send the connector still holds, not one it handed over, so a
// text queued behind another tenant's requests to the same vendor would go
// to a person who had just opted out.
constexpr int kPushConnectionsPerHost = 0;

// "a=b&c=d" with each part %-escaped (application/x-www-form-urlencoded).
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& params);
// RFC 3986 %-escaping of everything but unreserved characters.
std::string UrlEscape(const std::string& s);

}  // namespace dfm
