#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>

#include "connectors/connector.h"
#include "events/webhook_received.h"

namespace dfm {

// connectors/CMakeLists.txt generates it from its one list.
const std::vector<const Connector*>& BuiltinConnectors();

namespace {

std::vector<const Connector*>& Registered() {
  static std::vector<const Connector*> extra;
  return extra;
}

// `c` with a "<key>_previous" setting for each of its webhook secrets
// (PreviousSecretKey).
Connector WithPreviousSecrets(const Connector& c) {
  Connector out = c;
  for (const auto& key : c.webhook_secret_keys) {
    SettingSpec spec;
    spec.key = PreviousSecretKey(key);
    spec.secret = true;
    spec.help = "the " + key + " before the last rotation: accepted beside it until removed (docs/operations.md)";
    out.settings.push_back(std::move(spec));
  }
  return out;
}

// Takes what either source verifies (a secret's rotation overlap); every
// other question is the current source's.
class EitherSecretSource : public WebhookSource {
 public:
  EitherSecretSource(std::unique_ptr<WebhookSource> current, std::unique_ptr<WebhookSource> previous)
      : current_(std::move(current)), previous_(std::move(previous)) {}
  bool AcceptsContentType(std::string_view media_type) const override {
    return current_->AcceptsContentType(media_type);
  }
  Status Verify(const InboundRequest& req, std::string* scheme) const override {
    Status s = current_->Verify(req, scheme);
    if (s.ok() || !previous_->Verify(req, scheme).ok()) return s;
    *scheme += "+previous-secret";
    return Status::OK();
  }
  Status Identify(const InboundRequest& req, WebhookIdentity* id) const override {
    return current_->Identify(req, id);
  }
  const std::vector<std::string_view>& HeadersToRecord() const override { return current_->HeadersToRecord(); }
  // The current source's answer, unless it refuses and the previous one's
  // does not (an unsubscribe link minted before the rotation).
  std::optional<HandshakeAnswer> Handshake(const InboundRequest& req) const override {
    auto a = current_->Handshake(req);
    if (!a || a->status < 400) return a;
    auto b = previous_->Handshake(req);
    return b && b->status < 400 ? b : a;
  }
  std::optional<std::string> TenantKey(std::string_view body) const override { return current_->TenantKey(body); }
  bool SignsUrl() const override { return current_->SignsUrl(); }
  bool UrlBindsTenant() const override { return current_->UrlBindsTenant(); }
  int UnavailableStatus() const override { return current_->UnavailableStatus(); }
  std::shared_ptr<const HandshakeAnswer> RecordedAnswer() const override {
    return current_->RecordedAnswer();
  }

 private:
  std::unique_ptr<WebhookSource> current_, previous_;
};

}  // namespace

std::unique_ptr<WebhookSource> MakeWebhookSource(const Connector& c, const SystemSettings& settings,
                                                 std::vector<SettingProblem>* problems) {
  if (!c.webhook_source) return nullptr;
  auto current = c.webhook_source(settings, problems);
  if (!current) return nullptr;
  SystemSettings before = settings;
  bool rotating = false;
  for (const auto& key : c.webhook_secret_keys) {
    auto prev = settings.find(PreviousSecretKey(key));
    if (prev == settings.end() || prev->second.empty()) continue;
    before[key] = prev->second;
    rotating = true;
  }
  if (!rotating) return current;
  std::vector<SettingProblem> ignored;  // the previous secret's own checks: the current one's already passed
  auto previous = c.webhook_source(before, &ignored);
  if (!previous) return current;
  return std::make_unique<EitherSecretSource>(std::move(current), std::move(previous));
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kConversations: return "conversations";
    case Role::kSender: return "sender";
    case Role::kLists: return "lists";
    case Role::kEnrichment: return "enrichment";
    case Role::kClassifier: return "classifier";
    case Role::kMailer: return "mailer";
    case Role::kDialer: return "dialer";
  }
  return "";
}

const std::vector<Role>& AllRoles() {
  static const std::vector<Role> kAll = {Role::kConversations, Role::kSender, Role::kLists,
                                             Role::kEnrichment, Role::kClassifier,
                                             Role::kMailer, Role::kDialer};
  return kAll;
}

bool Connector::CanPlay(Role r) const {
  return std::find(roles.begin(), roles.end(), r) != roles.end();
}

const std::vector<const Connector*>& Connectors() {
  // Built once, on first use: RegisterConnector must come before it.
  static const std::vector<const Connector*> kAll = [] {
    static std::deque<Connector> rotating;  // the connectors as served, for the process's life
    std::vector<const Connector*> all;
    for (const Connector* c : BuiltinConnectors()) all.push_back(&rotating.emplace_back(WithPreviousSecrets(*c)));
    for (const Connector* c : Registered()) all.push_back(&rotating.emplace_back(WithPreviousSecrets(*c)));
    return all;
  }();
  return kAll;
}

std::string PreviousSecretKey(std::string_view key) { return std::string(key) + "_previous"; }

void RegisterConnector(const Connector* connector) { Registered().push_back(connector); }

const Connector* FindConnector(std::string_view system) {
  for (const Connector* c : Connectors())
    if (c->system == system) return c;
  return nullptr;
}

std::string ConnectorSystems() {
  std::string out;
  for (const Connector* c : Connectors()) out += (out.empty() ? "" : ", ") + c->system;
  return out;
}

std::string ConnectorNames() {
  std::string out;
  const auto& all = Connectors();
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) out += i + 1 == all.size() ? " and " : ", ";
    out += all[i]->name;
  }
  return out;
}

const InboundMapper* FindMapperFor(std::string_view event_type, std::string_view system) {
  const Connector* c = FindConnector(system);
  if (c == nullptr) return nullptr;
  const InboundMapper* m = event_type == WebhookReceived::kType   ? &c->map_webhook
                           : event_type == kContactImportedType ? &c->map_import
                                                                : nullptr;
  return m != nullptr && *m ? m : nullptr;
}

}  // namespace dfm
