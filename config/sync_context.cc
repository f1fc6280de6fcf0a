#include "config/config.h"
#include "connectors/connector.h"
#include "sync/contact_model.h"

namespace dfm {

MapperSettings MapperSettingsFor(const Config& config, const Normalizer* normalizer,
                                 const std::string& tenant, const std::string& system) {
  MapperSettings m;
  m.normalizer = normalizer;
  const auto& systems = config.Systems(tenant);
  if (auto it = systems.find(system); it != systems.end()) m.system = &it->second;
  return m;
}

SyncContext SyncContextFor(const Config& config, const std::string& tenant) {
  const SyncSettings& ss = config.sync();
  SyncContext ctx;
  ctx.policy = MergePolicyFrom(ss);
  ctx.tag_lists = ss.tag_lists;
  ctx.disposition_tag_prefix = ss.disposition_tag_prefix;
  ctx.redrive_max_text_age_us = ss.redrive_max_text_age_us();
  ctx.staff_opt_outs_hold = config.StaffOptOutsHold(tenant);
  ctx.reply_window_us = ss.yes_reply_window_h * 3600 * 1000000;
  ctx.message_memory_us = ss.message_memory_days * 86400 * 1000000;
  ctx.fold_plus_addressing = ss.fold_plus_addressing;
  ctx.enrich_again_us = ss.enrich_again_days * 86400 * 1000000;
  ctx.conversations = config.RoleOf(tenant, RoleName(Role::kConversations));
  ctx.sender = config.RoleOf(tenant, RoleName(Role::kSender));
  ctx.lists_target = config.RoleOf(tenant, RoleName(Role::kLists));
  for (const auto& t : config.tenants()) {
    if (!tenant.empty() && t != tenant) continue;
    for (const auto& [system, settings] : config.Systems(t)) {
      const Connector* c = FindConnector(system);
      if (!c || !c->client || !c->outbound_enabled(settings)) continue;
      if (system == config.RoleOf(tenant, RoleName(Role::kEnrichment)) && !tenant.empty())
        ctx.enrichment = system;
      if (system == config.RoleOf(tenant, RoleName(Role::kClassifier)) && !tenant.empty())
        ctx.classifier = system;
      if (system == config.RoleOf(tenant, RoleName(Role::kMailer)) && !tenant.empty())
        ctx.mailer = system;
      if (system == config.RoleOf(tenant, RoleName(Role::kDialer)) && !tenant.empty())
        ctx.dialer = system;
      if (c->accepted_fields.empty()) continue;  // holds no contacts: no target
      ctx.targets[system] = std::set<std::string>(c->accepted_fields.begin(), c->accepted_fields.end());
      const bool holds = c->holds_contacts && (!c->contacts_enabled || c->contacts_enabled(settings));
      if (holds)
        ctx.channels[system] = std::set<std::string>(c->consent_channels.begin(), c->consent_channels.end());
      else
        ctx.channels[system];  // keeps no consent
      if (c->consent_one_flag) ctx.one_flag.insert(system);
      if (c->reads_consent && holds) ctx.reads_consent.insert(system);
      if (c->marks_dnc && holds) ctx.marks_dnc.insert(system);
      if (!c->marks_dnc) ctx.takes_no_marks.insert(system);
      if (!c->key_field.empty()) ctx.key_field[system] = c->key_field;
      if (!holds) ctx.messages_only.insert(system);
      if (c->takes_receipts) ctx.takes_receipts.insert(system);
      if (system == ctx.conversations && c->role_unavailable &&
          !c->role_unavailable(Role::kConversations, settings).empty())
        ctx.conversations.clear();  // it records no texts or calls with these settings
    }
  }
  return ctx;
}

}  // namespace dfm
