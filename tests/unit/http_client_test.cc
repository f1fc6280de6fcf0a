// The outbound client's refusals (connectors/common/http_client.h), against a
// real server on loopback that counts what reaches it.
#include "connectors/common/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <utility>

#include "tests/support/holding_server.h"

namespace dfm {
namespace {

TEST(HttpClientRefusal, OnlyHttpsOrThisMachineAndNoLineBreaksInHeaders) {
  HttpRequest r;
  for (const char* ok : {"https://services.leadconnectorhq.com/contacts/", "http://127.0.0.1:8091/x",
                         "http://localhost/x", "http://[::1]:80/x", "http://127.9.9.9/"}) {
    r.url = ok;
    EXPECT_EQ(RefusalOf(r), "") << ok;
  }
  for (const char* bad : {"http://services.leadconnectorhq.com/contacts/", "http://127.0.0.1.evil.example/",
                          "http://user@10.0.0.1/", "ftp://127.0.0.1/", "file:///etc/passwd"}) {
    r.url = bad;
    EXPECT_NE(RefusalOf(r), "") << bad;
  }
  r.url = "https://app.aloware.com/api";
  r.headers = {{"Authorization", "Bearer tok\r\nX-Injected: 1"}};
  EXPECT_NE(RefusalOf(r).find("line break"), std::string::npos);
  r.headers = {{"Authorization", std::string("Bearer a\0b", 10)}};
  EXPECT_NE(RefusalOf(r), "");
}

// A server that answers every connection with `response`, counting them.
class OneAnswerServer {
 public:
  explicit OneAnswerServer(std::string response) : response_(std::move(response)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 8);
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        accepted_++;
        char buf[4096];
        recv(c, buf, sizeof(buf), 0);
        size_t sent = 0;
        while (sent < response_.size()) {
          ssize_t n = send(c, response_.data() + sent, response_.size() - sent, MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += static_cast<size_t>(n);
        }
        close(c);
      }
    });
  }
  ~OneAnswerServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/x"; }
  int accepted() const { return accepted_.load(); }

 private:
  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

HttpResponse SendAndWait(HttpClient& client, HttpRequest req) {
  std::promise<HttpResponse> done;
  client.Send(std::move(req), [&done](HttpResponse r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

TEST(CurlHttpClient, ReadsNoMoreOfAResponseThanItsLimitAndSendsNothingRefused) {
  const std::string big(1 << 20, 'x');
  OneAnswerServer server("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                         std::to_string(big.size()) + "\r\nConnection: close\r\n\r\n" + big);
  CurlHttpClient client(4, /*max_response_bytes=*/64 << 10);
  HttpRequest req;
  req.url = server.Url();
  HttpResponse r = SendAndWait(client, req);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("response larger than 65536 bytes"), std::string::npos) << r.error;
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(server.accepted(), 1);

  req.headers = {{"Authorization", "Bearer refreshed\r\nX-Injected: 1"}};  // a vendor's token
  r = SendAndWait(client, req);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("line break"), std::string::npos);
  req.headers.clear();
  req.url = "http://localhost.evil.example:1/x";
  EXPECT_NE(SendAndWait(client, req).error.find("only https"), std::string::npos);
  EXPECT_EQ(server.accepted(), 1) << "nothing refused reached a server";

  CurlHttpClient roomy(4);
  req.url = server.Url();
  r = SendAndWait(roomy, req);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), big.size());
}

// How many of `n` requests to one host are on the wire at once through
// `client` (a server that answers nothing holds each), then how many
// ended once the server went.
std::pair<int, int> OnTheWireAtOnce(CurlHttpClient& client, int n) {
  testing::HoldingServer server;
  auto ended = std::make_shared<std::atomic<int>>(0);  // outlives a late answer
  for (int i = 0; i < n; ++i) {
    HttpRequest req;
    req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/send/" + std::to_string(i);
    req.timeout_ms = 15000;
    client.Send(std::move(req), [ended](HttpResponse) { (*ended)++; });
  }
  const auto settle = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < settle) {
    if (server.held() == n) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int held = server.held();
  server.Close();
  const auto end_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ended->load() < n && std::chrono::steady_clock::now() < end_by)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return {held, ended->load()};
}

TEST(CurlHttpClient, TheConnectorsClientPutsEveryRequestOnTheWireAtOnce) {
  // Six tenants' GoHighLevel connectors at concurrency 4 hand over 24
  // requests to one host: each must be sent, none wait where an opt-out
  // cannot withdraw it (kPushConnectionsPerHost).
  CurlHttpClient pushes(kPushConnectionsPerHost);
  EXPECT_EQ(OnTheWireAtOnce(pushes, 24), std::make_pair(24, 24));
  CurlHttpClient bounded(16);  // as it was: 8 waited inside libcurl
  EXPECT_EQ(OnTheWireAtOnce(bounded, 24).first, 16);
}

}  // namespace
}  // namespace dfm
