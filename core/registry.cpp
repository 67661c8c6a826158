#include "core/registry.hpp"

namespace ratelab {

const char* kind_name(ComponentKind kind) {
  switch (kind) {
    case ComponentKind::optimizer: return "optimizer";
    case ComponentKind::problem: return "problem";
    case ComponentKind::schedule: return "schedule";
  }
  return "?";
}

void Registry::add(Entry entry) {
  auto& map = entries_[int(entry.info.kind)];
  const std::string key = entry.info.key;
  if (auto it = map.find(key); it != map.end()) {
    throw ConfigError(std::string(kind_name(entry.info.kind)) + " key '" + key + "' is registered twice: by " +
                      it->second.info.origin + " and by " + entry.info.origin +
                      "; rename one of them");
  }
  for (const auto& spec : entry.info.params) {
    if (auto v = violation(spec, spec.default_value, key + "." + spec.key))
      throw ConfigError("the declaration of " + std::string(kind_name(entry.info.kind)) + " '" + key +
                        "' is invalid: its default " + *v);
  }
  map.emplace(key, std::move(entry));
}

void Registry::add_optimizer(ComponentInfo info, OptimizerFactory make) {
  info.kind = ComponentKind::optimizer;
  add({std::move(info), std::move(make), {}, {}});
}
void Registry::add_problem(ComponentInfo info, ProblemFactory make) {
  info.kind = ComponentKind::problem;
  add({std::move(info), {}, std::move(make), {}});
}
void Registry::add_schedule(ComponentInfo info, ScheduleFactory make) {
  info.kind = ComponentKind::schedule;
  add({std::move(info), {}, {}, std::move(make)});
}

const Registry::Entry& Registry::entry(ComponentKind kind, const std::string& key) const {
  const auto& map = entries_[int(kind)];
  auto it = map.find(key);
  if (it == map.end()) throw ConfigError(unknown_key_message(kind_name(kind), key, keys(kind)));
  return it->second;
}

const ComponentInfo& Registry::info(ComponentKind kind, const std::string& key) const {
  return entry(kind, key).info;
}

bool Registry::contains(ComponentKind kind, const std::string& key) const {
  return entries_[int(kind)].count(key) != 0;
}

std::vector<std::string> Registry::keys(ComponentKind kind) const {
  std::vector<std::string> out;
  for (const auto& [k, e] : entries_[int(kind)]) out.push_back(k);
  return out;
}

std::vector<const ComponentInfo*> Registry::components(ComponentKind kind) const {
  std::vector<const ComponentInfo*> out;
  for (const auto& [k, e] : entries_[int(kind)]) out.push_back(&e.info);
  return out;
}

std::unique_ptr<Optimizer> Registry::make_optimizer(const std::string& key, const ParamSet& params) const {
  return entry(ComponentKind::optimizer, key).optimizer(params);
}

std::shared_ptr<const Problem> Registry::make_problem(const std::string& key, const ParamSet& params,
                                                      ProblemContext& context) const {
  return entry(ComponentKind::problem, key).problem(params, context);
}

Schedule Registry::make_schedule(const std::string& key, const ParamSet& params,
                                 const ScheduleContext& context) const {
  return entry(ComponentKind::schedule, key).schedule(params, context);
}

}  // namespace ratelab
