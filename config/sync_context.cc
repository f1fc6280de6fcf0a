#include "config/config.h"
#include "connectors/common/mapper.h"
#include "sync/contact_model.h"

namespace dfm {

MapperSettings MapperSettingsFrom(const SyncSettings& s, const Normalizer* normalizer) {
  MapperSettings m;
  m.normalizer = normalizer;
  m.aloware_contact_events = s.aloware_contact_events;
  m.aloware_utc_offset_us = s.aloware_utc_offset_minutes * 60 * 1000000;
  return m;
}

SyncContext SyncContextFor(const Config& config, const std::string& tenant) {
  const SyncSettings& ss = config.sync();
  SyncContext ctx;
  ctx.policy = MergePolicyFrom(ss);
  ctx.tag_lists = ss.tag_lists;
  ctx.disposition_tag_prefix = ss.disposition_tag_prefix;
  ctx.redrive_max_text_age_us = ss.redrive_max_text_age_us();
  for (const auto& t : config.tenants()) {
    if (!tenant.empty() && t != tenant) continue;
    for (const auto& [system, settings] : config.Systems(t)) {
      const OutboundFactory* f = FindOutbound(system);
      if (!f || !f->enabled(settings)) continue;
      ctx.targets[system] = std::set<std::string>(f->accepted_fields.begin(), f->accepted_fields.end());
      ctx.channels[system] = std::set<std::string>(f->consent_channels.begin(), f->consent_channels.end());
      if (f->consent_one_flag) ctx.one_flag.insert(system);
      if (!f->key_field.empty()) ctx.key_field[system] = f->key_field;
      if (system == ctx.conversations && settings.at("conversation_provider_id").empty())
        ctx.conversations.clear();  // GoHighLevel takes no texts or calls without a provider
    }
  }
  return ctx;
}

}  // namespace dfm
