// An HttpClient that answers every request at once with `answer` and keeps
// the last request: for testing a vendor client's requests and readings.
#pragma once

#include "connectors/common/http_client.h"

namespace dfm::testing {

class OneAnswerHttp : public HttpClient {
 public:
  HttpRequest sent;
  HttpResponse answer;
  void Send(HttpRequest req, HttpCallback cb) override {
    sent = std::move(req);
    cb(answer);
  }
};

}  // namespace dfm::testing
