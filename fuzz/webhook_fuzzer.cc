// libFuzzer target: one system's webhooks, as untrusted input reaches
// them; the system is the binary's name's (fuzz_webhook_<system>), so one
// object serves every system's target. The input is
//   <header value>\n<body>
// The header value goes to every header the system reads for
// authentication (signature or Authorization); the body is verified,
// identified and mapped into facts, as the front and the router would,
// and mapped again as a stored webhook of each content type. Nothing may
// crash, leak or trip the sanitizers, whatever the answer.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "connectors/connector.h"
#include "sync/normalize.h"

namespace {

using dfm::Connector;

// The system's settings: its defaults, secrets and the keys it needs.
dfm::SystemSettings SettingsOf(const Connector& c) {
  dfm::SystemSettings s;
  for (const auto& spec : c.settings) s[spec.key] = spec.secret ? "fuzz-secret" : spec.default_value;
  const std::string keys = std::string(DFM_SOURCE_DIR) + "/etc/dev-keys/";
  s["ed25519_public_key_file"] = keys + "ghl-ed25519-public.pem";
  s["rsa_public_key_file"] = keys + "ghl-rsa-public.pem";
  s["location_id"] = "loc_fuzz";
  s["auth"] = c.system == "aloware" ? "bearer" : "basic";
  s["username"] = "fuzz";
  s["custom_fields"] = c.system == "halopsa" ? "linkedin_url=CFLinkedIn, industry=CFIndustry" : "";
  s["phone_number_id"] = "106540352242922";  // WhatsApp: the fixture's number
  s["integration_id"] = "int-fuzz";          // Genesys
  s["public_key"] = "+7E99DXiiQXvceNX4nHm3Lbm5mqPWad5RhDr2ufuCik=";  // Telnyx (its SDK's test key)
  s["secret"] = "fuzz-unsubscribe-secret-0123456789abcdef";  // unsubscribe
  return s;
}

std::string fuzzed;  // the system, from the binary's name (LLVMFuzzerInitialize)

struct Target {
  const Connector* connector = nullptr;
  dfm::SystemSettings settings;
  std::unique_ptr<dfm::WebhookSource> source;
  dfm::Normalizer normalizer{"US"};
};

Target& Get() {
  static Target* t = [] {
    auto* out = new Target;
    out->connector = dfm::FindConnector(fuzzed);
    if (!out->connector) __builtin_trap();
    out->settings = SettingsOf(*out->connector);
    std::vector<dfm::SettingProblem> problems;
    if (out->connector->webhook_source) {
      out->source = out->connector->webhook_source(out->settings, &problems);
      if (!out->source) __builtin_trap();  // the settings above must make one
    }
    return out;
  }();
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  const std::string self = *argc > 0 ? (*argv)[0] : "";
  const std::string prefix = "fuzz_webhook_";
  const size_t at = self.rfind(prefix);
  if (at == std::string::npos) __builtin_trap();  // run under another name
  fuzzed = self.substr(at + prefix.size());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Target& t = Get();
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string header = nl == std::string::npos ? "" : input.substr(0, nl);
  const std::string body = nl == std::string::npos ? input : input.substr(nl + 1);

  if (t.source) {
    std::map<std::string, std::string, std::less<>> headers;
    for (const char* h : {"authorization", "x-ghl-signature", "x-wh-signature", "x-texting-signature",
                          "x-twilio-signature", "x-hub-signature-256", "telnyx-signature-ed25519",
                          "telnyx-timestamp"})
      headers[h] = header;
    {  // a subscription handshake: the header line as the query
      dfm::InboundRequest get;
      const std::string target = "/webhooks/" + fuzzed + "?" + header;
      get.target = target;
      get.headers = &headers;
      (void)t.source->Handshake(get);
    }
    for (const char* type : {"application/json", "application/x-www-form-urlencoded"}) {
      dfm::InboundRequest req;
      const std::string target = "/webhooks/" + fuzzed + "?bodySHA256=00&u=" + header;
      req.target = target;
      req.content_type = type;
      req.body = body;
      req.headers = &headers;
      req.public_url = "https://fuzz.example/webhooks/" + fuzzed;
      req.now_us = 1'790'000'000'000'000;
      std::string scheme;
      (void)t.source->AcceptsContentType(type);
      (void)t.source->Verify(req, &scheme);
      dfm::WebhookIdentity id;
      (void)t.source->Identify(req, &id);
    }
  }
  dfm::MapperSettings ms;
  ms.normalizer = &t.normalizer;
  ms.system = &t.settings;
  dfm::WebhookReceived w;
  w.system = fuzzed;
  w.body = body;
  w.public_url = "https://fuzz.example/webhooks/" + fuzzed + "?u=" + header;  // email's token
  w.headers = {{"content-type", "application/json"}};
  std::vector<dfm::ContactFact> facts;
  if (t.connector->map_webhook) (void)t.connector->map_webhook(w, ms, &facts);
  w.headers = {{"content-type", "application/x-www-form-urlencoded"}};
  if (t.connector->map_webhook) (void)t.connector->map_webhook(w, ms, &facts);
  if (t.connector->map_import) (void)t.connector->map_import(w, ms, &facts);
  if (t.connector->describe_webhook) (void)t.connector->describe_webhook(w);
  return 0;
}
