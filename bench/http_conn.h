// A keep-alive HTTP/1.1 client connection with blocking I/O, for the load
// generators (sync_bench, bridge_bench).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace dfm::bench {

// One keep-alive HTTP/1.1 connection with blocking I/O.
class Conn {
 public:
  explicit Conn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  bool connected() const { return connected_; }
  ~Conn() { close(fd_); }

  // Sends the request and reads the answer; returns its status.
  int RoundTrip(const std::string& req) {
    size_t off = 0;
    while (off < req.size()) {
      ssize_t n = send(fd_, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return 0;
      off += static_cast<size_t>(n);
    }
    std::string in;
    char buf[4096];
    size_t header_end = std::string::npos, need = 0;
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return 0;
      in.append(buf, static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = in.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        size_t cl = in.find("ontent-Length:");
        if (cl == std::string::npos) cl = in.find("ontent-length:");
        need = header_end + 4 + (cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 14)));
      }
      if (in.size() >= need) break;
    }
    return std::atoi(in.c_str() + 9);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Whether dfm on `port` answers GET /readyz with 200.
inline bool Ready(int port) {
  Conn c(port);
  return c.connected() && c.RoundTrip("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n") == 200;
}

}  // namespace dfm::bench
