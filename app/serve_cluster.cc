#include "app/serve_cluster.h"

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <set>
#include <vector>

#include "app/backfill_jobs.h"
#include "app/cluster_erase.h"
#include "app/erase.h"
#include "app/reconcile_schedule.h"
#include "app/serve_common.h"
#include "app/shared_control.h"
#include "app/sync_runtime.h"
#include "cluster/node.h"
#include "cluster/records_store.h"
#include "cluster/security.h"
#include "cluster/wire.h"
#include "connectors/connector.h"
#include "console/cluster_status.h"
#include "console/remote_read.h"
#include "console/shared_keys.h"
#include "http/server.h"
#include "util/admin_token.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/logging.h"

namespace dfm {

namespace {

// The sync runtime of one partition (cluster mode), folding the pauses
// and limits every node shares into its control from the start, and the
// partition's daily reconcile (reconcile.daily_at).
class PartitionSync : public PartitionWork {
 public:
  PartitionSync(std::unique_ptr<SyncRuntime> rt, SharedControl* shared, const Config* config,
                EventLog* log, std::function<bool(const std::string&)> runs)
      : rt_(std::move(rt)), shared_(shared), config_(config), log_(log), runs_(std::move(runs)),
        reconcile_(*config, log, [] { return SystemClock::Instance()->NowMicros(); }, runs_) {
    reconcile_.Start();
    if (!rt_->control()) return;  // [sync] off
    SyncRuntime* r = rt_.get();
    subscription_ = shared_->Subscribe([r](const std::vector<Event>& events) {
      for (const auto& e : events) r->control()->Apply(e);
      r->WakeConnectors();
    });
  }
  ~PartitionSync() override { Unsubscribe(); }
  void Reload(const Config& config) override {
    config_.store(&config);
    rt_->Reload(config);
    reconcile_.Reload(config);
  }
  void Stop() override {
    reconcile_.Stop();
    Unsubscribe();
    rt_->Stop();
  }
  uint64_t Behind(uint64_t last_seq) const override { return rt_->Behind(last_seq); }
  std::function<DecidedView()> DecidedSource() const override { return rt_->DecidedSource(); }
  void WriteMetrics(uint64_t last_seq, MetricsText* out) const override { rt_->WriteMetrics(last_seq, out); }
  // The backfills of the partition's tenants run here (app/backfill_jobs.h).
  bool Answer(const std::string& request, std::function<void(std::string)>* reply) override {
    RemoteRead r;
    BackfillAsk ask;
    if (!DecodeRemoteRead(request, &r) || !DecodeBackfillRequest(r, &ask)) return false;
    std::string json;
    Status s = runs_(r.tenant) ? AnswerBackfill(rt_->backfills(), *config_.load(), r.tenant, ask, &json)
                               : Status::Unavailable("this partition does not hold tenant '" + r.tenant + "'");
    (*reply)(EncodeBackfillAnswer(s, json));
    return true;
  }
  std::string StatusText(uint64_t last_seq) const override {
    PartitionStatus s;
    rt_->StatusSnapshot(last_seq, &s.connectors, &s.engine);
    SetLogState(log_->Health(), &s.engine);
    std::vector<std::string> tenants;
    for (const auto& t : config_.load()->tenants())
      if (runs_(t)) tenants.push_back(t);
    CollectAttention(*log_, tenants, &s.attention, &s.attention_total, &s.attention_by_tenant);
    CollectCampaigns(*log_, tenants, &s.engine.campaigns);
    return EncodePartitionStatus(s);
  }

 private:
  void Unsubscribe() {
    if (subscription_) shared_->Unsubscribe(subscription_);
    subscription_ = 0;
  }
  std::unique_ptr<SyncRuntime> rt_;
  SharedControl* shared_;
  std::atomic<const Config*> config_;  // as last reloaded
  const EventLog* log_;
  std::function<bool(const std::string&)> runs_;
  ReconcileSchedule reconcile_;
  int subscription_ = 0;
};

// The status page's view of the whole cluster: every partition's
// connectors and conflicts as their nodes last told this one.
// The front's backfill handler on a cluster node: asks the node of the
// tenant's partition, where its log and connectors are (PartitionSync::
// Answer), and waits for its answer (a start or a list: quick).
BackfillHandler AskClusterBackfill(ClusterNode* node) {
  return [node](const std::string& tenant, const BackfillAsk& ask, std::string* json) -> Status {
    auto done = std::make_shared<std::promise<std::pair<Status, std::string>>>();
    auto got = done->get_future();
    node->AskRead(
        tenant, EncodeRemoteRead(BackfillRequest(tenant, ask)),
        [done](Status s, std::string a) { done->set_value({std::move(s), std::move(a)}); }, 10000);
    auto [s, text] = got.get();
    if (!s.ok()) return Status::Unavailable(s.message());  // no owner now, or no answer
    Status answered;
    if (!DecodeBackfillAnswer(text, &answered, json))
      return Status::Unavailable("the partition's node answered what this node cannot read");
    return answered;
  };
}

void ClusterStatus(const Config& config, const ClusterNode& node,
                   std::vector<ConnectorSnapshot>* connectors, EngineSnapshot* engine,
                   std::vector<AttentionItem>* attention, uint64_t* attention_total,
                   const std::string& tenant = std::string(kAllTenants)) {
  const auto n = static_cast<uint32_t>(config.cluster().partitions);
  std::vector<PartitionAnswer> answers;
  for (const auto& part : node.PartitionStatuses()) {
    PartitionAnswer a;
    a.partition = part.partition;
    a.owner = part.owner;
    a.status = part.status;
    a.starting = part.starting;
    for (const auto& t : config.tenants())
      a.tenants += (tenant == kAllTenants || t == tenant) && PartitionOf(t, n) == part.partition;
    answers.push_back(std::move(a));
  }
  MergePartitionStatuses(answers, connectors, engine, attention, attention_total, tenant);
}

// GET /v1/health's services of the whole cluster: each connected system
// as its partition's node last said, "unknown" where that node said
// nothing (no node runs the partition, or it does not answer).
void ClusterServices(const Config& config, const ClusterNode& node, JsonObject* services) {
  const auto n = static_cast<uint32_t>(config.cluster().partitions);
  const int64_t now = SystemClock::Instance()->NowMicros();
  for (const auto& part : node.PartitionStatuses()) {
    PartitionStatus s;
    if (!part.status.empty() && DecodePartitionStatus(part.status, &s)) {
      for (const auto& c : s.connectors) services->Str(c.tenant + "/" + c.system, ServiceState(c, now));
      continue;
    }
    for (const auto& t : config.tenants()) {
      if (PartitionOf(t, n) != part.partition) continue;
      for (const auto& [system, settings] : config.Systems(t)) {
        const Connector* c = FindConnector(system);
        if (c && c->client && c->outbound_enabled(settings)) services->Str(t + "/" + system, "unknown");
      }
    }
  }
}

// The page's sign-ins hold on every node: their secret is derived from
// cluster.state_key, which every node has and NATS never sees. Without it
// a sign-in holds on the node that made it (warned).
void SharePageSessions(const Config& config, HttpFront* front) {
  auto key = HexDecode(config.cluster().state_key);
  if (!key || key->empty()) {
    Logger("main")->warn("event=sessions_not_shared reason=\"cluster.state_key is not set: a status page "
                         "sign-in holds on the node that made it\"");
    return;
  }
  const std::string mac = HmacKey(HmacKey::Digest::kSha256, *key).Mac("dfm status page sessions v1");
  front->SetSessionSecret(HexEncode(mac));
}

// The NATS buckets a cluster's fronts share (docs/scale-out.md): false,
// logged, when one cannot be opened.
bool OpenFrontBuckets(const Config& config, std::shared_ptr<CasStore>* keys,
                      std::shared_ptr<CasStore>* control, std::shared_ptr<CasStore>* limits) {
  const ClusterSettings& cs = config.cluster();
  const std::string node = cs.node_id.empty() ? "node" : cs.node_id;
  const int replicas = static_cast<int>(cs.replicas);
  Status s = OpenBucketStore(kKeysBucket, cs.nats_urls, node, NatsSecurityOf(cs), replicas, keys);
  if (s.ok())
    s = OpenBucketStore(kControlBucket, cs.nats_urls, node, NatsSecurityOf(cs), replicas, control);
  if (s.ok())  // a minute's window, kept a minute past its end
    s = OpenBucketStore(kLimitsBucket, cs.nats_urls, node, NatsSecurityOf(cs), replicas, limits, /*ttl_s=*/120);
  if (!s.ok()) Logger("main")->critical("event=cluster_join_failed error=\"{}\"", s.ToString());
  return s.ok();
}

// GET /metrics (this node's) and ?scope=cluster (every node's), and the
// alert mailer (docs/alerts.md): every node evaluates the cluster's
// metrics, one mails (ClusterNode::MailsAlerts). *alerter: null when
// [alerts] is off, else started; it outlives the front's scrapes.
void ServeClusterMetrics(const Config& config, ClusterNode* node, HttpFront* front,
                         std::unique_ptr<Alerter>* alerter) {
  front->SetMetricsParts([node, alerter](uint64_t, MetricsText* out) {
    node->WriteMetrics(out);
    WriteAlerterMetrics(alerter->get(), out);
  });
  front->SetClusterMetrics([node] { return node->ClusterMetrics(); });
  *alerter = StartAlerter(config, [node] { return node->ClusterMetrics(); });
  if (*alerter) {
    const auto partitions = static_cast<uint32_t>(config.cluster().partitions);
    (*alerter)->SetCluster([node] { return node->MailsAlerts(); },
                           [partitions](const std::string& tenant) {
                             return PartitionOf(tenant, partitions);
                           },
                           node->id());
    (*alerter)->Start();
  }
  // Once the alerter is in place: the observer scrapes from now on.
  node->ShareMetrics([front] { return front->ScrapeMetrics(); });
}

// Joins the cluster: each partition this node comes to hold runs the
// sync (PartitionSync), the log's erasures destroyed again first.
Status JoinCluster(const Config& config, std::shared_ptr<SharedControl> shared_control,
                   std::unique_ptr<ClusterNode>* node) {
  return ClusterNode::Start(
      config,
      [shared_control](const Config& now, EventLog* log,
                       std::function<bool(const std::string&)> runs, const SharedWithWork& shared,
                       std::unique_ptr<PartitionWork>* out) {
        if (shared.keys) {  // what the log says was erased, destroyed again (app/erase.h)
          uint64_t reapplied = 0;
          Status es = ApplyErasures(log, shared.keys, &reapplied);
          if (!es.ok()) return es;
          if (reapplied > 0)
            Logger("main")->warn("event=erasures_applied_again count={}", reapplied);
        }
        std::unique_ptr<SyncRuntime> rt;
        // The shared pauses as of now, before its connectors re-drive what
        // they hold (PartitionSync folds every later one). Not read now
        // (NATS unreachable), those seen last, as the console's.
        if (Status polled = shared_control->Poll(); !polled.ok())
          Logger("cluster")->warn("event=shared_control_unread error=\"{}\"", polled.ToString());
        Status st = SyncRuntime::Start(
            now, log, &rt, runs, shared.keys ? shared.keys->HashKey() : "", shared.records,
            shared.replicate_state, shared_control->Seen(), shared.cancel);
        if (st.ok())
          *out =
              std::make_unique<PartitionSync>(std::move(rt), shared_control.get(), &now, log, runs);
        return st;
      },
      node);
}

// Reads from any node: asked of, and answered by, the partitions' nodes;
// erasures too, run where the partition's log and keys are (on *eraser,
// while it is there).
void ServeClusterReads(ClusterNode* node, HttpFront* front, std::atomic<const Config*>* live,
                       const std::unique_ptr<Worker>* eraser) {
  front->SetRemoteReads([node](const std::string& tenant, std::string request,
                               std::function<void(Status, std::string)> done) {
    node->AskRead(tenant, std::move(request), std::move(done));
  });
  node->ServeReads([front, live, eraser](const ServedLog& at, std::string request,
                                         std::function<void(std::string)> reply) {
    RemoteRead erase;
    if (DecodeRemoteRead(request, &erase) && erase.route == kEraseRoute) {
      // No answer read before an erasure gives the person out after it.
      reply = [front, tenant = erase.tenant, reply = std::move(reply)](std::string a) {
        front->DropParkedAnswers(tenant);
        reply(std::move(a));
      };
    }
    if (AnswerClusterErase(*live, eraser->get(), at, request, &reply)) return;
    if (at.work && at.work->Answer(request, &reply)) return;
    front->AnswerRemoteRead(*at.log, std::move(request), std::move(reply));
  });
  front->SetEraseHandler(AskClusterErase(node));
  front->SetBackfillHandler(AskClusterBackfill(node));
}

// The console's pause and resume, shared by every node: held once every
// live node, every node running a partition, and this one have it.
void ShareSyncControl(ClusterNode* node, std::shared_ptr<SharedControl> shared_control,
                      std::shared_ptr<SyncControl> console_control, HttpFront* front) {
  SyncControlHooks hooks;
  hooks.control = std::move(console_control);
  hooks.share = [shared_control](const Event& e, uint64_t* count) {
    return shared_control->Publish(e, count);  // held once acked up to its number
  };
  hooks.waiting = [shared_control, node](uint64_t count, std::vector<std::string>* nodes,
                                         std::vector<std::string>* waiting) {
    const std::vector<std::string> heartbeats = node->LiveNodes();
    std::set<std::string> all(heartbeats.begin(), heartbeats.end());
    all.insert(node->id());
    for (const auto& p : node->PartitionStatuses())
      if (!p.owner.empty()) all.insert(p.owner);
    nodes->assign(all.begin(), all.end());
    return shared_control->Waiting(*nodes, count, waiting);
  };
  front->SetSyncControl(std::move(hooks));
}

// /v1/health, the status page and its attention list, for the whole
// cluster, with the tenants and systems a reload put in place (`live`).
void ShowClusterStatus(ClusterNode* node, HttpFront* front, std::atomic<const Config*>* live) {
  front->SetHealthParts([node](uint64_t, JsonObject* parts) { node->AddHealthParts(parts); });
  front->SetHealthServices(
      [live, node](JsonObject* services) { ClusterServices(*live->load(), *node, services); });
  front->SetStatusSource([live, node](const std::string& tenant,
                                      std::vector<ConnectorSnapshot>* connectors,
                                      EngineSnapshot* engine) {
    std::vector<AttentionItem> attention;
    uint64_t total = 0;
    ClusterStatus(*live->load(), *node, connectors, engine, &attention, &total, tenant);
  });
  front->SetAttentionSource([live, node](const std::string& tenant,
                                         std::vector<AttentionItem>* attention, uint64_t* total) {
    std::vector<ConnectorSnapshot> connectors;
    EngineSnapshot engine;
    ClusterStatus(*live->load(), *node, &connectors, &engine, attention, total, tenant);
  });
}

}  // namespace

int ServeCluster(const Config& config, const std::string& config_path) {
  auto logger = Logger("main");
  std::shared_ptr<CasStore> keys_bucket, control_bucket, limits_bucket;
  if (!OpenFrontBuckets(config, &keys_bucket, &control_bucket, &limits_bucket)) {
    spdlog::shutdown();
    return 1;
  }
  // The operator's pauses every node shares: the console's view, and each
  // partition's (PartitionSync).
  auto shared_control = std::make_shared<SharedControl>(control_bucket);
  auto console_control = std::make_shared<SyncControl>();
  const int console_subscription =
      shared_control->Subscribe([console_control](const std::vector<Event>& events) {
        for (const auto& e : events) console_control->Apply(e);
      });
  if (Status ps = shared_control->Poll(); !ps.ok())
    logger->warn("event=shared_control_unread error=\"{}\"", ps.ToString());
  shared_control->Start();
  std::unique_ptr<ClusterNode> node;
  if (Status s = JoinCluster(config, shared_control, &node); !s.ok()) {
    logger->critical("event=cluster_join_failed error=\"{}\"", s.ToString());
    spdlog::shutdown();
    return 1;
  }
  shared_control->SetNode(node->id());  // its acks: how far this node holds the pauses
  int rc = 0;
  {
    HttpFront front(config, node->ingest_log());
    front.SetSharedKeys(std::make_shared<SharedKeys>(keys_bucket));
    front.SetSharedLimits(limits_bucket);
    SharePageSessions(config, &front);
    std::atomic<const Config*> live{&config};  // what a reload put in place
    auto eraser = std::make_unique<Worker>();
    ServeClusterReads(node.get(), &front, &live, &eraser);
    if (config.sync().enabled)
      ShareSyncControl(node.get(), shared_control, console_control, &front);
    ShowClusterStatus(node.get(), &front, &live);
    std::unique_ptr<Alerter> alerter;
    ServeClusterMetrics(config, node.get(), &front, &alerter);
    Reloader reloader(config_path, &config, [&](const Config& next) {
      live.store(&next);
      node->Reload(next);
      front.Reload(next);
    });
    front.SetReloadHandler(std::ref(reloader));
    std::string token;
    if (WriteAdminToken(config.data_dir(), &token).ok()) front.SetAdminToken(token);
    rc = RunFront(&front, [&front] { return front.listening(); }, "serving webhooks; cluster node joined");
    if (alerter) alerter->Stop();  // before the partitions go: no mail of their leaving
    node->Stop();  // partitions given up for the others to take at once
    eraser.reset();  // its last erasures done while `live`'s configuration is kept
  }
  shared_control->Unsubscribe(console_subscription);
  logger->info("event=exit code={}", rc);
  spdlog::shutdown();
  return rc;
}

}  // namespace dfm
