#include "cluster/tls_probe.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <memory>

namespace dfm {
namespace {

// A TCP connection to host:port with send and receive timeouts; -1 when
// none could be made.
int Dial(const std::string& host, const std::string& port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  return fd;
}

// Reads the server's first line; true when it is NATS's INFO.
bool ReadInfo(int fd) {
  std::string line;
  char c = 0;
  while (line.size() < 64 * 1024 && read(fd, &c, 1) == 1) {
    if (c == '\n') return line.rfind("INFO ", 0) == 0;
    line.push_back(c);
  }
  return false;
}

}  // namespace

Status ProbeNatsTls(const std::string& url, const std::string& ca_file, int timeout_ms) {
  const size_t scheme = url.find("://");
  std::string hostport = scheme == std::string::npos ? url : url.substr(scheme + 3);
  const size_t colon = hostport.rfind(':');
  std::string host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
  const std::string port = colon == std::string::npos ? "4222" : hostport.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const int fd = Dial(host, port, timeout_ms);
  if (fd < 0) return Status::Unavailable("could not reach " + url);
  std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* f) { close(*f); delete f; });
  if (!ReadInfo(fd)) return Status::Unavailable(url + " did not answer as a NATS server");
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx || SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
    return Status::InvalidArgument("cannot read the CA store " + ca_file);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  std::unique_ptr<SSL, void (*)(SSL*)> ssl(SSL_new(ctx.get()), SSL_free);
  in6_addr ip{};
  const bool literal = inet_pton(AF_INET, host.c_str(), &ip) == 1 || inet_pton(AF_INET6, host.c_str(), &ip) == 1;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (literal) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
  SSL_set_fd(ssl.get(), fd);
  if (SSL_connect(ssl.get()) == 1) return Status::OK();
  const long verify = SSL_get_verify_result(ssl.get());
  if (verify != X509_V_OK)
    return Status::InvalidArgument(std::string("its certificate does not verify against ") + ca_file + " (" +
                                   X509_verify_cert_error_string(verify) + ")");
  char why[256] = "";
  ERR_error_string_n(ERR_get_error(), why, sizeof why);
  return Status::Unavailable(url + ": TLS handshake failed (" + why + ")");
}

}  // namespace dfm
