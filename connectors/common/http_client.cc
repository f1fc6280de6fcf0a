#include "connectors/common/http_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>

#include <chrono>

#include "util/strings.h"

namespace dfm {

std::string HttpResponse::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

struct CurlHttpClient::Transfer {
  HttpRequest req;
  HttpCallback cb;
  HttpResponse resp;
  size_t max_bytes = 0;
  bool too_large = false;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  std::chrono::steady_clock::time_point started;

  ~Transfer() {
    if (header_list) curl_slist_free_all(header_list);
    if (easy) curl_easy_cleanup(easy);
  }
};

namespace {

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<CurlHttpClient::Transfer*>(user);
  if (t->resp.body.size() + size * n > t->max_bytes) {
    t->too_large = true;
    return 0;  // libcurl stops with CURLE_WRITE_ERROR
  }
  t->resp.body.append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  std::string_view line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(TrimSpace(line.substr(0, colon)));
    AsciiLowerInPlace(&name);
    static_cast<HttpResponse*>(user)->headers[name] = std::string(TrimSpace(line.substr(colon + 1)));
  }
  return size * n;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

bool IsLoopbackUrl(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return false;
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  rest = rest.substr(rest.find('@') == std::string_view::npos ? 0 : rest.find('@') + 1);
  std::string host;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return false;
    host = std::string(rest.substr(1, close - 1));
  } else {
    host = std::string(rest.substr(0, rest.find(':')));
  }
  AsciiLowerInPlace(&host);
  if (host == "localhost" || host == "::1") return true;
  unsigned char v4[4];
  return inet_pton(AF_INET, host.c_str(), v4) == 1 && v4[0] == 127;
}

std::string RefusalOf(const HttpRequest& req) {
  const bool https = req.url.rfind("https://", 0) == 0;
  const bool http = req.url.rfind("http://", 0) == 0;
  if (!https && !(http && IsLoopbackUrl(req.url)))
    return "refused: only https:// (plain http:// only to this machine)";
  auto bad = [](const std::string& s) { return s.find_first_of(std::string("\r\n\0", 3)) != std::string::npos; };
  for (const auto& [k, v] : req.headers) {
    if (k.empty() || bad(k) || bad(v) || k.find(':') != std::string::npos)
      return "refused: header " + (bad(k) ? std::string("name") : k) + " holds a line break";
  }
  return "";
}

CurlHttpClient::CurlHttpClient(int max_connections_per_host, size_t max_response_bytes)
    : max_response_bytes_(max_response_bytes) {
  static CurlGlobal global;  // once per process, before the first handle
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(max_connections_per_host));
  thread_ = std::thread([this] { Run(); });
}

CurlHttpClient::~CurlHttpClient() {
  stop_ = true;
  curl_multi_wakeup(multi_);
  thread_.join();
  // Answer whatever is left, so every callback runs exactly once.
  for (auto& [easy, t] : running_) {
    curl_multi_remove_handle(multi_, t->easy);
    t->resp.status = 0;
    t->resp.error = "shutting down";
    t->cb(std::move(t->resp));
  }
  running_.clear();
  for (auto& t : queued_) {
    t->resp.error = "shutting down";
    t->cb(std::move(t->resp));
  }
  queued_.clear();
  curl_multi_cleanup(multi_);
}

void CurlHttpClient::Send(HttpRequest req, HttpCallback cb) {
  auto t = std::make_unique<Transfer>();
  t->req = std::move(req);
  t->cb = std::move(cb);
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_.push_back(std::move(t));
  }
  curl_multi_wakeup(multi_);
}

void CurlHttpClient::StartQueued() {
  std::deque<std::unique_ptr<Transfer>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(queued_);
  }
  for (auto& t : batch) {
    const std::string refusal = RefusalOf(t->req);
    if (!refusal.empty()) {
      t->resp.error = refusal;
      t->resp.not_sent = true;
      t->cb(std::move(t->resp));
      continue;
    }
    t->max_bytes = max_response_bytes_;
    t->easy = curl_easy_init();
    CURL* e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->req.url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(t->req.timeout_ms));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<int64_t>(t->req.timeout_ms, 5000)));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t->resp);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    if (t->req.method == "GET") {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->req.method.c_str());
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->req.body.data());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(t->req.body.size()));
    }
    t->header_list = curl_slist_append(t->header_list, "Expect:");
    for (const auto& [k, v] : t->req.headers)
      t->header_list = curl_slist_append(t->header_list, (k + ": " + v).c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->header_list);
    t->started = std::chrono::steady_clock::now();
    curl_multi_add_handle(multi_, e);
    running_[e] = std::move(t);
  }
}

void CurlHttpClient::Finish(void* easy, int curl_code) {
  auto it = running_.find(easy);
  if (it == running_.end()) return;
  std::unique_ptr<Transfer> t = std::move(it->second);
  running_.erase(it);
  curl_multi_remove_handle(multi_, t->easy);
  t->resp.elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - t->started)
                           .count();
  if (curl_code == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    t->resp.status = static_cast<int>(status);
  } else {
    t->resp.status = 0;
    t->resp.not_sent = curl_code == CURLE_COULDNT_RESOLVE_HOST || curl_code == CURLE_COULDNT_RESOLVE_PROXY ||
                       curl_code == CURLE_COULDNT_CONNECT || curl_code == CURLE_SSL_CONNECT_ERROR;
    t->resp.error = t->too_large ? "response larger than " + std::to_string(t->max_bytes) +
                                       " bytes: not read"
                                 : curl_easy_strerror(static_cast<CURLcode>(curl_code));
    if (t->too_large) t->resp.body.clear();
  }
  t->cb(std::move(t->resp));
}

void CurlHttpClient::Run() {
  while (!stop_) {
    StartQueued();
    int still = 0;
    curl_multi_perform(multi_, &still);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
      if (m->msg == CURLMSG_DONE) Finish(m->easy_handle, m->data.result);
    }
    curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
  }
}

std::string UrlEscape(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += "&";
    out += UrlEscape(k) + "=" + UrlEscape(v);
  }
  return out;
}

}  // namespace dfm
