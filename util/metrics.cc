#include "util/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace dfm {

Histogram::Histogram(std::vector<int64_t> bounds)
    : bounds_(std::move(bounds)), buckets_(bounds_.size() + 1) {}

void Histogram::Observe(int64_t value) {
  const size_t i = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.reserve(bounds_.size());
  uint64_t run = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    run += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(run);
  }
  s.count = run + buckets_.back().load(std::memory_order_relaxed);
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<int64_t> Histogram::LatencyBoundsUs() {
  return {1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
          10000000};
}

std::vector<int64_t> Histogram::PropagationBoundsUs() {
  constexpr int64_t kS = 1000000;
  return {1 * kS, 2 * kS, 5 * kS, 10 * kS, 30 * kS, 60 * kS, 300 * kS, 900 * kS, 3600 * kS};
}

std::vector<int64_t> Histogram::CountBounds() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.9g", v);
  }
  return buf;
}

MetricsText& MetricsText::Family(std::string_view name, std::string_view type,
                                 std::string_view help) {
  family_ = std::string(name);
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (char c : help) {  // HELP escapes only \ and newline
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_.push_back(c);
    }
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
  return *this;
}

void MetricsText::Name(std::string_view suffix) {
  out_ += family_;
  out_ += suffix;
}

void MetricsText::Labels(MetricLabels labels, std::string_view le) {
  if (labels.size() == 0 && le.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out_ += ',';
    first = false;
    out_ += k;
    out_ += "=\"";
    out_ += EscapeLabelValue(v);
    out_ += '"';
  }
  if (!le.empty()) {
    if (!first) out_ += ',';
    out_ += "le=\"";
    out_ += le;
    out_ += '"';
  }
  out_ += '}';
}

void MetricsText::Value(double v) {
  out_ += ' ';
  out_ += FormatMetricValue(v);
  out_ += '\n';
}

MetricsText& MetricsText::Sample(MetricLabels labels, double value) {
  Name("");
  Labels(labels);
  Value(value);
  return *this;
}

MetricsText& MetricsText::Histo(MetricLabels labels, const Histogram::Snapshot& h, double scale) {
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    Name("_bucket");
    Labels(labels, FormatMetricValue(static_cast<double>(h.bounds[i]) * scale));
    Value(static_cast<double>(h.cumulative[i]));
  }
  Name("_bucket");
  Labels(labels, "+Inf");
  Value(static_cast<double>(h.count));
  Name("_sum");
  Labels(labels);
  Value(static_cast<double>(h.sum) * scale);
  Name("_count");
  Labels(labels);
  Value(static_cast<double>(h.count));
  return *this;
}

std::string MergeLabeled(std::string_view label,
                         const std::vector<std::pair<std::string, std::string>>& parts) {
  struct Block {
    std::string head;  // its # HELP and # TYPE lines
    std::string samples;
  };
  std::vector<std::string> order;
  std::map<std::string, Block> blocks;
  for (const auto& [value, text] : parts) {
    const std::string tag = std::string(label) + "=\"" + EscapeLabelValue(value) + "\"";
    Block* current = nullptr;
    size_t at = 0;
    while (at < text.size()) {
      size_t nl = text.find('\n', at);
      if (nl == std::string::npos) nl = text.size();
      const std::string_view line(text.data() + at, nl - at);
      at = nl + 1;
      if (line.rfind("# HELP ", 0) == 0) {
        const std::string_view rest = line.substr(7);
        const std::string name(rest.substr(0, rest.find(' ')));
        auto [it, fresh] = blocks.try_emplace(name);
        if (fresh) order.push_back(name);
        current = &it->second;
        if (fresh) current->head.append(line).push_back('\n');
      } else if (line.rfind("# TYPE ", 0) == 0) {
        if (current && current->head.find("# TYPE ") == std::string::npos) current->head.append(line).push_back('\n');
      } else if (!line.empty() && current) {
        const size_t end = line.find_first_of("{ ");
        if (end == std::string_view::npos) continue;
        std::string& out = current->samples;
        out.append(line.substr(0, end));
        out += '{';
        out += tag;
        if (line[end] == '{') {
          if (end + 1 < line.size() && line[end + 1] != '}') out += ',';  // a text from elsewhere may end there
          out.append(line.substr(end + 1));
        } else {
          out += '}';
          out.append(line.substr(end));
        }
        out += '\n';
      }
    }
  }
  std::string merged;
  for (const auto& name : order) merged += blocks[name].head + blocks[name].samples;
  return merged;
}

}  // namespace dfm
